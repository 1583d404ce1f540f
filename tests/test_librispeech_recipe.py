"""The LibriSpeech recipe (recipes/librispeech) on a corpus laid out exactly as LibriSpeech is, made
from real FSDD recordings: each part a few readers (numbered folders), chapters, 16 kHz FLAC
utterances of three to four spoken digits, and SPEAKER-CHAPTER.trans.txt files in upper case.

The data stages are tested one by one; the whole of run.sh (stages 0-5, training with 2 gloo
processes) once, in the slow tier."""

from __future__ import annotations

import hashlib
import json
import random
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf
import soxr
import torch
from fsdd_audio import DIGIT_WORDS, SAMPLE_RATE, SPEAKERS, connected_digits, expected_text
from recipe_modules import recipe_local, recipe_script

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "librispeech"
recipe_local("librispeech")
download, prepare = recipe_script("librispeech", "download"), recipe_script("librispeech", "prepare")

import librispeech  # noqa: E402
from kaldi_dir import read_data_dir  # noqa: E402
from librispeech import CorpusError, read_transcripts  # noqa: E402
from stage import run_main  # noqa: E402

TRAIN_PARTS, TEST_PARTS = librispeech.TRAIN_960, ("dev-clean", "dev-other", "test-clean", "test-other")
# part -> (readers, chapters per reader, utterances per chapter)
SHAPE = {**{p: (3, 2, 4) for p in TRAIN_PARTS}, **{p: (2, 1, 3) for p in TEST_PARTS}}
TEST_SETS = {"dev_clean": "dev-clean", "test_other": "test-other"}  # decoded by the end-to-end test


@dataclass(frozen=True)
class FixtureUtt:
    id: str
    flac: Path
    text: str  # as in the trans.txt file: upper case


def write_part(root: Path, part: str, fsdd_dir: Path, seed: int) -> list[FixtureUtt]:
    """root/LibriSpeech/PART/READER/CHAPTER/... from FSDD recordings: 16 kHz FLAC (resampled from 8 kHz,
    as LibriSpeech's FLACs are 16 kHz), three or four digits each, the reader always one FSDD speaker."""
    rng = random.Random(seed)
    readers, chapters, per_chapter = SHAPE[part]
    utts = []
    for r in range(readers):
        reader, voice = 100 + 10 * seed + r, SPEAKERS[(seed + r) % len(SPEAKERS)]
        for c in range(chapters):
            chapter = 1000 + 10 * r + c
            folder = root / "LibriSpeech" / part / str(reader) / str(chapter)
            folder.mkdir(parents=True)
            lines = []
            for n in range(per_chapter):
                digits = "".join(str(rng.randrange(10)) for _ in range(rng.choice((3, 4))))
                utt = FixtureUtt(f"{reader}-{chapter}-{n:04d}", folder / f"{reader}-{chapter}-{n:04d}.flac",
                                 expected_text(digits).upper())
                wave, _ = connected_digits(fsdd_dir, digits, voice, seed=rng.randrange(5))  # (N,) at 8 kHz
                sf.write(utt.flac, soxr.resample(wave, SAMPLE_RATE, 16000), 16000, format="FLAC", subtype="PCM_16")
                lines.append(f"{utt.id} {utt.text}\n")
                utts.append(utt)
            (folder / f"{reader}-{chapter}.trans.txt").write_text("".join(lines))
    return utts


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, fsdd_dir: Path) -> tuple[Path, dict[str, list[FixtureUtt]]]:
    """A copy of every LibriSpeech part in miniature (-> the folder holding LibriSpeech/, the utterances by part)."""
    root = tmp_path_factory.mktemp("corpus")
    return root, {part: write_part(root, part, fsdd_dir, seed) for seed, part in enumerate(SHAPE)}


def copy_part(corpus_root: Path, part: str, dest: Path) -> Path:
    """A writable copy of one part, to spoil: -> the folder holding it."""
    for src in (corpus_root / "LibriSpeech" / part).rglob("*"):
        if src.is_file():
            target = dest / part / src.relative_to(corpus_root / "LibriSpeech" / part)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read_bytes())
    return dest


