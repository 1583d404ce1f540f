#!/usr/bin/env python3
"""Dev WER against training steps for several experiments, from their train_log.csv.

  local/plot_curves.py exp/transformer_guided exp/noguided --out exp/guided_vs_not.png

Plots the WER of the checkpoint-selection set (dev_wer) and of the report set
(report_wer: the unseen speaker) at every evaluation, and prints them as a table.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_curve(exp: Path, column: str) -> tuple[list[int], list[float]]:
    steps, wers = [], []
    with open(exp / "train_log.csv") as f:
        for row in csv.DictReader(f):
            if row.get(column):
                steps.append(int(row["step"]))
                wers.append(100 * float(row[column]))
    return steps, wers


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exps", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, column, title in zip(axes, ("report_wer", "dev_wer"), ("unseen speaker (report set)", "selection set")):
        for exp in args.exps:
            steps, wers = read_curve(exp, column)
            ax.plot(steps, wers, marker="o", label=exp.name)
            print(f"{exp.name} {column}: " + ", ".join(f"{s}:{w:.1f}" for s, w in zip(steps, wers)))
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("WER % (greedy)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
