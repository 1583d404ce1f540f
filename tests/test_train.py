"""Training end to end on real FSDD recordings: overfitting, exact resume after a kill, export."""

import csv
import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from asr.audio import load_audio
from asr.config import ConfigError, load_config
from asr.data import collate, load_manifest
from asr.features import compute_cmvn, fbank
from asr.model import ASRModel, load_model_dir
from asr.train import Trainer, autocast_dtype, average_checkpoints, checkpoint_config, estimate_cmvn, train

WORDS = "zero one two three four five six seven eight nine".split()
TINY = {
    "augment": {"speed_factors": [1.0], "freq_masks": 0, "time_masks": 0},
    "model": {"d_model": 64, "n_heads": 2, "d_ff": 128, "encoder_layers": 2, "decoder_layers": 1,
              "conv_channels": 16, "dropout": 0.0},
    "optim": {"lr": 0.003, "warmup_steps": 20},
    "train": {"epochs": 1000, "max_frames_per_batch": 4000, "num_workers": 0, "log_every": 10,
              "average_best": 1},
}


def make_data_dir(path: Path, fsdd_dir: Path, speaker: str = "jackson", takes=(0, 1)) -> Path:
    path.mkdir(parents=True)
    with open(path / "wav.scp", "w") as scp, open(path / "text", "w") as text:
        for d, word in enumerate(WORDS):
            for k in takes:
                scp.write(f"{speaker}_{d}_{k} {fsdd_dir / 'recordings' / f'{d}_{speaker}_{k}.wav'}\n")
                text.write(f"{speaker}_{d}_{k} {word}\n")
    return path


def write_config(tmp_path: Path, data: Path, **train) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load(yaml.safe_dump(TINY))
    cfg["train"].update(train_data=str(data), dev_data=str(data), exp_dir=str(tmp_path / "exp"), **train)
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # bf16: autocast on CPU, losses in fp32
def test_overfits_real_utterances_to_zero_wer(tmp_path, fsdd_dir, precision):
    data = make_data_dir(tmp_path / "data", fsdd_dir)
    cfg = load_config(write_config(tmp_path, data, max_steps=160, eval_every_steps=40, precision=precision))
    model_dir = train(cfg)
    with open(tmp_path / "exp" / "train_log.csv", newline="") as f:
        wers = [float(row["dev_wer"]) for row in csv.DictReader(f) if row["dev_wer"]]  # eval rows only
    assert wers[-1] == 0.0 and wers[0] > 0.0  # it learned, measured by dev WER
    assert list((tmp_path / "exp" / "plots").glob("attention-step*.png"))
    model, tokenizer, _ = load_model_dir(model_dir)
    assert tokenizer.decode(tokenizer.encode("three one")) == "three one"
    assert '"dev_wer": 0.0' in (model_dir / "dev_wer.json").read_text()


