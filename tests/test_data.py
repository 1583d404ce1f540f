import json
import random
import shutil
from dataclasses import replace

import pytest
import torch

from asr.audio import load_audio
from asr.config import AugmentConfig, ConfigError, FeatureConfig
from asr.data import (
    ASRDataset,
    BucketBatchSampler,
    ManifestError,
    Utterance,
    collate,
    load_manifest,
)
from asr.features import fbank
from asr.tokenizer import PAD_ID, Tokenizer

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FEAT = FeatureConfig()


@pytest.fixture(scope="module")
def corpus(fsdd_dir, tmp_path_factory):
    """12 real FSDD files copied under <root>/wavs, with their digit transcripts."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "wavs").mkdir()
    rows = []
    for name in sorted((fsdd_dir / "recordings").glob("*_jackson_[12].wav"))[:12]:
        shutil.copy(name, root / "wavs" / name.name)
        rows.append((name.stem, f"wavs/{name.name}", DIGITS[int(name.stem[0])].upper()))
    return root, rows


@pytest.fixture(scope="module")
def utts(corpus):
    root, rows = corpus
    return [Utterance(i, str(root / a), t) for i, a, t in rows]


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.train("word", DIGITS)


def write_jsonl(path, objs):
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))


def test_jsonl_manifest_resolves_relative_paths(corpus):
    root, rows = corpus
    objs = [{"id": i, "audio": a, "text": t} for i, a, t in rows]
    objs[0]["duration"] = 0.5
    write_jsonl(root / "train.jsonl", objs)
    utts = load_manifest(root / "train.jsonl")
    assert [u.id for u in utts] == [r[0] for r in rows]
    assert utts[1].audio == str(root / rows[1][1]) and utts[1].text == rows[1][2]
    assert utts[0].duration == 0.5 and utts[1].duration is None


def test_kaldi_dir_manifest(corpus, tmp_path):
    root, rows = corpus
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    (data / "wav.scp").write_text("".join(f"{i} {root / a}\n" for i, a, _ in rows))
    (data / "text").write_text("".join(f"{i} {t}\n" for i, _, t in rows[:-1]) + f"{rows[-1][0]}\n")
    (data / "utt2dur").write_text(f"{rows[0][0]} 0.42\n")
    utts = load_manifest(data)
    assert len(utts) == len(rows)
    assert utts[0] == Utterance(rows[0][0], str(root / rows[0][1]), rows[0][2], 0.42)
    assert utts[-1].text == "" and utts[1].duration is None


def test_kaldi_dir_relative_paths_resolve_against_the_dir(corpus, tmp_path):
    root, rows = corpus
    shutil.copytree(root / "wavs", tmp_path / "wavs")
    (tmp_path / "wav.scp").write_text(f"{rows[0][0]} wavs/{rows[0][0]}.wav\n")
    assert load_manifest(tmp_path)[0].audio == str(tmp_path / "wavs" / f"{rows[0][0]}.wav")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "a", "audio": "wavs/X"}', "not json"], r"train\.jsonl:2: invalid JSON"),
        (['{"id": "a"}'], r":1: expected an object"),
        (['{"id": "a", "audio": "missing.wav"}'], r":1: audio file not found"),
        (['{"id": "a", "audio": "wavs/X"}', "", '{"id": "a", "audio": "wavs/X"}'], r":3: duplicate utterance id"),
        (['{"id": "a", "audio": "wavs/X", "duration": "long"}'], r":1: duration must be a number"),
        (['{"id": "a", "audio": "wavs/X", "text": 3}'], r':1: "text" must be a string'),
        ([], r"lists no utterances"),
    ],
)
def test_jsonl_errors_name_file_and_line(corpus, lines, message):
    root, rows = corpus
    write_jsonl(root / "train.jsonl", [line.replace("wavs/X", rows[0][1]) for line in lines])
    with pytest.raises(ManifestError, match=message):
        load_manifest(root / "train.jsonl")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, r"no wav\.scp"),
        ({"wav.scp": "a A\nb\n"}, r"wav\.scp:2: expected 'utt-id value'"),
        ({"wav.scp": "a A\na A\n"}, r"wav\.scp:2: duplicate utterance id 'a'"),
        ({"wav.scp": "a A\n", "text": "a one\nb two\n"}, r"text:2: utterance 'b' is not in wav\.scp"),
        ({"wav.scp": "a A\n", "utt2dur": "a -1\n"}, r"utt2dur:1: duration must be >= 0"),
        ({"wav.scp": "a sox A -t wav - |\n"}, r"wav\.scp:1: piped commands"),
        ({"wav.scp": "a gone.wav\n"}, r"wav\.scp:1: audio file not found"),
    ],
)
def test_kaldi_errors_name_file_and_line(corpus, tmp_path, files, message):
    root, rows = corpus
    for name, content in files.items():
        (tmp_path / name).write_text(content.replace(" A", f" {root / rows[0][1]}"))
    with pytest.raises(ManifestError, match=message):
        load_manifest(tmp_path)


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        load_manifest(tmp_path / "nope.jsonl")


def test_dataset_item_without_augment_is_plain_fbank(utts, tok):
    ds = ASRDataset(utts, tok, FEAT)
    item = ds[3]
    expected = fbank(torch.from_numpy(load_audio(utts[3].audio)), FEAT)
    assert item.id == utts[3].id and torch.equal(item.feats, expected)
    assert item.tokens.tolist() == tok.encode(utts[3].text) and item.text == utts[3].text.lower()


def test_dataset_augment_is_deterministic_per_seed_epoch_index(utts, tok):
    aug = AugmentConfig(speed_factors=(0.9, 1.0, 1.1), noise_prob=0.5, gain_db=(-3.0, 3.0))
    ds, same = ASRDataset(utts, tok, FEAT, aug, seed=7), ASRDataset(utts, tok, FEAT, aug, seed=7)
    assert torch.equal(ds[2].feats, same[2].feats)
    plain = ASRDataset(utts, tok, FEAT)[2].feats
    assert not torch.equal(ds[2].feats, plain)
    before = ds[2].feats
    ds.set_epoch(1)
    assert not torch.equal(ds[2].feats, before)


def test_augmentation_starts_at_its_start_epoch(utts, tok):
    aug = AugmentConfig(speed_factors=(0.9, 1.1), noise_prob=1.0, start_epoch=2)
    ds = ASRDataset(utts, tok, FEAT, aug, seed=7)
    plain = ASRDataset(utts, tok, FEAT)[2].feats
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        assert torch.equal(ds[2].feats, plain)
    ds.set_epoch(2)
    assert not torch.equal(ds[2].feats, plain)
    always = ASRDataset(utts, tok, FEAT, replace(aug, start_epoch=0), seed=7)
    always.set_epoch(2)
    assert torch.equal(ds[2].feats, always[2].feats)  # the same draws as if it had been on all along
    with pytest.raises(ConfigError, match="start_epoch"):
        AugmentConfig(start_epoch=-1)


def test_frame_lengths_from_header_match_features(utts, tok):
    ds = ASRDataset(utts, tok, FEAT)
    assert ds.frame_lengths() == [ds[i].feats.shape[0] for i in range(len(ds))]
    slow = ASRDataset(utts, tok, FEAT, AugmentConfig(speed_factors=(0.9, 1.1)))
    assert all(s > n for s, n in zip(slow.frame_lengths(), ds.frame_lengths()))
    padded = ASRDataset(utts, tok, FEAT, AugmentConfig(speed_factors=(0.9, 1.1), pad_prob=1.0, pad_seconds=0.5))
    assert all(p == s + 100 for p, s in zip(padded.frame_lengths(), slow.frame_lengths()))  # 2 x 0.5 s
    assert all(padded[i].feats.shape[0] <= n for i, n in enumerate(padded.frame_lengths()))


def test_speech_span_marks_the_recording_inside_the_padding(utts, tok):
    band = FeatureConfig(high_freq=3800.0)  # FSDD is 8 kHz audio; the padding noise is white
    plain = ASRDataset(utts, tok, band)
    assert all(plain[i].speech == (0, plain[i].feats.shape[0]) for i in range(3))
    aug = AugmentConfig(speed_factors=(1.0,), pad_prob=1.0, pad_seconds=0.5, freq_masks=0, time_masks=0)
    padded = ASRDataset(utts, tok, band, aug)
    for i in range(3):
        start, end = padded[i].speech
        frames = plain[i].feats.shape[0]
        assert 0 < start and end < padded[i].feats.shape[0]
        assert frames - 2 <= end - start <= frames  # frames whose window lies inside the recording
        # the loudest frame of the recording is inside the span
        assert start <= padded[i].feats.sum(1).argmax() < end
    batch = collate([padded[0], plain[1]])
    assert batch.speech.tolist() == [list(padded[0].speech), [0, plain[1].feats.shape[0]]]


def test_bucket_sampler_covers_every_index_once_within_budget():
    rng = random.Random(0)
    lengths = [rng.randint(20, 300) for _ in range(500)] + [900]  # the last one exceeds the budget
    sampler = BucketBatchSampler(lengths, max_frames_per_batch=800, shuffle=True, seed=1)
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(lengths)))
        for b in batches:
            assert len(b) * max(lengths[i] for i in b) <= 800 or b == [500]
        orders.append(batches)
    assert orders[0] != orders[1]
    sampler.set_epoch(0)
    assert list(sampler) == orders[0]


def test_bucket_sampler_groups_similar_lengths():
    lengths = list(range(10, 1010))
    batches = list(BucketBatchSampler(lengths, max_frames_per_batch=2000, shuffle=True))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.15 * sum(lengths)  # buckets keep padding small


def test_bucket_sampler_without_shuffle_is_fixed_and_sorted():
    lengths = [5, 50, 7, 300, 40, 41]
    batches = list(BucketBatchSampler(lengths, 100, shuffle=False))
    assert [lengths[i] for b in batches for i in b] == sorted(lengths)
    again = BucketBatchSampler(lengths, 100, shuffle=False)
    again.set_epoch(3)
    assert list(again) == batches


def test_collate_pads_features_and_tokens(utts, tok):
    ds = ASRDataset(utts, tok, FEAT)
    items = [ds[0], ds[5], ds[9]]
    batch = collate(items)
    t_max = max(x.feats.shape[0] for x in items)
    assert batch.feats.shape == (3, t_max, 80)
    assert batch.feat_lens.tolist() == [x.feats.shape[0] for x in items]
    assert batch.token_lens.tolist() == [x.tokens.numel() for x in items]
    for b, x in enumerate(items):
        n = x.feats.shape[0]
        assert torch.equal(batch.feats[b, :n], x.feats) and not batch.feats[b, n:].any()
        u = x.tokens.numel()
        assert torch.equal(batch.tokens[b, :u], x.tokens)
        assert (batch.tokens[b, u:] == PAD_ID).all()
    assert batch.ids == [x.id for x in items] and batch.texts == [x.text for x in items]


def test_collate_utterances_without_text(utts, tok):
    ds = ASRDataset([Utterance(u.id, u.audio) for u in utts[:2]], tok, FEAT)
    batch = collate([ds[0], ds[1]])
    assert batch.tokens.shape == (2, 0) and batch.token_lens.tolist() == [0, 0]

