"""The English recipe's data stages (recipes/speechocean762/local): prepare.py on a small copy of real
recordings; synth_sentences.py (synthetic voices reading sentences) with espeak-ng and flite."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from recipe_modules import recipe_local, recipe_script

LOCAL = recipe_local("speechocean762")
download, prepare = recipe_script("speechocean762", "download"), recipe_script("speechocean762", "prepare")

import synth_sentences  # noqa: E402
import tts  # noqa: E402
from kaldi_dir import read_data_dir  # noqa: E402
from stage import run_main  # noqa: E402
from waveform import frame_db  # noqa: E402

# (speaker, age, corpus split): "0003" is a digits-dev child; the test split has children and adults to draw from
SPEAKERS = [("0001", 7, "train"), ("0002", 30, "train"), ("0003", 6, "test"), ("0500", 8, "test"),
            ("0501", 9, "test"), ("0600", 25, "test"), ("0601", 40, "test")]


def copy_of(root: Path, fsdd_dir: Path, speakers: list[tuple[str, int, str]] = SPEAKERS) -> Path:
    """A speechocean762-shaped copy: manifest.jsonl over real recordings (FSDD takes stand in for its audio)."""
    (root / "audio").mkdir(parents=True)
    lines = []
    for speaker, age, split in speakers:
        for k, text in enumerate(["WE CALL IT BEAR", "IT'S  NOT FISH"]):
            uid = f"so762-{speaker}{k}"
            shutil.copy(fsdd_dir / "recordings" / f"{k}_theo_0.wav", root / "audio" / f"{uid}.wav")
            lines.append(json.dumps(dict(id=uid, audio=f"audio/{uid}.wav", text=text, speaker=speaker, age=age,
                                         duration=0.5, split=split)))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def upstream_copy_of(root: Path, fsdd_dir: Path) -> Path:
    """The same utterances as copy_of's, laid out as the corpus' archive unpacks: WAVE/SPEAKER*/ and
    Kaldi-style train/ and test/ folders (spk2age with "SPEAKER" names in one of them, as releases differ)."""
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        chosen = [(speaker, age) for speaker, age, s in SPEAKERS if s == split]
        tables = {"wav.scp": [], "text": [], "utt2spk": []}
        for speaker, _ in chosen:
            (root / "WAVE" / f"SPEAKER{speaker}").mkdir(parents=True)
            for k, text in enumerate(["WE CALL IT BEAR", "IT'S  NOT FISH"]):
                utt = f"{speaker}{k}"
                shutil.copy(fsdd_dir / "recordings" / f"{k}_theo_0.wav", root / "WAVE" / f"SPEAKER{speaker}" / f"{utt}.WAV")
                tables["wav.scp"].append(f"{utt}\tWAVE/SPEAKER{speaker}/{utt}.WAV")
                tables["text"].append(f"{utt}\t{text}")
                tables["utt2spk"].append(f"{utt} {speaker}")
        prefix = "SPEAKER" if split == "test" else ""
        tables["spk2age"] = [f"{prefix}{speaker} {age}" for speaker, age in chosen]
        for name, lines in tables.items():
            (root / split / name).write_text("\n".join(lines) + "\n")
    return root


def prepare_sets(tmp_path: Path, fsdd_dir: Path, *extra: str, copy: Path | None = None) -> Path:
    data = tmp_path / "data"
    argv = ["--data", str(data), "--local", str(copy or copy_of(tmp_path / "so762", fsdd_dir)),
            "--dev-children", "1", "--dev-adults", "1", "--test-extra", "1", *extra]
    assert run_main(prepare.main, argv) == 0
    return data


def test_sets_are_speaker_disjoint_and_dev_has_children_and_adults(tmp_path, fsdd_dir):
    data = prepare_sets(tmp_path, fsdd_dir)
    sets = {name: read_data_dir(data / name) for name in ("train", "dev", "test")}
    speakers = {name: {u.speaker for u in utts} for name, utts in sets.items()}
    assert sum(len(s) for s in speakers.values()) == len(SPEAKERS) == len(set().union(*speakers.values()))
    assert {"so762-0001", "so762-0002"} <= speakers["train"]  # the corpus' train split is all training
    assert "so762-0003" in speakers["test"]  # the digits recipe's dev children are never trained on
    groups = dict(line.split() for line in (data / "dev" / "utt2group").read_text().splitlines())
    assert sorted(set(groups.values())) == ["adult", "child"] and len(groups) == len(sets["dev"]) == 4
    assert sorted({u.text for u in sets["train"]}) == ["it's not fish", "we call it bear"]


def test_the_split_depends_on_the_seed_only(tmp_path, fsdd_dir):
    first = read_data_dir(prepare_sets(tmp_path / "a", fsdd_dir) / "dev")
    again = read_data_dir(prepare_sets(tmp_path / "b", fsdd_dir) / "dev")
    assert [u.id for u in first] == [u.id for u in again]
    dev_speakers = {frozenset(u.speaker for u in read_data_dir(prepare_sets(tmp_path / f"s{seed}", fsdd_dir,
                                                                            "--seed", str(seed)) / "dev"))
                    for seed in range(6)}
    assert len(dev_speakers) > 1


def test_too_few_speakers_for_dev_is_a_clear_error(tmp_path, fsdd_dir, capsys):
    argv = ["--data", str(tmp_path / "data"), "--local", str(copy_of(tmp_path / "so762", fsdd_dir)), "--dev-adults", "5"]
    assert run_main(prepare.main, argv) == 1
    assert "too few speakers" in capsys.readouterr().err


def test_a_copy_without_its_audio_is_refused(tmp_path, fsdd_dir, capsys):
    copy = copy_of(tmp_path / "so762", fsdd_dir)
    (copy / "audio" / "so762-00010.wav").unlink()
    assert run_main(prepare.main, ["--data", str(tmp_path / "data"), "--local", str(copy)]) == 1
    assert "missing" in capsys.readouterr().err


def test_the_corpus_as_its_archive_unpacks_gives_the_same_sets(tmp_path, fsdd_dir):
    from_manifest = prepare_sets(tmp_path / "a", fsdd_dir)
    from_upstream = prepare_sets(tmp_path / "b", fsdd_dir, copy=upstream_copy_of(tmp_path / "upstream", fsdd_dir))
    for name in ("train", "dev", "test"):
        a, b = read_data_dir(from_manifest / name), read_data_dir(from_upstream / name)
        assert [(u.id, u.speaker, u.text) for u in a] == [(u.id, u.speaker, u.text) for u in b] and a
        assert all(Path(u.wav).read_bytes() == Path(v.wav).read_bytes() for u, v in zip(a, b))
        assert (from_manifest / name / "utt2group").read_text() == (from_upstream / name / "utt2group").read_text()
    assert 0.3 < read_data_dir(from_upstream / "train")[0].duration < 1.0  # read from the audio's header


def test_an_upstream_copy_with_an_utterance_missing_from_a_table_is_refused(tmp_path, fsdd_dir, capsys):
    copy = upstream_copy_of(tmp_path / "upstream", fsdd_dir)
    utt2spk = copy / "test" / "utt2spk"
    utt2spk.write_text("".join(utt2spk.read_text().splitlines(keepends=True)[1:]))
    assert run_main(prepare.main, ["--data", str(tmp_path / "data"), "--local", str(copy)]) == 1
    assert "is in one of wav.scp, utt2spk, spk2age but not in the others" in capsys.readouterr().err


def corpus_archive(tmp_path: Path, fsdd_dir: Path, top: str = "speechocean762") -> Path:
    """speechocean762.tar.gz as OpenSLR serves it (one top folder), in a folder used as a file:// mirror."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with tarfile.open(mirror / "speechocean762.tar.gz", "w:gz") as tar:
        tar.add(upstream_copy_of(tmp_path / "upstream", fsdd_dir), top)
    return mirror / "speechocean762.tar.gz"


