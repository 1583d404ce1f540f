"""Data-parallel training: each rank's shard of the batches, and 2 gloo processes (torchrun) training
on real FSDD recordings as one process does on the same global batches, resuming exactly."""

import json
import subprocess
import sys
from pathlib import Path

import torch
from test_train import make_data_dir, write_config

from asr.config import load_config
from asr.data import shard_batches
from asr.train import train


def test_shards_are_disjoint_equal_and_cut_to_whole_steps():
    batches = [[i] for i in range(11)]
    shards = [shard_batches(batches, rank, 2, per_step=2) for rank in range(2)]
    assert shards == [[[0], [2], [4], [6]], [[1], [3], [5], [7]]]  # steps take batches 0-3, then 4-7
    assert shard_batches(batches, 0, 1) == batches  # one process: every batch, in order
    assert shard_batches(batches, 0, 1, per_step=2) == batches[:10]
    assert shard_batches(batches[:3], 1, 4) == []  # fewer batches than ranks: no step at all


def run_cli(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "asr", "train", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def last_checkpoint(exp: Path) -> dict:
    return torch.load(exp / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)


def test_two_processes_match_one_with_both_batches_per_step_and_resume_exactly(tmp_path, fsdd_dir):
    """How the runs are made equal: step s of a 2-rank run trains rank r on batch 2s + r of the epoch's
    list and DDP averages the two gradients. One process with train.accumulate_steps 2 takes batches
    2s and 2s + 1 in step s and averages their gradients: the same global batch and the same mean (it
    equals one combined batch when the two hold as many utterances and tokens: test_train's
    accumulation test). Augmentation and dropout are off (TINY), rank 0 has the single run's seed, and
    DDP gives rank 1 rank 0's initial weights. 30 single words make 9 batches of <= 200 frames an
    epoch: 4 steps, the ninth batch cut. The runs go 6 steps: into the second epoch."""
    data = make_data_dir(tmp_path / "data", fsdd_dir, takes=(0, 1, 2))
    settings = dict(max_frames_per_batch=200, eval_every_steps=1000, log_every=1, dev_max_utts=4)
    configs = {}
    for name, extra in [("resumed", {"max_steps": 3}), ("straight", {"max_steps": 6}),
                        ("one_process", {"max_steps": 6, "accumulate_steps": 2})]:
        (tmp_path / name).mkdir()
        configs[name] = write_config(tmp_path / name, data, **settings, **extra)

    run_cli(str(configs["resumed"]), "--nproc", "2")  # stops after step 3, mid-epoch
    assert json.loads(last_checkpoint(tmp_path / "resumed" / "exp")["state"])["batch_in_epoch"] == 6
    run_cli(str(configs["resumed"]), "--nproc", "2", "--set", "train.max_steps=6")  # every rank loads last.pt
    run_cli(str(configs["straight"]), "--nproc", "2")
    train(load_config(configs["one_process"]))

    resumed, straight, one = (last_checkpoint(tmp_path / name / "exp") for name in ("resumed", "straight", "one_process"))
    assert json.loads(straight["state"])["step"] == 6 and json.loads(straight["state"])["epoch"] == 1
    for key, value in straight["model"].items():
        assert torch.equal(resumed["model"][key], value), key
        torch.testing.assert_close(one["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    assert len(straight["rng_other_ranks"]) == 1  # rank 1's generators, for its resume

