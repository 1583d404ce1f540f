"""`asr` command line: exit codes and messages on good and bad input."""

import json
import subprocess
import sys

import pytest
import torch

from asr.config import ExperimentConfig, ModelConfig
from asr.model import ASRModel, save_model_dir
from asr.tokenizer import Tokenizer


def asr(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "asr.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A real (untrained) model directory: enough to test the plumbing, not the accuracy."""
    cfg = ExperimentConfig(model=ModelConfig(d_model=32, n_heads=2, d_ff=64, encoder_layers=1, decoder_layers=1,
                                             conv_channels=8))
    tok = Tokenizer.train("word", ["zero one two three four five six seven eight nine"])
    torch.manual_seed(0)
    return save_model_dir(tmp_path_factory.mktemp("m") / "tiny", ASRModel(cfg.model, tok.vocab_size), tok, cfg)


def test_transcribe_json(tiny_model, wav_path):
    r = asr("transcribe", wav_path, "--model", tiny_model, "--json", "--decoder", "greedy")
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout)
    assert record["file"] == str(wav_path) and {"text", "segments", "confidence", "duration"} <= record.keys()


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00\x00\x00WAVEfmt garbage", bytes(range(256)) * 10])
def test_transcribe_bad_audio_exits_2(tiny_model, tmp_path, content):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    r = asr("transcribe", bad, "--model", tiny_model)
    assert r.returncode == 2
    assert "bad.wav" in r.stderr and "Traceback" not in r.stderr


def test_transcribe_missing_file_exits_2(tiny_model, tmp_path):
    r = asr("transcribe", tmp_path / "nope.wav", "--model", tiny_model)
    assert r.returncode == 2 and "nope.wav" in r.stderr


def test_not_a_model_dir_exits_2(tmp_path, wav_path):
    r = asr("transcribe", wav_path, "--model", tmp_path)
    assert r.returncode == 2 and "not a model directory" in r.stderr


def test_train_rejects_unknown_config_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  d_modle: 10\n")
    r = asr("train", cfg)
    assert r.returncode == 2 and "d_modle" in r.stderr and "Traceback" not in r.stderr


def test_decode_missing_data_exits_2(tiny_model, tmp_path):
    r = asr("decode", "--data", tmp_path / "nothing", "--out", tmp_path / "hyp", "--model", tiny_model)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_decode_writes_one_line_per_utterance(tiny_model, tmp_path, fsdd_dir):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"u{d} {fsdd_dir}/recordings/{d}_theo_0.wav\n" for d in range(3)))
    r = asr("decode", "--data", data, "--out", tmp_path / "hyp", "--model", tiny_model, "--decoder", "greedy")
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "hyp").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["u0", "u1", "u2"]


def test_bad_vtln_warps_exit_2(tiny_model, wav_path, tmp_path):
    r = asr("transcribe", wav_path, "--model", tiny_model, "--vtln-warps", "0.9,x")
    assert r.returncode == 2 and "--vtln-warps" in r.stderr and "Traceback" not in r.stderr
    cfg = tmp_path / "c.yaml"
    cfg.write_text("inference:\n  vtln_warps: []\n")
    r = asr("train", cfg)
    assert r.returncode == 2 and "vtln_warps" in r.stderr and "Traceback" not in r.stderr


def test_transcribe_with_vtln_warps(tiny_model, wav_path):
    r = asr("transcribe", wav_path, "--model", tiny_model, "--decoder", "greedy", "--vtln-warps", "0.9,1,1.1")
    assert r.returncode == 0, r.stderr
