#!/usr/bin/env python3
"""DDP overhead on CPU: the same global batches trained by 2 gloo processes and by 1 process.

  .venv/bin/python benchmarks/ddp_overhead.py                   # digits config, 400 utterances of the recipe's train set, 20 steps
  .venv/bin/python benchmarks/ddp_overhead.py --utts 800 --steps 40 --data DATA_DIR_OR_JSONL

Every run is `asr train` itself on the digits recipe's config (augmentation on): the 2-process run
through torchrun (`asr train --nproc 2`, one batch per rank and step, gradients all-reduced by gloo),
the 1-process runs with train.accumulate_steps 2, so that each step trains on the same two batches.
Seconds per step come from each run's train_log.csv (a row per step), from the end of step 3 to the
last step: start-up, CMVN, the first steps, the evaluation and the export are outside. With one
thread the 1-process run does the work of both ranks on one core; half its time per step is what 2
processes on 2 cores would take if DDP cost nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from asr.data import load_manifest

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "digits"
FIRST_TIMED_STEP = 3  # steps before this one warm up (allocator, kernels, data loader)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(RECIPE / "conf" / "train.yaml"), help="training config (default: the digits recipe's)")
    p.add_argument("--data", default=str(RECIPE / "data" / "train"), help="Kaldi dir / JSONL to train on (default: the recipe's train set)")
    p.add_argument("--utts", type=int, default=400, help="utterances of --data used (default: 400)")
    p.add_argument("--steps", type=int, default=20, help="training steps per run (default: 20)")
    return p.parse_args()


def write_subset(data: str, count: int, path: Path) -> Path:
    """The first `count` utterances of `data`, as JSONL with absolute audio paths."""
    with path.open("w") as f:
        for u in load_manifest(data)[:count]:
            f.write(json.dumps({"id": u.id, "audio": u.audio, "text": u.text, "duration": u.duration}) + "\n")
    return path


def run(name: str, args: argparse.Namespace, subset: Path, work: Path, nproc: int, threads: int) -> dict:
    """One `asr train` run -> seconds per step and audio seconds per second over the timed steps."""
    exp = work / name
    overrides = {
        "train.train_data": str(subset), "train.dev_data": str(subset), "train.dev_max_utts": 4, "train.report_data": "''",
        "train.exp_dir": str(exp), "train.max_steps": args.steps, "train.epochs": 1000, "train.log_every": 1,
        "train.eval_every_steps": 10**6, "train.checkpoint_every_steps": 10**6, "train.device": "cpu",
        "train.accumulate_steps": 2 // nproc,
    }
    command = [sys.executable, "-m", "asr", "train", args.config, "--nproc", str(nproc)]
    command += [f"--set={key}={value}" for key, value in overrides.items()]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    with open(exp / "train_log.csv", newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["loss"]]  # step rows (evaluation rows have no loss)
    timed = [row for row in rows if int(row["step"]) > FIRST_TIMED_STEP]
    start = next(float(row["seconds"]) for row in rows if int(row["step"]) == FIRST_TIMED_STEP)
    seconds = float(timed[-1]["seconds"]) - start
    audio = sum(float(row["audio_seconds"]) for row in timed)  # both batches of each step, over the ranks
    return {"s_per_step": seconds / len(timed), "audio_per_s": audio / seconds, "steps": len(timed)}


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())


def main() -> None:
    args = parse_args()
    if not Path(args.data).exists():
        sys.exit(f"{args.data} not found: run the digits recipe's data stages, or give --data (a Kaldi dir or JSONL)")
    load = os.getloadavg()[0]
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, load average {load:.1f} at the start; "
          f"torch {torch.__version__}, gloo")
    print(f"command: {' '.join(sys.argv)}  ({args.utts} utterances of {args.data}, {args.steps} steps, "
          f"config {args.config}, two batches per step)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subset = write_subset(args.data, args.utts, work / "subset.jsonl")
        runs = {
            "1 process, 1 thread (both batches)": run("one_thread", args, subset, work, nproc=1, threads=1),
            "1 process, 2 threads (both batches)": run("two_threads", args, subset, work, nproc=1, threads=2),
            "2 processes x 1 thread (DDP, gloo)": run("ddp", args, subset, work, nproc=2, threads=1),
        }
    print(f"{'run':<38}{'s/step':>9}{'audio s/s':>11}")
    for name, r in runs.items():
        print(f"{name:<38}{r['s_per_step']:>9.3f}{r['audio_per_s']:>11.1f}")
    ideal = runs["1 process, 1 thread (both batches)"]["s_per_step"] / 2
    ddp = runs["2 processes x 1 thread (DDP, gloo)"]["s_per_step"]
    print(f"DDP overhead: {ddp - ideal:.3f} s/step over half the 1-thread time ({ideal:.3f}); "
          f"scaling efficiency {ideal / ddp:.0%}; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
