"""Manifests (Kaldi data dirs, JSONL), the training Dataset, length-bucketed batches, collate.

A manifest lists utterances: an id, an audio path, optionally the transcript and
the duration. Relative audio paths are resolved against the manifest's folder
(the Kaldi data dir itself, or the folder holding the JSONL file).

Kaldi data dir: `wav.scp` ("utt-id path" per line), optional `text` ("utt-id words...")
and `utt2dur` ("utt-id seconds"). JSONL: one {"id", "audio", "text"?, "duration"?}
object per line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from asr.audio import audio_duration, load_audio
from asr.config import AugmentConfig, FeatureConfig
from asr.features import augment_wave, fbank, num_frames, spec_augment, vtlp_factor
from asr.kaldi import Table, TableError, read_table
from asr.tokenizer import PAD_ID, Tokenizer, normalize_text


class ManifestError(ValueError):
    """A manifest that cannot be read: malformed line, missing file, duplicate id."""


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: str  # path, already resolved against the manifest's folder
    text: Optional[str] = None
    duration: Optional[float] = None  # seconds; None = read from the audio header when needed


# ---------------------------------------------------------------- manifests


def _resolve_audio(audio: str, base: Path, where: str) -> str:
    path = Path(audio)
    if not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise ManifestError(f"{where}: audio file not found: {path}")
    return str(path)


def _check_known(table: Table, ids: dict, path: Path) -> None:
    for key, (lineno, _) in table.items():
        if key not in ids:
            raise ManifestError(f"{path}:{lineno}: utterance {key!r} is not in wav.scp")


def _parse_duration(value: object, where: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: duration must be a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ManifestError(f"{where}: duration must be >= 0 seconds, got {value!r}")
    return seconds


def _load_kaldi_dir(data_dir: Path) -> list[Utterance]:
    wav_scp = data_dir / "wav.scp"
    if not wav_scp.is_file():
        raise ManifestError(f"{data_dir}: not a Kaldi data dir (no wav.scp)")
    try:
        wavs = read_table(wav_scp)
        texts = read_table(data_dir / "text", need_value=False) if (data_dir / "text").is_file() else {}
        durs = read_table(data_dir / "utt2dur") if (data_dir / "utt2dur").is_file() else {}
    except TableError as e:
        raise ManifestError(str(e)) from None
    _check_known(texts, wavs, data_dir / "text")
    _check_known(durs, wavs, data_dir / "utt2dur")
    utts = []
    for utt_id, (lineno, audio) in wavs.items():
        where = f"{wav_scp}:{lineno}"
        if audio.endswith("|"):
            raise ManifestError(f"{where}: piped commands are not supported; convert the audio to files")
        duration = None
        if utt_id in durs:
            dur_line, value = durs[utt_id]
            duration = _parse_duration(value, f"{data_dir / 'utt2dur'}:{dur_line}")
        text = texts[utt_id][1] if utt_id in texts else None
        utts.append(Utterance(utt_id, _resolve_audio(audio, data_dir, where), text, duration))
    return utts


def _load_jsonl(path: Path) -> list[Utterance]:
    utts, seen = [], set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{where}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(obj.get("audio"), str):
            raise ManifestError(f'{where}: expected an object with string "id" and "audio", got {line.strip()!r}')
        if obj["id"] in seen:
            raise ManifestError(f"{where}: duplicate utterance id {obj['id']!r}")
        seen.add(obj["id"])
        text = obj.get("text")
        if text is not None and not isinstance(text, str):
            raise ManifestError(f'{where}: "text" must be a string, got {text!r}')
        duration = obj.get("duration")
        duration = None if duration is None else _parse_duration(duration, where)
        utts.append(Utterance(obj["id"], _resolve_audio(obj["audio"], path.parent, where), text, duration))
    return utts


def load_manifest(path: str | Path) -> list[Utterance]:
    """Kaldi data dir or JSONL file -> utterances in file order. Raises ManifestError."""
    path = Path(path)
    if path.is_dir():
        utts = _load_kaldi_dir(path)
    elif path.is_file():
        utts = _load_jsonl(path)
    else:
        raise ManifestError(f"manifest not found: {path} (expected a Kaldi data dir or a .jsonl file)")
    if not utts:
        raise ManifestError(f"{path}: manifest lists no utterances")
    return utts


# ---------------------------------------------------------------- dataset


@dataclass(frozen=True)
class Example:
    id: str
    feats: Tensor  # (T, n_mels)
    tokens: Tensor  # (U,) int64, no sos/eos
    text: str  # normalised transcript ("" when unknown)
    speech: tuple[int, int]  # frames [start, end) that hold the recording, outside it augmentation padding


def seeded_generator(*keys: int) -> torch.Generator:
    """A torch.Generator whose stream depends on all of `keys` (non-negative ints), well mixed."""
    state = np.random.SeedSequence(list(keys)).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


class ASRDataset(Dataset):
    """Utterances -> Examples. Augmentation (wave, then SpecAugment) only when `augment` is given,
    and from its start_epoch on (`set_epoch`)."""

    def __init__(
        self,
        utts: Sequence[Utterance],
        tokenizer: Tokenizer,
        feat_cfg: FeatureConfig,
        augment: Optional[AugmentConfig] = None,
        seed: int = 0,
    ):
        self.utts = list(utts)
        self.tokenizer = tokenizer
        self.feat_cfg = feat_cfg
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.utts)

    def frame_lengths(self) -> list[int]:
        """Feature frames per utterance (for batching), from manifest durations or audio headers.

        With augmentation the longest possible length (slowest speed factor, longest
        padding) is used, so a batch never exceeds its frame budget.
        """
        stretch = 1.0 / min(self.augment.speed_factors) if self.augment else 1.0
        padding = 2 * self.augment.pad_seconds if self.augment and self.augment.pad_prob > 0 else 0.0
        rate = self.feat_cfg.sample_rate
        lengths = []
        for utt in self.utts:
            seconds = utt.duration if utt.duration is not None else audio_duration(utt.audio)
            lengths.append(num_frames(math.ceil((seconds * stretch + padding) * rate), self.feat_cfg))
        return lengths

    def __getitem__(self, index: int) -> Example:
        utt = self.utts[index]
        wave = torch.from_numpy(load_audio(utt.audio, self.feat_cfg.sample_rate))  # (N,)
        span = (0, wave.numel())  # samples of the recording itself
        if self.augment is not None and self.epoch >= self.augment.start_epoch:
            generator = seeded_generator(self.seed, self.epoch, index)  # reproducible per item
            wave, span = augment_wave(wave, self.augment, self.feat_cfg.sample_rate, generator)
            feats = fbank(wave, self.feat_cfg, vtlp_factor(self.augment, generator))  # (T, n_mels)
            feats = spec_augment(feats, self.augment, generator)
        else:
            feats = fbank(wave, self.feat_cfg)  # (T, n_mels)
        text = normalize_text(utt.text or "")
        tokens = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)  # (U,)
        return Example(utt.id, feats, tokens, text, self._frames(span, feats.shape[0]))

    def _frames(self, span: tuple[int, int], total: int) -> tuple[int, int]:
        """Samples [start, end) -> the frames [start, end) whose windows begin inside them."""
        shift = self.feat_cfg.sample_rate * self.feat_cfg.frame_shift_ms / 1000
        start = min(math.ceil(span[0] / shift), total)
        return start, max(start, min(num_frames(span[1], self.feat_cfg), total))


# ---------------------------------------------------------------- batching


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length items, each within a budget of padded frames.

    Items are sorted by length into buckets of lengths within a factor
    (1 + bucket_ratio) of each other; with shuffle, the order inside a bucket and
    the order of batches change every epoch (`set_epoch`). A batch's cost is its
    padded size B * max(T) <= max_frames_per_batch; an item longer than the budget
    alone gets a batch of its own. Every index appears exactly once per epoch.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_frames_per_batch: int,
        shuffle: bool = True,
        seed: int = 0,
        bucket_ratio: float = 0.1,
    ):
        if max_frames_per_batch <= 0:
            raise ValueError(f"max_frames_per_batch must be > 0, got {max_frames_per_batch}")
        self.lengths = [max(1, int(n)) for n in lengths]
        self.max_frames = max_frames_per_batch
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_ratio = bucket_ratio
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        generator = seeded_generator(self.seed, self.epoch)
        n = len(self.lengths)
        # Bucket k holds lengths in [(1 + r)^k, (1 + r)^(k+1)); inside a bucket the order
        # is random with shuffle, by length without.
        bucket = [int(math.log(length) / math.log1p(self.bucket_ratio)) for length in self.lengths]
        within = torch.randperm(n, generator=generator).tolist() if self.shuffle else self.lengths
        order = sorted(range(n), key=lambda i: (bucket[i], within[i]))
        batches: list[list[int]] = []
        batch: list[int] = []
        longest = 0
        for i in order:
            if batch and (len(batch) + 1) * max(longest, self.lengths[i]) > self.max_frames:
                batches.append(batch)
                batch, longest = [], 0
            batch.append(i)
            longest = max(longest, self.lengths[i])
        if batch:
            batches.append(batch)
        if self.shuffle:
            batches = [batches[j] for j in torch.randperm(len(batches), generator=generator).tolist()]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def shard_batches(batches: Sequence[list[int]], rank: int, world_size: int, per_step: int = 1) -> list[list[int]]:
    """Rank `rank`'s share of an epoch's batches when `world_size` processes each take `per_step`
    batches per optimiser step: batches[rank], batches[rank + world_size], ... Step s of the run
    trains on batches [s * world_size * per_step, (s + 1) * world_size * per_step) of the list.

    Every rank gets the same number of batches, a multiple of `per_step`: the list is cut to a
    multiple of world_size * per_step, and the cut batches (fewer than that, the last ones of the
    epoch's seeded shuffle, so different ones each epoch) are not trained on in this epoch. No
    batch goes to two ranks. One process taking one batch per step gets every batch, in order.
    """
    usable = len(batches) - len(batches) % (world_size * per_step)
    return list(batches[rank:usable:world_size])


@dataclass(frozen=True)
class Batch:
    ids: list[str]
    feats: Tensor  # (B, T, n_mels), zero padded
    feat_lens: Tensor  # (B,) int64
    tokens: Tensor  # (B, U) int64, padded with PAD_ID; no sos/eos
    token_lens: Tensor  # (B,) int64
    texts: list[str]  # normalised transcripts, for scoring
    speech: Tensor  # (B, 2) int64: frames [start, end) of each recording (the rest is padding)

    def to(self, device: torch.device | str) -> "Batch":
        return replace(
            self,
            feats=self.feats.to(device),
            feat_lens=self.feat_lens.to(device),
            tokens=self.tokens.to(device),
            token_lens=self.token_lens.to(device),
            speech=self.speech.to(device),
        )


def _pad(seqs: list[Tensor], value: float) -> tuple[Tensor, Tensor]:
    """[(L_i, ...)] -> (padded (B, max L, ...), lengths (B,))."""
    lens = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
    padded = seqs[0].new_full((len(seqs), int(lens.max()), *seqs[0].shape[1:]), value)
    for b, s in enumerate(seqs):
        padded[b, : s.shape[0]] = s
    return padded, lens


def collate(items: list[Example]) -> Batch:
    feats, feat_lens = _pad([x.feats for x in items], 0.0)
    tokens, token_lens = _pad([x.tokens for x in items], PAD_ID)
    speech = torch.tensor([x.speech for x in items], dtype=torch.long)  # (B, 2)
    return Batch([x.id for x in items], feats, feat_lens, tokens, token_lens, [x.text for x in items], speech)