def test_download_checks_the_archive_then_unpacks_it_for_prepare(tmp_path, fsdd_dir, capsys):
    archive = corpus_archive(tmp_path, fsdd_dir)
    downloads = tmp_path / "downloads"
    args = ["--downloads", str(downloads), "--mirror", archive.parent.as_uri()]
    assert run_main(download.main, args) == 1  # no digest pinned and none given: nothing is fetched
    assert "--sha256" in capsys.readouterr().err and not downloads.exists()

    wrong = hashlib.sha256(b"another archive").hexdigest()
    assert run_main(download.main, [*args, "--sha256", wrong]) == 1
    assert "sha256" in capsys.readouterr().err and not (downloads / "speechocean762").exists()
    assert not list(downloads.glob("speechocean762.tar.gz*"))  # the refused bytes are deleted

    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert run_main(download.main, [*args, "--sha256", digest, "--remove-archive"]) == 0
    corpus = Path(capsys.readouterr().out.strip())
    assert corpus == (downloads / "speechocean762").resolve()
    assert sorted(p.name for p in downloads.iterdir()) == ["speechocean762"]  # archive removed, no temporary
    sets = prepare_sets(tmp_path, fsdd_dir, copy=corpus)
    assert len(read_data_dir(sets / "train")) == 6


