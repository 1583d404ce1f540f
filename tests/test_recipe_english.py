"""The English recipe's data stage (recipes/speechocean762/local/prepare.py) on a small copy of real recordings."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LOCAL = Path(__file__).resolve().parents[1] / "recipes" / "speechocean762" / "local"
sys.path.insert(0, str(LOCAL))

import prepare  # noqa: E402
from kaldi_dir import read_data_dir  # noqa: E402
from stage import run_main  # noqa: E402

# (speaker, age, corpus split): "0003" is a digits-dev child; the test split has children and adults to draw from
SPEAKERS = [("0001", 7, "train"), ("0002", 30, "train"), ("0003", 6, "test"), ("0500", 8, "test"),
            ("0501", 9, "test"), ("0600", 25, "test"), ("0601", 40, "test")]


def copy_of(root: Path, fsdd_dir: Path) -> Path:
    """A speechocean762-shaped copy: manifest.jsonl over real recordings (FSDD takes stand in for its audio)."""
    (root / "audio").mkdir(parents=True)
    lines = []
    for speaker, age, split in SPEAKERS:
        for k, text in enumerate(["WE CALL IT BEAR", "IT'S  NOT FISH"]):
            uid = f"so762-{speaker}{k}"
            shutil.copy(fsdd_dir / "recordings" / f"{k}_theo_0.wav", root / "audio" / f"{uid}.wav")
            lines.append(json.dumps(dict(id=uid, audio=f"audio/{uid}.wav", text=text, speaker=speaker, age=age,
                                         duration=0.5, split=split)))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def prepare_sets(tmp_path: Path, fsdd_dir: Path, *extra: str) -> Path:
    data = tmp_path / "data"
    argv = ["--data", str(data), "--local", str(copy_of(tmp_path / "so762", fsdd_dir)),
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


@pytest.mark.parametrize("script", ["prepare.py"])
def test_scripts_run_as_commands(script):
    result = subprocess.run([sys.executable, str(LOCAL / script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "usage:" in result.stdout