def stage01(data: Path, copy: Path, parts: list[str]) -> int:
    assert run_main(download.main, ["--data", str(data), "--parts", *parts, "--local", str(copy)]) == 0
    return run_main(prepare.main, ["--data", str(data), "--parts", *parts])


# --- transcripts -----------------------------------------------------------------------------


def test_transcripts_are_read_and_normalised(tmp_path):
    trans = tmp_path / "19-198.trans.txt"
    trans.write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001 CATHERINE'S  FATHER   WAS A CLERGYMAN\n\n")
    assert read_transcripts(trans) == {"19-198-0000": "northanger abbey",
                                       "19-198-0001": "catherine's father was a clergyman"}


@pytest.mark.parametrize("lines, problem", [
    ("19-198-0000 ONE\n19-198-0000 TWO\n", r"19-198.trans.txt:2: duplicate utterance id '19-198-0000'"),
    ("19-198-0000 ONE\n19-198-0001\n", r"19-198.trans.txt:2: expected 'utt-id value'"),
    ("19-198-0000 ONE\n19-199-0001 TWO\n", r"19-198.trans.txt:2: utterance id '19-199-0001' is not 19-198-NUMBER"),
    ("19-198-x1 ONE\n", r"19-198.trans.txt:1: utterance id '19-198-x1' is not 19-198-NUMBER"),
])
def test_a_bad_transcript_line_is_named(tmp_path, lines, problem):
    trans = tmp_path / "19-198.trans.txt"
    trans.write_text(lines)
    with pytest.raises(CorpusError, match=problem):
        read_transcripts(trans)


# --- stages 0 and 1 on a local copy ------------------------------------------------------------


def test_each_part_becomes_a_kaldi_data_dir(tmp_path, corpus, capsys):
    root, utts = corpus
    data, parts = tmp_path / "data", ["train-clean-100", "dev-other"]
    assert stage01(data, root, parts) == 0  # root holds LibriSpeech/: found one level down
    assert (data / "librispeech_path").read_text().strip() == str((root / "LibriSpeech").resolve())
    for part in parts:
        got = read_data_dir(data / librispeech.data_dir_name(part))
        want = sorted(utts[part], key=lambda u: u.id)
        assert [u.id for u in got] == [u.id for u in want]
        for g, w in zip(got, want):
            assert g.wav == w.flac.resolve() and g.wav.is_absolute()
            assert g.text == w.text.lower() and g.text.split()[0] in DIGIT_WORDS
            assert g.speaker == g.id.rsplit("-", 1)[0]  # SPEAKER-CHAPTER
            assert g.duration == pytest.approx(sf.info(w.flac).duration, abs=1e-6) and g.duration > 0.5
    spk2utt = (data / "dev_other" / "spk2utt").read_text().splitlines()
    assert len(spk2utt) == 2 and all(len(line.split()) == 1 + 3 for line in spk2utt)  # 2 chapters of 3
    capsys.readouterr()
    assert stage01(data, root, parts) == 0
    assert capsys.readouterr().out.count("already complete") == 3  # the path file and both parts


def test_a_local_copy_without_a_part_asked_for_is_refused(tmp_path, corpus, capsys):
    data, elsewhere = str(tmp_path / "data"), str(corpus[0] / "LibriSpeech" / "dev-clean")
    assert run_main(download.main, ["--data", data, "--parts", "dev-clean", "test-other", "--local", elsewhere]) == 1
    assert "no folder dev-clean, test-other in it or in" in capsys.readouterr().err
    assert run_main(download.main, ["--data", data, "--parts", "train-clean-999"]) == 1
    assert "unknown LibriSpeech part(s) ['train-clean-999']; the parts are dev-clean," in capsys.readouterr().err
    assert not (tmp_path / "data" / "librispeech_path").exists()


def spoil_missing_transcript(part: Path) -> str:
    next(part.rglob("*.trans.txt")).unlink()
    return r"error: .*/dev-clean/\d+/\d+: no transcript file \d+-\d+.trans.txt"