def test_an_archive_that_is_not_the_corpus_is_refused(tmp_path, fsdd_dir, capsys):
    archive = corpus_archive(tmp_path, fsdd_dir, top="something_else")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    argv = ["--downloads", str(tmp_path / "downloads"), "--mirror", archive.parent.as_uri(), "--sha256", digest]
    assert run_main(download.main, argv) == 1
    assert "not the speechocean762 archive" in capsys.readouterr().err
    assert not (tmp_path / "downloads" / "speechocean762").exists()


@pytest.mark.parametrize("script", ["prepare.py", "download.py", "synth_sentences.py", "combine.py"])
def test_scripts_run_as_commands(script):
    result = subprocess.run([sys.executable, str(LOCAL / script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "usage:" in result.stdout


# --- synthetic voices ---------------------------------------------------------------------------------

SENTENCES = {  # id -> (written, transcript, or None where the engine would say something else)
    "s1": ("We call it bear.", "we call it bear"),
    "s2": ("Tom gives up boxing, she said.", "tom gives up boxing she said"),
    "s3": ("The debtors' side was quiet.", "the debtors' side was quiet"),
    "s4": ("It was a cold night in the city.", "it was a cold night in the city"),
    "s5": ("Mr. Smith came in the evening.", None),  # "mister"
    "s6": ("The FBI was told.", None),  # "eff bee eye"
    "s7": ("In 1963 it rained.", None),
    "s8": ("Herr Müller sang.", None),
    "s12": ("It ended at eleven p.m. that day.", None),
    "s9": ("we call it BEAR", None),
    "s10": ("WE CALL IT bear!", None),
    "s11": ("We call it, bear", None),  # s1's transcript again
}


def text_file(path: Path, sentences: dict[str, tuple[str, str | None]] = SENTENCES) -> Path:
    path.write_text("".join(f"{sid}\t{written}\n" for sid, (written, _) in sentences.items()))
    return path


def test_sentences_are_kept_only_where_the_engine_reads_the_transcript(tmp_path, capsys):
    sentences = synth_sentences.read_sentences([text_file(tmp_path / "text")])
    assert [(s.id, s.text) for s in sentences] == [(sid, t) for sid, (_, t) in SENTENCES.items() if t is not None]
    assert sentences[1].written == "Tom gives up boxing, she said."  # the engine reads the punctuation
    assert run_main(synth_sentences.main, ["--data", str(tmp_path), "--text", str(tmp_path / "nothing")]) == 1
    assert "cannot read --text" in capsys.readouterr().err
    unreadable = text_file(tmp_path / "bad", {k: SENTENCES[k] for k in ("s5", "s6")})
    assert run_main(synth_sentences.main, ["--data", str(tmp_path), "--text", str(unreadable)]) == 1
    assert "no sentence" in capsys.readouterr().err


def synth_dir(data: Path, engine: str, text: Path, *extra: str) -> Path:
    argv = ["--data", str(data), "--engine", engine, "--text", str(text), *extra]
    assert run_main(synth_sentences.main, argv) == 0
    return data / f"train_synth_{engine.split('-')[0]}"


@pytest.mark.parametrize("engine", tts.ENGINES)
def test_synthetic_sentences_are_16k_normalised_and_depend_on_the_seed_only(tmp_path, engine, system_program):
    system_program(engine)
    text = text_file(tmp_path / "text")
    runs = {name: read_data_dir(synth_dir(tmp_path / name, engine, text, "--num-utts", "3", *extra))
            for name, extra in {"jobs2": ["--jobs", "2"], "jobs1": ["--jobs", "1"], "seed1": ["--seed", "1"]}.items()}
    utts = runs["jobs2"]
    assert len(utts) == 3
    assert sorted(p.name for p in utts[0].wav.parent.iterdir()) == sorted(u.wav.name for u in utts)
    for utt in utts:
        info = sf.info(utt.wav)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == round(utt.duration * 16000) and info.duration > 0.5
        engine_settings, sentence_id = utt.sources
        assert engine_settings.startswith(f"{engine}:") and utt.text == SENTENCES[sentence_id][1]
        audio = sf.read(utt.wav, dtype="int16")[0].astype(np.float64)
        assert -27 < frame_db(audio, 16000).max() < -9  # synth_sentences.PEAK_DB (-25, -10): speechocean762's range
    assert [(u.id, u.text, u.wav.read_bytes()) for u in runs["jobs1"]] == [(u.id, u.text, u.wav.read_bytes()) for u in utts]
    assert [u.wav.read_bytes() for u in runs["seed1"]] != [u.wav.read_bytes() for u in utts]


def test_too_long_utterances_are_dropped_and_the_next_sentence_taken(tmp_path, system_program, capsys):
    system_program("espeak-ng")
    long = "the prisoners were committed to it quite without reference to its capacity or to the health of those within"
    sentences = {"short1": ("Yes.", "yes"), "short2": ("We call it bear.", "we call it bear")}
    sentences |= {f"long{k}": (f"{long} {word}.", None) for k, word in enumerate(["one", "two", "three"])}
    text = text_file(tmp_path / "text", sentences)
    utts = read_data_dir(synth_dir(tmp_path / "data", "espeak-ng", text, "--num-utts", "3", "--max-seconds", "2.5"))
    assert sorted(u.text for u in utts) == ["we call it bear", "yes"]
    assert all(u.duration <= 2.5 for u in utts)
    assert len(list(utts[0].wav.parent.iterdir())) == 2
    out = capsys.readouterr().out
    assert "dropped 3 utterance(s) longer than 2.5 s" in out and "2 of --num-utts 3 made" in out


def test_run_sh_adds_synthetic_voices_to_the_training_data(tmp_path, fsdd_dir, system_program):
    """Stage 0 with --synth 2 in a copy of the recipe: data/train + 2 utterances of each engine -> data/train_all."""
    system_program("espeak-ng")
    system_program("flite")
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    shutil.copy(LOCAL.parent / "run.sh", recipe)
    (recipe / "local").symlink_to(LOCAL)
    speakers = [("0001", 30, "train")] + [(f"05{k:02d}", 8 if k < 15 else 30, "test") for k in range(30)]
    corpus = copy_of(tmp_path / "so762", fsdd_dir, speakers)
    text = text_file(tmp_path / "text")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    command = [str(recipe / "run.sh"), "--stage", "0", "--stop-stage", "0", "--local", str(corpus), "--synth", "2",
               "--synth-text", str(text)]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    data = recipe / "data"
    sets = {name: read_data_dir(data / name) for name in ("train", "train_synth_espeak", "train_synth_flite", "train_all")}
    assert len(sets["train_synth_espeak"]) == len(sets["train_synth_flite"]) == 2
    assert sorted(u.id for u in sets["train_all"]) == sorted(u.id for name in list(sets)[:3] for u in sets[name])
