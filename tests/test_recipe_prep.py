"""Data preparation of the digits recipe (recipes/digits/local), on real FSDD audio at tiny sizes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from data_source import write_archive
from recipe_modules import recipe_local, recipe_script

LOCAL = recipe_local("digits")
download = recipe_script("digits", "download")

import combine  # noqa: E402
import make_connected  # noqa: E402
import nonspeech  # noqa: E402
import speechocean  # noqa: E402
import synth  # noqa: E402
import tts  # noqa: E402
from fsdd import DIGIT_WORDS, RECORDING_NAME, read_path_file  # noqa: E402
from kaldi_dir import read_data_dir  # noqa: E402
from stage import run_main  # noqa: E402
from waveform import FRAME, SAMPLE_RATE, frame_db, noise, read_pcm16, trim_bounds, trimmed  # noqa: E402

SPEAKERS = ("george", "jackson", "theo")
TAKES = range(8)
SIZES = {"train": 40, "valid": 10, "dev": 12, "dev_single": len(DIGIT_WORDS) * len(TAKES)}


def ms(n_samples: int) -> float:
    return 1000 * n_samples / SAMPLE_RATE


@pytest.fixture(scope="module")
def mini_fsdd(tmp_path_factory, fsdd_dir: Path) -> Path:
    """Three speakers, takes 0-7: links to the real recordings."""
    root = tmp_path_factory.mktemp("fsdd")
    (root / "recordings").mkdir()
    for speaker in SPEAKERS:
        for digit in range(10):
            for take in TAKES:
                name = f"{digit}_{speaker}_{take}.wav"
                (root / "recordings" / name).symlink_to(fsdd_dir / "recordings" / name)
    return root


def prepare(data: Path, fsdd: Path, *extra: str) -> int:
    assert run_main(download.main, ["--data", str(data), "--local", str(fsdd)]) == 0
    args = ["--data", str(data), "--speakers", "all", "--num-train", str(SIZES["train"])]
    args += ["--num-valid", str(SIZES["valid"]), "--num-dev", str(SIZES["dev"]), *extra]
    return run_main(make_connected.main, args)


@pytest.fixture(scope="module")
def data(tmp_path_factory, mini_fsdd: Path) -> Path:
    data = tmp_path_factory.mktemp("recipe") / "data"
    assert prepare(data, mini_fsdd) == 0
    return data


def sources(utt) -> list[tuple[int, str, int]]:
    """(digit, speaker, take) of each recording an utterance was made from."""
    matches = [RECORDING_NAME.match(f"{src}.wav") for src in utt.sources]
    return [(int(m["digit"]), m["speaker"], int(m["take"])) for m in matches]


# --- download ---------------------------------------------------------------------------


def test_download_records_local_copy_and_rerun_is_noop(tmp_path, mini_fsdd, capsys):
    data = tmp_path / "data"
    assert run_main(download.main, ["--data", str(data), "--local", str(mini_fsdd)]) == 0
    assert read_path_file(data) == mini_fsdd.resolve()
    stamp = (data / "fsdd_path").stat().st_mtime_ns
    capsys.readouterr()
    assert run_main(download.main, ["--data", str(data), "--local", str(mini_fsdd)]) == 0
    assert "already complete" in capsys.readouterr().out
    assert (data / "fsdd_path").stat().st_mtime_ns == stamp


def test_download_rejects_a_folder_that_is_not_fsdd(tmp_path, fsdd_dir, capsys):
    bad = tmp_path / "bad"
    (bad / "recordings").mkdir(parents=True)
    shutil.copy(fsdd_dir / "recordings" / "3_theo_7.wav", bad / "recordings" / "three.wav")
    assert run_main(download.main, ["--data", str(tmp_path / "data"), "--local", str(bad)]) == 1
    assert "three.wav" in capsys.readouterr().err
    assert not (tmp_path / "data" / "fsdd_path").exists()


def test_download_fetches_and_verifies_the_pinned_archive(tmp_path, fsdd_archive):
    data, downloads = tmp_path / "data", tmp_path / "downloads"
    args = ["--data", str(data), "--url", fsdd_archive.as_uri(), "--downloads", str(downloads)]
    assert run_main(download.main, args) == 0
    root = read_path_file(data)
    assert root == (downloads / "fsdd-26eb9aaf76e8").resolve()
    assert len(list((root / "recordings").glob("*.wav"))) == 2500


def test_download_refuses_an_archive_that_is_not_the_pinned_fsdd(tmp_path, fsdd_dir, capsys):
    archive = write_archive(fsdd_dir, tmp_path / "v1.0.10.zip", names=[f"{digit}_theo_0.wav" for digit in range(10)])
    data, downloads = tmp_path / "data", tmp_path / "downloads"
    args = ["--data", str(data), "--url", archive.as_uri(), "--downloads", str(downloads)]
    assert run_main(download.main, args) == 1
    err = capsys.readouterr().err
    assert "lacks 2490 of the 2500 FSDD" in err and "--local" in err
    assert not (data / "fsdd_path").exists() and list(downloads.iterdir()) == []


def test_download_offline_says_how_to_use_a_local_copy(tmp_path, capsys):
    args = ["--data", str(tmp_path / "data"), "--url", "http://127.0.0.1:9/fsdd.zip"]
    args += ["--downloads", str(tmp_path / "dl")]
    assert run_main(download.main, args) == 1
    assert "--local" in capsys.readouterr().err
    assert list((tmp_path / "dl").iterdir()) == []


# --- connected digits -------------------------------------------------------------------


def test_sets_have_the_requested_sizes(data):
    for name, size in SIZES.items():
        utts = read_data_dir(data / name)
        assert len(utts) == size, name
        assert all(u.wav.is_file() for u in utts)
        assert (data / name / ".done").is_file()


def test_transcripts_are_the_digits_of_the_recordings_used(data):
    for name in SIZES:
        for utt in read_data_dir(data / name):
            words = utt.text.split()
            assert words == [DIGIT_WORDS[digit] for digit, _, _ in sources(utt)]
            assert [w.word for w in utt.words] == words
            assert 1 <= len(words) <= 7
            assert {spk for _, spk, _ in sources(utt)} == {utt.speaker}  # one speaker per utterance


def test_dev_speaker_is_held_out_and_valid_uses_only_heldout_takes(data):
    train, valid = read_data_dir(data / "train"), read_data_dir(data / "valid")
    dev, single = read_data_dir(data / "dev"), read_data_dir(data / "dev_single")
    assert {u.speaker for u in train} == {u.speaker for u in valid} == {"george", "jackson"}
    assert {u.speaker for u in dev} == {u.speaker for u in single} == {"theo"}
    assert all(take >= 5 for u in train for _, _, take in sources(u))
    assert all(take < 5 for u in valid for _, _, take in sources(u))
    # dev_single: every recording of the dev speaker exactly once, alone
    assert sorted(src for u in single for src in u.sources) == sorted(f"{d}_theo_{t}" for d in range(10) for t in TAKES)


def test_audio_is_the_trimmed_takes_joined_by_pauses(data):
    fsdd = read_path_file(data)
    for utt in read_data_dir(data / "train")[:12]:
        audio, sr = sf.read(utt.wav, dtype="int16")
        assert sr == SAMPLE_RATE and audio.ndim == 1
        assert len(audio) == round(utt.duration * SAMPLE_RATE)
        starts, lengths = [], []
        for src, word in zip(utt.sources, utt.words):
            part = np.round(trimmed(read_pcm16(fsdd / "recordings" / f"{src}.wav")))
            start = round(word.start * SAMPLE_RATE)
            assert round(word.duration * SAMPLE_RATE) == len(part)
            np.testing.assert_array_equal(audio[start : start + len(part)], part)  # the take, sample for sample
            starts.append(start)
            lengths.append(len(part))
        lead, trail = starts[0], len(audio) - starts[-1] - lengths[-1]
        pauses = [starts[i + 1] - starts[i] - lengths[i] for i in range(len(starts) - 1)]
        assert len(audio) == lead + sum(lengths) + sum(pauses) + trail
        assert 100 <= ms(lead) <= 300 and 100 <= ms(trail) <= 300
        assert all(50 <= ms(p) <= 300 for p in pauses)
        silence = audio[:lead].astype(np.float64)
        assert np.any(silence != 0), "pauses hold low-level noise, not digital zero"
        assert frame_db(silence).max() < frame_db(audio.astype(np.float64)).max() - 15


def test_rerun_is_noop_and_changed_options_regenerate(tmp_path, mini_fsdd, capsys):
    data = tmp_path / "data"
    assert prepare(data, mini_fsdd) == 0
    train_wav = read_data_dir(data / "train")[0].wav
    stamps = {name: (data / name / "wav.scp").stat().st_mtime_ns for name in SIZES}
    capsys.readouterr()
    assert prepare(data, mini_fsdd) == 0
    assert capsys.readouterr().out.count("already complete") == len(SIZES) + 1  # + the download stage
    assert {name: (data / name / "wav.scp").stat().st_mtime_ns for name in SIZES} == stamps
    assert prepare(data, mini_fsdd, "--num-dev", "5") == 0  # only dev changes
    assert len(read_data_dir(data / "dev")) == 5
    assert (data / "train" / "wav.scp").stat().st_mtime_ns == stamps["train"]
    assert train_wav.is_file()
    assert prepare(data, mini_fsdd, "--num-dev", "5", "--force") == 0
    assert (data / "train" / "wav.scp").stat().st_mtime_ns != stamps["train"]


def test_generation_is_deterministic_per_seed(tmp_path, data, mini_fsdd):
    again, other = tmp_path / "again", tmp_path / "other"
    assert prepare(again, mini_fsdd) == 0
    assert prepare(other, mini_fsdd, "--seed", "1") == 0
    for name in ("train", "dev"):
        assert (again / name / "utt2src").read_text() == (data / name / "utt2src").read_text()
        assert (other / name / "utt2src").read_text() != (data / name / "utt2src").read_text()
    first, copy = read_data_dir(data / "train")[0], read_data_dir(again / "train")[0]
    assert first.wav.read_bytes() == copy.wav.read_bytes()


def test_trimming_removes_added_silence_and_keeps_the_word(fsdd_dir):
    x = read_pcm16(fsdd_dir / "recordings" / "6_jackson_12.wav")
    pad = SAMPLE_RATE // 2
    rng = np.random.default_rng(0)
    floor = float(np.percentile(frame_db(x), 10))
    padded = np.concatenate([noise(pad, floor, rng), x, noise(pad, floor, rng)])
    start, end = trim_bounds(padded)
    loud = np.flatnonzero(frame_db(x) > frame_db(x).max() - 30)  # the word's frames, incl. the weak "ks"
    assert start <= pad + loud[0] * FRAME and end >= pad + (loud[-1] + 1) * FRAME
    assert start >= pad - SAMPLE_RATE // 10 and end <= pad + len(x) + SAMPLE_RATE // 10


def test_trimming_is_gentle_on_fsdd(mini_fsdd):
    kept = []
    for path in sorted((mini_fsdd / "recordings").glob("*.wav")):
        x = read_pcm16(path)
        start, end = trim_bounds(x)
        kept.append((end - start) / len(x))
    assert min(kept) > 0.3 and np.mean(kept) > 0.9


# --- combine ----------------------------------------------------------------------------


def test_combine_unions_dirs_and_rejects_duplicate_ids(tmp_path, data, capsys):
    out = tmp_path / "train_all"
    assert run_main(combine.main, [str(out), str(data / "train"), str(data / "valid")]) == 0
    combined = read_data_dir(out)
    assert len(combined) == SIZES["train"] + SIZES["valid"]
    assert len({u.id for u in combined}) == len(combined)
    capsys.readouterr()
    assert run_main(combine.main, [str(tmp_path / "dup"), str(data / "train"), str(data / "train")]) == 1
    assert "duplicate utterance id" in capsys.readouterr().err
    missing = tmp_path / "train_synth"
    assert run_main(combine.main, [str(tmp_path / "x"), str(data / "train"), str(missing)]) == 1
    assert run_main(combine.main, ["--allow-missing", str(tmp_path / "x"), str(data / "train"), str(missing)]) == 0


# --- synthetic voices -------------------------------------------------------------------


@pytest.mark.parametrize("engine", tts.ENGINES)
def test_synth_writes_readable_8k_wavs_independent_of_worker_count(tmp_path, engine, system_program):
    system_program(engine)
    runs = {}
    for jobs in ("1", "2"):
        data = tmp_path / f"jobs{jobs}"
        args = ["--data", str(data), "--engine", engine, "--num-utts", "4", "--jobs", jobs]
        assert run_main(synth.main, args) == 0
        runs[jobs] = read_data_dir(data / f"train_{engine.split('-')[0]}")
    assert len(runs["2"]) == 4
    for utt, same in zip(runs["2"], runs["1"]):
        info = sf.info(utt.wav)
        assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
        assert info.frames == round(utt.duration * SAMPLE_RATE)
        assert info.duration > 0.4  # lead + trail >= 0.2 s, plus speech
        audio = sf.read(utt.wav, dtype="int16")[0].astype(np.float64)
        assert frame_db(audio).max() > -40  # speech, at about the level of FSDD
        assert all(w in DIGIT_WORDS for w in utt.text.split())
        assert utt.sources[0].startswith(f"{engine}:")
        assert utt.wav.read_bytes() == same.wav.read_bytes()


def test_flite_digits_are_spoken_one_by_one_with_pauses(tmp_path, system_program):
    """flite speaks each digit on its own; the digits are joined with FSDD-like pauses."""
    system_program("flite")
    args = synth.parse_args(["--engine", "flite", "--num-utts", "20", "--min-digits", "3"])
    for job in synth.plan_jobs(args, tmp_path):
        assert len(job.gaps) == len(job.parts) + 1 == len(job.text.split()) + 1
        pauses = [g * 1000 / SAMPLE_RATE for g in job.gaps[1:-1]]
        assert all(make_connected.PAUSE_MS[0] - 1 <= p <= make_connected.PAUSE_MS[1] + 1 for p in pauses)
    job = synth.plan_jobs(args, tmp_path)[0]
    assert len(tts.speak(job, "flite", tmp_path)) == len(job.parts)


def test_synth_without_engine_fails_unless_optional(tmp_path, capsys):
    args = ["--data", str(tmp_path / "data"), "--num-utts", "2", "--exe", str(tmp_path / "no-espeak-ng")]
    assert run_main(synth.main, args) == 1
    assert "not found" in capsys.readouterr().err
    assert run_main(synth.main, [*args, "--optional"]) == 0
    assert not (tmp_path / "data" / "train_espeak").exists()


@pytest.mark.parametrize("script", ["download.py", "make_connected.py", "synth.py", "combine.py", "speechocean.py", "nonspeech.py"])
def test_scripts_run_as_commands(script):
    result = subprocess.run([sys.executable, str(LOCAL / script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "usage:" in result.stdout


def so762_copy(root: Path, fsdd_dir: Path) -> Path:
    """A speechocean762-shaped copy: manifest.jsonl over real recordings (FSDD takes stand in for its audio)."""
    rows = [  # (id, text, speaker, split): two digit strings per split, and a sentence that is not one
        ("u1", "ZERO THREE", "0001", "train"), ("u2", "WE CALL IT BEAR", "0001", "train"),
        ("u3", "NINE", "0002", "train"), ("u4", "FIVE ONE", "0003", "test"),
    ]
    (root / "audio").mkdir(parents=True)
    lines = []
    for uid, text, speaker, split in rows:
        shutil.copy(fsdd_dir / "recordings" / "3_theo_0.wav", root / "audio" / f"{uid}.wav")
        record = dict(id=uid, audio=f"audio/{uid}.wav", text=text, speaker=speaker, age=7, duration=0.5, split=split)
        lines.append(json.dumps(record))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_speechocean_keeps_digit_strings_and_other_speech_and_holds_out_the_test_speakers(tmp_path, fsdd_dir):
    copy = so762_copy(tmp_path / "so762", fsdd_dir)
    data = tmp_path / "data"
    assert run_main(speechocean.main, ["--data", str(data), "--local", str(copy), "--repeat", "3"]) == 0
    train, dev = read_data_dir(data / "train_so762"), read_data_dir(data / "dev_so762")
    assert sorted({u.text for u in train}) == ["nine", "zero three"] and len(train) == 6  # 2 recordings x 3
    assert [u.text for u in dev] == ["five one"]
    assert not {u.speaker for u in train} & {u.speaker for u in dev}
    assert (data / "dev_so762" / "spk2age").read_text() == "so762-0003 7\n"
    speech = read_data_dir(data / "speech_so762")  # the train split's other utterances, once each
    assert [(u.text, u.speaker) for u in speech] == [("we call it bear", "so762-0001")]


def test_speechocean_refuses_a_copy_without_its_audio(tmp_path, fsdd_dir, capsys):
    copy = so762_copy(tmp_path / "so762", fsdd_dir)
    (copy / "audio" / "u3.wav").unlink()
    assert run_main(speechocean.main, ["--data", str(tmp_path / "data"), "--local", str(copy)]) == 1
    assert "missing" in capsys.readouterr().err


def test_nonspeech_recordings_are_faint_or_loud_and_have_empty_transcripts(tmp_path, data):
    work = tmp_path / "data"
    shutil.copytree(data / "train", work / "train")
    assert run_main(nonspeech.main, ["--data", str(work), "--num-utts", "18"]) == 0
    utts = read_data_dir(work / "train_nonspeech")
    assert len(utts) == 18 and all(u.text == "" for u in utts)
    assert len({u.speaker for u in utts}) == 9  # every kind, twice
    levels = [20 * np.log10(np.sqrt(np.mean(sf.read(u.wav)[0] ** 2)) + 1e-12) for u in utts]
    assert min(levels) < -50 and max(levels) > -40  # float WAVs keep the faint ones