def run_cli_train(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "asr.cli", "train", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def test_resume_after_kill_is_exact(tmp_path, fsdd_dir):
    """Kill -9 a run mid-way; the resumed run ends with exactly the weights of an uninterrupted one."""
    data = make_data_dir(tmp_path / "data", fsdd_dir, takes=(0, 1, 2))
    settings = dict(max_steps=60, checkpoint_every_steps=5, eval_every_steps=1000, max_frames_per_batch=2500)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    interrupted = write_config(tmp_path / "a", data, **settings)
    reference = write_config(tmp_path / "b", data, **settings)

    proc = run_cli_train(interrupted)
    last = tmp_path / "a" / "exp" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if last.exists() and load_step(last) >= 15:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_step(last)
    assert 15 <= killed_at < 60

    for config in (interrupted, reference):
        proc = run_cli_train(config)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    a = torch.load(tmp_path / "a" / "exp" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "exp" / "checkpoints" / "last.pt", weights_only=True)
    assert load_step(tmp_path / "a" / "exp" / "checkpoints" / "last.pt") == 60
    for key in b["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def load_step(path: Path) -> int:
    for _ in range(20):  # the file is replaced atomically, but may vanish between exists() and open
        try:
            return load_checkpoint_step(path)
        except FileNotFoundError:
            time.sleep(0.01)
    raise FileNotFoundError(path)


def load_checkpoint_step(path: Path) -> int:
    import json

    return json.loads(torch.load(path, map_location="cpu", weights_only=True)["state"])["step"]


def test_two_accumulated_half_batches_step_as_the_whole_batch(tmp_path, fsdd_dir):
    """train.accumulate_steps: a step's gradient is the mean of its batches' gradients, which is the whole
    batch's gradient when the halves hold as many utterances and tokens (one word each here). Two steps on
    two halves each give the losses and gradients of two steps on the whole batches. (Gradients, not
    weights: AdamW turns the rounding noise of a gradient that is 0 in theory, e.g. the attention's key
    bias, into a full-size step of random sign.)"""
    data = make_data_dir(tmp_path / "data", fsdd_dir, takes=(0, 1))
    trainers = []
    for name, steps in (("halves", 2), ("whole", 1)):
        (tmp_path / name).mkdir()
        trainers.append(Trainer(load_config(write_config(tmp_path / name, data, accumulate_steps=steps))))
    halves, whole = trainers
    for first in (0, 8):
        items = [halves.train_set[i] for i in range(first, first + 8)]  # (T, 80) features of one word each
        a = halves._train_step([collate(items[:4]), collate(items[4:])])
        b = whole._train_step([collate(items)])
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
        for (name, p), q in zip(halves.model.named_parameters(), whole.model.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)  # the step's (clipped) gradient


def test_precision_picks_the_autocast_dtype():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("auto", gpu) == torch.bfloat16  # as amp: true did
    assert autocast_dtype("bf16", cpu) == torch.bfloat16 and autocast_dtype("fp16", gpu) == torch.float16
    assert autocast_dtype("fp32", gpu) is None
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        autocast_dtype("fp16", cpu)


def test_average_checkpoints_is_the_mean(tmp_path):
    from asr.config import ModelConfig

    cfg = ModelConfig(d_model=32, n_heads=2, d_ff=64, encoder_layers=1, decoder_layers=1, conv_channels=8)
    states = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        states.append(ASRModel(cfg, 10, n_mels=80).state_dict())
        torch.save({"model": states[-1]}, tmp_path / f"{seed}.pt")
    avg = average_checkpoints([tmp_path / "0.pt", tmp_path / "1.pt"])
    key = "decoder.output.weight"
    assert torch.allclose(avg[key], (states[0][key] + states[1][key]) / 2, atol=1e-6)


def test_cmvn_is_estimated_at_the_feature_sample_rate(tmp_path, fsdd_dir):
    """A recipe at 8 kHz: the statistics are those of its audio loaded at 8 kHz (not at the 16 kHz default)."""
    data = make_data_dir(tmp_path / "data", fsdd_dir, takes=(0,))
    cfg = load_config(write_config(tmp_path, data))
    cfg = dataclasses.replace(cfg, features=dataclasses.replace(cfg.features, sample_rate=8000, num_mel_bins=40))
    utts = load_manifest(data)
    mean, std = estimate_cmvn(utts, cfg)
    expected = compute_cmvn(fbank(torch.from_numpy(load_audio(u.audio, 8000)), cfg.features) for u in utts)
    torch.testing.assert_close((mean, std), expected)


def test_resume_refuses_another_run_and_allows_a_longer_one(tmp_path, fsdd_dir):
    """The checkpoint holds its config; a resume may change how long the run goes (train.epochs,
    train.max_steps, ...) but not the model, tokenizer, features or anything else a step computes."""
    data = make_data_dir(tmp_path / "data", fsdd_dir, takes=(0,))
    config = write_config(tmp_path, data, max_steps=2, eval_every_steps=1000)
    cfg = load_config(config)
    train(cfg)
    last = tmp_path / "exp" / "checkpoints" / "last.pt"
    assert checkpoint_config(last) == cfg
    saved_yaml = (tmp_path / "exp" / "config.yaml").read_text()
    for overrides, keys in [
        ({"model.d_model": 32}, ["model.d_model (64, now 32)"]),
        ({"tokenizer.kind": "char", "features.num_mel_bins": 40}, ["features.num_mel_bins (80, now 40)",
                                                                   "tokenizer.kind ('word', now 'char')"]),
        ({"optim.lr": 0.001}, ["optim.lr (0.003, now 0.001)"]),
    ]:
        with pytest.raises(ConfigError, match="cannot resume from .*last.pt") as err:
            Trainer(load_config(config, overrides))
        assert all(key in str(err.value) for key in keys), str(err.value)
        assert (tmp_path / "exp" / "config.yaml").read_text() == saved_yaml  # nothing overwritten
    log = tmp_path / "exp" / "train_log.csv"
    old_header = ("step,epoch,seconds,loss,attention,ctc,guided,guided_weight,accuracy,grad_norm,lr,audio_seconds,"
                  "dev_wer,report_wer")  # the columns of logs written by an older version
    log.write_text(old_header + "\n")
    longer = load_config(config, {"train.max_steps": 3, "train.epochs": 5, "train.log_every": 1})
    trainer = Trainer(longer)
    assert trainer.state.step == 2 and checkpoint_config(last) == cfg
    assert load_config(tmp_path / "exp" / "config.yaml") == longer
    trainer.run()
    rows = list(csv.reader(log.open()))
    assert ",".join(rows[0]) == old_header and len(rows) > 1  # appended under the columns the log began with
    assert all(len(row) == len(rows[0]) for row in rows)
    assert checkpoint_config(last) == longer

    older = torch.load(last, weights_only=True)  # a checkpoint from before they held their config:
    del older["config"]  # the run's config.yaml speaks for it
    torch.save(older, last)
    assert checkpoint_config(last) is None
    with pytest.raises(ConfigError, match=r"model\.d_model \(64, now 32\)"):
        Trainer(load_config(config, {"model.d_model": 32}))


def test_dev_decoder_chooses_the_search_that_scores_the_dev_set(tmp_path, fsdd_dir):
    """train.dev_decoder: ctc_greedy scores the dev set with the CTC head (for runs whose attention decoder
    reads the audio long after CTC does); the same model scored greedily gets the attention decoder's WER."""
    from asr.evaluate import Normalizer, score
    from asr.transcribe import Transcriber

    data = make_data_dir(tmp_path / "data", fsdd_dir, takes=(0,))
    wers = {}
    for method in ("greedy", "ctc_greedy"):
        trainer = Trainer(load_config(write_config(tmp_path / method, data, dev_decoder=method)))
        wers[method] = trainer.dev_wer()
        transcriber = Transcriber(trainer.model.eval(), trainer.tokenizer, trainer.cfg, "test")
        hyps = {u.id: r.text for u, r in transcriber.decode_manifest(trainer.dev_utts, transcriber.options(method))}
        assert wers[method] == score({u.id: u.text for u in trainer.dev_utts}, hyps, Normalizer()).wer
    assert wers["greedy"] != wers["ctc_greedy"]  # the same untrained model: the two heads say different things
    with pytest.raises(ConfigError, match="train.dev_decoder: expected one of greedy, ctc_greedy"):
        load_config(write_config(tmp_path / "bad", data, dev_decoder="beam"))
    no_ctc = yaml.safe_load(write_config(tmp_path / "noctc", data, dev_decoder="ctc_greedy").read_text())
    no_ctc["model"]["ctc"] = False
    (tmp_path / "noctc" / "conf.yaml").write_text(yaml.safe_dump(no_ctc))
    with pytest.raises(ConfigError, match="ctc_greedy needs the CTC head"):
        load_config(tmp_path / "noctc" / "conf.yaml")
