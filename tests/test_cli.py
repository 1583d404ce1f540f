"""`asr` command line: what it prints for good input; exit status 2 and one line for bad input.
Most tests call main() in this process; one runs the real command."""

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import soundfile as sf
import torch

from asr.cli import main
from asr.config import ExperimentConfig, ModelConfig, save_config
from asr.decoding import MAX_BEAM_SIZE
from asr.model import PRETRAINED_DIR, ASRModel, load_model_dir, save_model_dir
from asr.tokenizer import Tokenizer
from test_evaluate import HYPS, REFS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def asr(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "asr.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


class Run(NamedTuple):
    status: int
    out: str
    err: str


def asr_in_process(capsys, *args) -> Run:
    """`asr ARGS` through main() in this process: cheaper than a subprocess, and an exception
    main() lets through fails the test with its traceback."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as e:  # argparse refusing an argument
        status = e.code
    return Run(status, *capsys.readouterr())


def refused_argument(run: Run, command: str, option: str) -> str:
    """Check argparse's refusal (usage, then one error line); return the error line."""
    assert run.status == 2
    line = run.err.strip().splitlines()[-1]
    assert line.startswith(f"asr {command}: error: argument {option}: "), run.err
    return line


def one_error_line(run: Run) -> str:
    """Check main()'s refusal: exit 2 and exactly one line on stderr; return it."""
    assert run.status == 2 and "Traceback" not in run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    return lines[0]


# The shape of the untrained models these tests build: enough to test the plumbing, not the accuracy.
TINY_CFG = ExperimentConfig(model=ModelConfig(d_model=32, n_heads=2, d_ff=64, encoder_layers=1, decoder_layers=1,
                                              conv_channels=8))


def tiny_tokenizer() -> Tokenizer:
    return Tokenizer.train("word", ["zero one two three four five six seven eight nine"])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A real (untrained) model directory."""
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    model = ASRModel(TINY_CFG.model, tok.vocab_size, TINY_CFG.features.num_mel_bins)
    return save_model_dir(tmp_path_factory.mktemp("m") / "tiny", model, tok, TINY_CFG)


def test_transcribe_json_says_what_was_said_and_when(capsys):
    """The README's examples with the shipped model: one JSON line per file, in order."""
    files = [EXAMPLES / "nicolas_2718.wav", EXAMPLES / "theo_31415.wav"]
    run = asr_in_process(capsys, "transcribe", *files, "--json", "--timestamps")
    assert run.status == 0, run.err
    records = [json.loads(line) for line in run.out.splitlines()]
    assert [rec["file"] for rec in records] == [str(f) for f in files]
    # theo is the held-out speaker (the model never heard his voice); the README shows both
    assert [rec["text"] for rec in records] == ["two seven one eight", "three one four one five"]
    assert records[0]["confidence"] > 0.5  # a training speaker's voice (theo's, 0.47, is lower)
    for rec, path in zip(records, files):
        duration = sf.info(path).duration
        assert rec["duration"] == pytest.approx(duration, abs=1e-3)
        assert [s["text"] for s in rec["segments"]] == [rec["text"]]  # short audio: one segment, all of it
        assert rec["segments"][0]["start"] == 0.0 and rec["segments"][0]["end"] == pytest.approx(duration, abs=1e-3)
        assert 0.0 < rec["confidence"] <= 1.0
        assert [w["word"] for w in rec["words"]] == rec["text"].split() and rec["timing_source"] == "ctc"
        times = [t for w in rec["words"] for t in (w["start"], w["end"])]
        assert times == sorted(times) and 0.0 < times[0] and times[-1] < duration


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00\x00\x00WAVEfmt garbage", bytes(range(256)) * 10])
def test_transcribe_bad_audio_exits_2(capsys, tiny_model, tmp_path, content):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    line = one_error_line(asr_in_process(capsys, "transcribe", bad, "--model", tiny_model))
    assert line.startswith(f"error: {bad}: ")


def test_transcribe_missing_file_exits_2(tiny_model, tmp_path):
    """In a real process: main()'s status is the exit status."""
    r = asr("transcribe", tmp_path / "nope.wav", "--model", tiny_model)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"error: audio file not found: {tmp_path / 'nope.wav'}\n"


def test_not_a_model_dir_exits_2(capsys, tmp_path, wav_path):
    line = one_error_line(asr_in_process(capsys, "transcribe", wav_path, "--model", tmp_path))
    assert str(tmp_path) in line and "not a model directory" in line


def test_serve_refuses_two_models_of_one_name_in_one_line(capsys, monkeypatch):
    monkeypatch.delenv("ASR_MODELS", raising=False)
    line = one_error_line(asr_in_process(capsys, "serve", "--model", "digits", "--model", PRETRAINED_DIR))
    assert line.startswith("error: ASR_MODELS: two models named `digits`"), line


def test_shipped_model_by_name(capsys, tmp_path, monkeypatch):
    """`--model digits` is the shipped model (the service's name for it), from any directory."""
    monkeypatch.chdir(tmp_path)
    run = asr_in_process(capsys, "transcribe", EXAMPLES / "nicolas_2718.wav", "--model", "digits", "--json")
    assert run.status == 0, run.err
    assert json.loads(run.out)["text"] == "two seven one eight"
    line = one_error_line(asr_in_process(capsys, "transcribe", EXAMPLES / "nicolas_2718.wav", "--model", "digitz"))
    assert "digitz" in line and "shipped model (digits)" in line


@pytest.fixture
def training_run(tmp_path) -> tuple[Path, list[dict]]:
    """A training run's folder as `asr train` leaves it midway: config.yaml, tokenizer/ and
    checkpoints step-1.pt, step-2.pt and last.pt (= step 2) of different weights."""
    exp = tmp_path / "exp"
    exp.mkdir()
    save_config(TINY_CFG, exp / "config.yaml")
    tok = tiny_tokenizer()
    tok.save(exp / "tokenizer")
    (exp / "checkpoints").mkdir()
    states = []
    for step in (1, 2):
        torch.manual_seed(step)
        states.append(ASRModel(TINY_CFG.model, tok.vocab_size, TINY_CFG.features.num_mel_bins).state_dict())
        torch.save({"model": states[-1]}, exp / "checkpoints" / f"step-{step}.pt")
    torch.save({"model": states[-1]}, exp / "checkpoints" / "last.pt")
    return exp, states


@pytest.mark.parametrize("steps, weights", [([], [0, 1]), (["--steps", "1", "2"], [0.5, 0.5])])
def test_export_averages_a_runs_checkpoints_into_a_model_dir(capsys, tmp_path, training_run, steps, weights):
    exp, states = training_run
    run = asr_in_process(capsys, "export", exp, *steps, "--out", tmp_path / "model")
    assert run.status == 0 and str(tmp_path / "model") in run.out
    model, tokenizer, _ = load_model_dir(tmp_path / "model")
    key = "decoder.output.weight"
    expected = weights[0] * states[0][key] + weights[1] * states[1][key]
    assert torch.allclose(model.state_dict()[key], expected, atol=1e-6)
    assert tokenizer.vocab_size == model.state_dict()[key].shape[0]


def test_export_of_a_missing_checkpoint_or_folder(capsys, tmp_path, training_run):
    exp, _ = training_run
    line = one_error_line(asr_in_process(capsys, "export", exp, "--steps", "3", "--out", tmp_path / "m"))
    assert "step-3.pt" in line and "step-1.pt" in line  # what is missing, and what there is
    line = one_error_line(asr_in_process(capsys, "export", tmp_path, "--out", tmp_path / "m"))
    assert "not a training run" in line
    assert not (tmp_path / "m").exists()


def test_train_rejects_unknown_config_key(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  d_modle: 10\n")
    assert "d_modle" in one_error_line(asr_in_process(capsys, "train", cfg))


def test_decode_missing_data_exits_2(capsys, tiny_model, tmp_path):
    run = asr_in_process(capsys, "decode", "--data", tmp_path / "nothing", "--out", tmp_path / "hyp",
                         "--model", tiny_model)
    assert str(tmp_path / "nothing") in one_error_line(run)
    assert not (tmp_path / "hyp").exists()


def test_decode_writes_each_utterances_transcript(capsys, tmp_path, fsdd_dir):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("".join(f"u{d} {fsdd_dir}/recordings/{d}_theo_0.wav\n" for d in range(3)))
    args = ["--out", tmp_path / "hyp", "--batch-size", 2, "--vtln-warps", 1]
    run = asr_in_process(capsys, "decode", "--data", data, *args)
    assert run.status == 0, run.err
    assert (tmp_path / "hyp").read_text() == "u0 zero\nu1 one\nu2 two\n"  # the shipped model
    assert f"wrote 3 hypotheses to {tmp_path / 'hyp'}" in run.err


@pytest.mark.parametrize("warps, message", [("0.9,x", "expected comma-separated numbers"), ("2", "[0.5, 1.5]")])
def test_bad_vtln_warps_exit_2(capsys, tiny_model, wav_path, warps, message):
    run = asr_in_process(capsys, "transcribe", wav_path, "--model", tiny_model, "--vtln-warps", warps)
    assert message in refused_argument(run, "transcribe", "--vtln-warps")


def test_config_without_vtln_warps_exits_2(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("inference:\n  vtln_warps: []\n")
    assert "inference.vtln_warps: need one or more warps" in one_error_line(asr_in_process(capsys, "train", cfg))


def test_vtln_warps_keep_the_result_of_the_best_scoring_warp(capsys):
    """Greedy search without the attention window (and so without its EOS penalty): confidence =
    exp(length-normalised score), so the result kept from several warps is the one warp whose
    confidence is highest; the shipped model's own 5 warps are not used."""
    def transcribe(warps: str) -> dict:
        run = asr_in_process(capsys, "transcribe", EXAMPLES / "theo_31415.wav", "--json", "--decoder", "greedy",
                             "--length-penalty", 1, "--attention-window", "off", "--vtln-warps", warps)
        assert run.status == 0, run.err
        return json.loads(run.out)

    alone = {w: transcribe(w) for w in ("1.1", "0.9")}
    assert alone["1.1"]["confidence"] != alone["0.9"]["confidence"]  # each warp gives the model other features
    best = max(alone.values(), key=lambda r: r["confidence"])
    assert best is alone["0.9"]  # so keeping the first warp given would fail below
    together = transcribe("1.1,0.9")
    assert (together["text"], together["confidence"]) == (best["text"], pytest.approx(best["confidence"], rel=1e-6))


# ------------------------------------------------------------------ user mistakes: exit 2, one line


def test_train_config_that_is_a_directory(capsys, tmp_path):
    line = one_error_line(asr_in_process(capsys, "train", tmp_path))
    assert str(tmp_path) in line and "is a directory" in line


def test_train_override_that_is_not_yaml(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  epochs: 1\n")
    line = one_error_line(asr_in_process(capsys, "train", cfg, "--set", "train.epochs=[1"))
    assert "train.epochs=[1" in line and "not valid YAML" in line


@pytest.mark.parametrize(
    "text, message",
    [
        ("train: [1\n", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("train: 5\n", "train: expected a mapping"),
    ],
)
def test_train_config_that_is_not_a_config(capsys, tmp_path, text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    assert message in one_error_line(asr_in_process(capsys, "train", cfg, "--set", "train.epochs=1"))


def test_train_device_this_machine_lacks_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"train:\n  exp_dir: {tmp_path / 'exp'}\n  device: cuda\n")
    assert "CUDA is not available" in one_error_line(asr_in_process(capsys, "train", cfg))
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("device, message", [("bogus", "unknown device 'bogus'"), ("cuda", "CUDA is not available")])
@pytest.mark.parametrize("command", ["transcribe", "decode"])
def test_device_this_machine_lacks(capsys, tmp_path, monkeypatch, wav_path, command, device, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without a GPU
    files = [wav_path] if command == "transcribe" else ["--data", tmp_path, "--out", tmp_path / "hyp"]
    run = asr_in_process(capsys, command, *files, "--device", device)
    assert message in refused_argument(run, command, "--device")


def test_decode_out_that_is_a_directory(capsys, tmp_path):
    run = asr_in_process(capsys, "decode", "--data", tmp_path, "--out", tmp_path)
    assert "is a directory" in refused_argument(run, "decode", "--out")


@pytest.mark.parametrize("size", ["0", "-1", "x"])
def test_decode_batch_size_below_one(capsys, tmp_path, size):
    run = asr_in_process(capsys, "decode", "--data", tmp_path, "--out", tmp_path / "h", "--batch-size", size)
    assert ">= 1" in refused_argument(run, "decode", "--batch-size")


def test_beam_size_is_bounded(capsys, tiny_model, wav_path):
    run = asr_in_process(capsys, "transcribe", wav_path, "--model", tiny_model,
                                    "--beam-size", MAX_BEAM_SIZE + 1)
    assert f"from 1 to {MAX_BEAM_SIZE}" in refused_argument(run, "transcribe", "--beam-size")
    run = asr_in_process(capsys, "transcribe", wav_path, "--model", tiny_model,
                         "--beam-size", MAX_BEAM_SIZE, "--vtln-warps", "1")
    assert run.status == 0 and run.out, run.err


@pytest.mark.parametrize(
    "value, message", [("5,2", "first <= last"), ("4", "two whole numbers"), ("4,x", "expected off or FIRST,LAST")]
)
def test_attention_window_that_is_not_a_window(capsys, tmp_path, value, message):
    run = asr_in_process(capsys, "decode", "--data", tmp_path, "--out", tmp_path / "h", "--attention-window", value)
    assert message in refused_argument(run, "decode", "--attention-window")


def test_eos_penalty_without_an_attention_window(capsys, tiny_model, wav_path):
    run = asr_in_process(capsys, "transcribe", wav_path, "--model", tiny_model, "--decoder", "greedy",
                         "--attention-window", "off", "--eos-penalty", "2")
    assert "eos_penalty: 2.0 needs an attention window" in one_error_line(run)


def test_transcribe_a_directory(capsys, tiny_model, tmp_path):
    line = one_error_line(asr_in_process(capsys, "transcribe", tmp_path, "--model", tiny_model))
    assert str(tmp_path) in line and "is a directory" in line and "not found" not in line


@pytest.fixture(scope="module")
def truncated_flacs(fsdd_dir, tmp_path_factory) -> list:
    """A real recording as FLAC, cut after its 44th byte and cut in half."""
    folder = tmp_path_factory.mktemp("flac")
    wave, rate = sf.read(fsdd_dir / "recordings" / "3_theo_7.wav", dtype="float32")
    sf.write(folder / "whole.flac", wave, rate)
    data = (folder / "whole.flac").read_bytes()
    (folder / "cut44.flac").write_bytes(data[:44])
    (folder / "half.flac").write_bytes(data[: len(data) // 2])
    return [folder / "cut44.flac", folder / "half.flac"]


def test_transcribe_truncated_flac_one_line_each(capsys, tiny_model, wav_path, truncated_flacs):
    """Each bad file gets one line and the good one is still transcribed (needs asr.audio to raise
    AudioError for a truncated FLAC)."""
    run = asr_in_process(capsys, "transcribe", truncated_flacs[0], wav_path, truncated_flacs[1],
                         "--model", tiny_model, "--decoder", "greedy", "--vtln-warps", "1")
    assert run.status == 2 and "Traceback" not in run.err
    assert [line.split("\t")[0] for line in run.out.splitlines()] == [str(wav_path)]
    lines = run.err.strip().splitlines()
    assert len(lines) == 2
    for line, path in zip(lines, truncated_flacs):
        assert line.startswith(f"error: {path}: ")


def test_decode_failure_leaves_the_old_output(capsys, tiny_model, tmp_path, fsdd_dir, truncated_flacs):
    data = tmp_path / "data"
    data.mkdir()
    good = fsdd_dir / "recordings" / "3_theo_7.wav"
    (data / "wav.scp").write_text(f"u1 {good}\nu2 {truncated_flacs[1]}\n")
    out = tmp_path / "out" / "hyp"
    out.parent.mkdir()
    out.write_text("u0 old\n")
    args = ["decode", "--data", data, "--out", out, "--model", tiny_model, "--decoder", "greedy", "--vtln-warps", "1"]
    line = one_error_line(asr_in_process(capsys, *args, "--batch-size", 1))  # u1 written, then u2 fails
    assert str(truncated_flacs[1]) in line
    assert out.read_text() == "u0 old\n" and [p.name for p in out.parent.iterdir()] == ["hyp"]
    (data / "wav.scp").write_text(f"u1 {good}\n")
    run = asr_in_process(capsys, *args)
    assert run.status == 0, run.err
    assert out.read_text().split()[0] == "u1" and [p.name for p in out.parent.iterdir()] == ["hyp"]


def test_decode_out_that_cannot_be_written(capsys, tiny_model, tmp_path, wav_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"u1 {wav_path}\n")
    (tmp_path / "file").write_text("")
    run = asr_in_process(capsys, "decode", "--data", data, "--out", tmp_path / "file" / "hyp", "--model", tiny_model)
    assert f"cannot write {tmp_path / 'file' / 'hyp'}" in one_error_line(run)


# ---------------------------------------------------------------- asr wer


@pytest.fixture
def transcript_files(tmp_path):
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.jsonl"
    ref.write_text("".join(f"{k} {v}\n" for k, v in REFS.items()), encoding="utf-8")
    hyp.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in HYPS.items()), encoding="utf-8")
    return ref, hyp


def wer_main(argv: list[str]) -> int:
    return main(["wer", *argv])


def test_cli_text_report(transcript_files, capsys):
    ref, hyp = transcript_files
    assert wer_main([str(ref), str(hyp)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "%WER 27.27 [ 3 / 11, 1 ins, 1 del, 1 sub ]\n"
        "%CER 21.74 [ 10 / 46 ]\n"
        "%SER 66.67 [ 2 / 3 ]\n"
        "Utterances: 3, reference words: 11\n"
        "Runaways: 0 (hypotheses more than 2x their reference's words)\n"
    )
    assert out.index("id: (u1)") < out.index("id: (u2)")
    assert "id: (u3)" not in out
    assert "HYP:  the cat SIT on *** mat" in out


def test_cli_worst_limits_alignments(transcript_files, capsys):
    ref, hyp = transcript_files
    assert wer_main([str(ref), str(hyp), "--worst", "1"]) == 0
    out = capsys.readouterr().out
    assert "id: (u1)" in out and "id: (u2)" not in out
    assert wer_main([str(ref), str(hyp), "--worst", "0"]) == 0
    assert "REF:" not in capsys.readouterr().out


def test_cli_json(transcript_files, capsys):
    ref, hyp = transcript_files
    assert wer_main(["--json", str(ref), str(hyp)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["summary"]["wer"] == pytest.approx(3 / 11)
    assert result["summary"]["ser"] == pytest.approx(2 / 3)
    assert [u["id"] for u in result["utterances"]] == ["u1", "u2", "u3"]
    assert result["utterances"][0]["alignment"][4] == {"op": "D", "ref": "the", "hyp": None}


def test_cli_groups(transcript_files, tmp_path, capsys):
    ref, hyp = transcript_files
    groups = tmp_path / "utt2group"
    groups.write_text("u1 adult\nu2 child\nu3 child\n")
    assert wer_main([str(ref), str(hyp), "--groups", str(groups)]) == 0
    out = capsys.readouterr().out
    assert "%WER 33.33 %CER" in out and "1 utterances: adult" in out  # 2 errors / 6 words
    assert "%WER 20.00 %CER" in out and "2 utterances: child" in out  # 1 error / 5 words
    assert wer_main([str(ref), str(hyp), "--groups", str(groups), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["groups"]["child"]["errors"] == 1 and result["groups"]["adult"]["num_ref_words"] == 6
    groups.write_text("u1 adult\n")
    assert wer_main([str(ref), str(hyp), "--groups", str(groups)]) == 2
    assert "2 reference(s) have no group" in capsys.readouterr().err


def test_cli_normalisation_flags(tmp_path, capsys):
    ref, hyp = tmp_path / "ref", tmp_path / "hyp"
    ref.write_text("a Hello, world\n", encoding="utf-8")
    hyp.write_text("a uh hello <unk> world\n", encoding="utf-8")
    assert wer_main([str(ref), str(hyp), "--ignore", "uh", "--ignore", "<unk>"]) == 0
    assert capsys.readouterr().out.startswith("%WER 0.00 ")
    for flag in ("--no-lowercase", "--keep-punctuation"):  # each alone makes "Hello," differ
        assert wer_main([str(ref), str(hyp), flag, "--ignore", "uh", "<unk>"]) == 0
        assert capsys.readouterr().out.startswith("%WER 50.00 [ 1 / 2, 0 ins, 0 del, 1 sub ]")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda ref, hyp: hyp.unlink(), "no such file"),
        (lambda ref, hyp: hyp.write_text('{"id": "u1", "text": "x"}\nnot json\n'), "hyp.jsonl:2: invalid JSON"),
        (lambda ref, hyp: hyp.write_text('{"id": "u1", "text": "x"}\n'), "2 of 3 reference ids have no hypothesis"),
    ],
)
def test_cli_bad_input_exits_2_with_message(transcript_files, capsys, setup, message):
    ref, hyp = transcript_files
    setup(ref, hyp)
    assert wer_main([str(ref), str(hyp)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err and "Traceback" not in captured.err


def test_cli_allow_missing(transcript_files, capsys):
    ref, hyp = transcript_files
    hyp.write_text('{"id": "u3", "text": "hello world"}\n', encoding="utf-8")
    assert wer_main([str(ref), str(hyp), "--allow-missing"]) == 0
    assert capsys.readouterr().out.startswith("%WER 81.82 [ 9 / 11, 0 ins, 9 del, 0 sub ]")


def test_asr_cli_wer_subprocess(transcript_files, tmp_path):
    ref, hyp = transcript_files
    done = asr("wer", ref, hyp, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["errors"] == 3
    done = asr("wer", ref, tmp_path / "nope")
    assert done.returncode == 2
    assert "no such file" in done.stderr and "Traceback" not in done.stderr


def test_cli_worst_must_be_a_whole_number(transcript_files, capsys):
    ref, hyp = transcript_files
    for bad in ("-1", "x", "1.5"):
        line = refused_argument(asr_in_process(capsys, "wer", ref, hyp, "--worst", bad), "wer", "--worst")
        assert line.endswith(f"expected a whole number >= 0, got {bad!r}")