def spoil_flac_without_text(part: Path) -> str:
    trans = next(part.rglob("*.trans.txt"))
    trans.write_text("".join(trans.read_text().splitlines(keepends=True)[1:]))
    return r"error: .*/dev-clean/\d+/\d+: 1 .flac file\(s\) not in \d+-\d+.trans.txt, e.g. \d+-\d+-0000.flac"


def spoil_text_without_flac(part: Path) -> str:
    next(part.rglob("*-0002.flac")).unlink()
    return r"error: .*\d+-\d+.trans.txt: 1 utterance\(s\) without a .flac file, e.g. \d+-\d+-0002"


def spoil_speaker_folder(part: Path) -> str:
    next(p for p in part.iterdir() if p.is_dir()).rename(part / "reader7")
    return r"error: .*/dev-clean: folder 'reader7' is not a speaker number; a part is laid out as PART/SPEAKER/CHAPTER/"


def spoil_audio(part: Path) -> str:
    next(part.rglob("*-0001.flac")).write_bytes(b"fLaC" + bytes(100))
    return r"error: .*-0001.flac: "


@pytest.mark.parametrize("spoil", [spoil_missing_transcript, spoil_flac_without_text, spoil_text_without_flac,
                                   spoil_speaker_folder, spoil_audio])
def test_a_part_not_laid_out_as_librispeech_is_refused_in_one_line(tmp_path, corpus, capsys, spoil):
    copy = copy_part(corpus[0], "dev-clean", tmp_path / "copy")
    problem = spoil(copy / "dev-clean")
    capsys.readouterr()
    assert stage01(tmp_path / "data", copy, ["dev-clean"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.match(problem, err), err
    assert not (tmp_path / "data" / "dev_clean" / ".done").exists()


# --- stage 0: download, verify, unpack ------------------------------------------------------------


def part_archive(corpus_root: Path, part: str, dest: Path) -> Path:
    """PART.tar.gz laid out as OpenSLR's: LibriSpeech/PART/... and the corpus' top-level .TXT files."""
    (corpus_root / "LibriSpeech" / "SPEAKERS.TXT").write_text("; ID |SEX| SUBSET |MINUTES| NAME\n")
    with tarfile.open(dest / f"{part}.tar.gz", "w:gz") as tar:
        tar.add(corpus_root / "LibriSpeech" / part, f"LibriSpeech/{part}")
        tar.add(corpus_root / "LibriSpeech" / "SPEAKERS.TXT", "LibriSpeech/SPEAKERS.TXT")
    return dest / f"{part}.tar.gz"


def test_download_verifies_each_archive_then_unpacks_it(tmp_path, corpus, monkeypatch, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archives = {part: part_archive(corpus[0], part, mirror) for part in ("dev-clean", "test-other")}
    for part, archive in archives.items():  # pinned as the fixture archives, served from a file:// mirror
        monkeypatch.setitem(librispeech.ARCHIVE_SHA256, part, hashlib.sha256(archive.read_bytes()).hexdigest())
    work = tmp_path / "work"
    args = ["--data", str(work / "data"), "--downloads", str(work / "downloads"), "--mirror", mirror.as_uri()]
    assert run_main(download.main, [*args, "--parts", "dev-clean", "test-other", "--remove-archives"]) == 0
    unpacked = work / "downloads" / "LibriSpeech"
    assert sorted(p.name for p in unpacked.iterdir()) == ["SPEAKERS.TXT", "dev-clean", "test-other"]
    assert sorted(p.name for p in (work / "downloads").iterdir()) == ["LibriSpeech"]  # archives removed, no temp
    for a, b in zip(sorted((corpus[0] / "LibriSpeech" / "dev-clean").rglob("*")), sorted((unpacked / "dev-clean").rglob("*"))):
        assert a.relative_to(corpus[0] / "LibriSpeech") == b.relative_to(unpacked)
        assert a.is_dir() or a.read_bytes() == b.read_bytes()
    assert run_main(prepare.main, ["--data", str(work / "data"), "--parts", "test-other"]) == 0
    assert len(read_data_dir(work / "data" / "test_other")) == len(corpus[1]["test-other"])

    archive = part_archive(corpus[0], "dev-other", mirror)  # pinned as the fixture, but the mirror's copy differs
    monkeypatch.setitem(librispeech.ARCHIVE_SHA256, "dev-other", hashlib.sha256(archive.read_bytes()).hexdigest())
    spoilt = bytearray(archive.read_bytes())
    spoilt[len(spoilt) // 2] ^= 0x01
    archive.write_bytes(bytes(spoilt))
    capsys.readouterr()
    assert run_main(download.main, [*args, "--parts", "dev-other"]) == 1
    assert "sha256" in capsys.readouterr().err and not (unpacked / "dev-other").exists()
    assert not list((work / "downloads").glob("dev-other*"))  # the bad download deleted, not kept to resume


def test_an_archive_without_its_part_is_refused(tmp_path, corpus):
    archive = part_archive(corpus[0], "dev-clean", tmp_path)
    with pytest.raises(CorpusError, match="holds no LibriSpeech/test-clean/ folder"):
        download.unpack(archive, "test-clean", tmp_path / "downloads")
    assert not (tmp_path / "downloads" / "LibriSpeech" / "test-clean").exists()


# --- the whole recipe ----------------------------------------------------------------------------


def test_run_sh_prepares_trains_with_two_processes_decodes_and_scores(tmp_path, corpus):
    """run.sh stages 0-5 with conf/fixture_cpu.yaml: every part, the 960 h union, 3 steps of DDP on 2 gloo
    processes, beam search on a clean and an other test set (the four take the same path, at twice the
    time), scores; then a second run finds everything done."""
    root, utts = corpus
    work = tmp_path / "work"
    command = [str(RECIPE / "run.sh"), "--local", str(root), "--workdir", str(work), "--parts", " ".join(SHAPE),
               "--config", str(RECIPE / "conf" / "fixture_cpu.yaml"), "--nproc", "2", "--beam", "2",
               "--decode-device", "cpu", "--test-sets", " ".join(TEST_SETS)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    data = work / "data"
    for part in SHAPE:
        assert {u.id for u in read_data_dir(data / librispeech.data_dir_name(part))} == {u.id for u in utts[part]}
    assert len(read_data_dir(data / "train_960")) == sum(len(utts[p]) for p in TRAIN_PARTS)
    assert len(read_data_dir(data / "dev")) == len(utts["dev-clean"]) + len(utts["dev-other"])

    exp = work / "exp" / "fixture_cpu"
    assert (exp / "model" / "model.safetensors").stat().st_size > 0
    last = torch.load(exp / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert json.loads(last["state"])["step"] == 3 and json.loads(last["state"])["world_size"] == 2
    assert len(last["rng_other_ranks"]) == 1  # rank 1 took part

    rows = (exp / "RESULTS.md").read_text()
    assert sorted(p.name for p in exp.glob("decode_*")) == [f"decode_{name}_beam2" for name in sorted(TEST_SETS)]
    for name, part in TEST_SETS.items():
        decode = exp / f"decode_{name}_beam2"
        ids = [line.split(maxsplit=1)[0] for line in (decode / "hyp").read_text().splitlines()]
        assert sorted(ids) == sorted(u.id for u in utts[part])  # a hypothesis for every utterance
        summary = json.loads((decode / "wer.json").read_text())["summary"]
        assert summary["num_utterances"] == len(utts[part])
        assert summary["num_ref_words"] == sum(len(u.text.split()) for u in utts[part])
        assert summary["wer"] >= 0 and summary["errors"] == round(summary["wer"] * summary["num_ref_words"])
        assert f"|{decode.name.removeprefix('decode_')}|{len(utts[part])}|{summary['num_ref_words']}|" in rows

    again = subprocess.run([*command, "--stop-stage", "4"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already complete") == 1 + len(SHAPE) + 2  # path file, parts, dev, train_960
    assert "model exists: skipping training" in again.stdout and again.stdout.count("hyp exists: skipping") == 2
