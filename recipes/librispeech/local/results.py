#!/usr/bin/env python3
"""Stage 5's table: the scores `asr wer --json` wrote for each decode of an experiment, in the shape
of ESPnet's RESULTS tables, so that the figures can be set beside published ones.

  local/results.py exp/train_100h_1gpu        # reads exp/.../decode_*/wer.json, writes exp/.../RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from stage import StageError, run_main

HEADER = "|decode|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|\n|---|---|---|---|---|---|---|---|---|\n"


def row(name: str, summary: dict) -> str:
    """One table row: counts, then percentages of the reference words (S.Err: of the utterances)."""
    words = summary["num_ref_words"]
    corr, sub, dele, ins = (f"{100 * summary[k] / words:.1f}" for k in ("hits", "substitutions", "deletions", "insertions"))
    ser = 100 * summary["sentence_errors"] / summary["num_utterances"]
    return (f"|{name}|{summary['num_utterances']}|{words}|{corr}|{sub}|{dele}|{ins}|"
            f"{100 * summary['wer']:.2f}|{ser:.1f}|\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp", type=Path, help="experiment folder holding decode_*/wer.json")
    args = parser.parse_args(argv)
    scores = sorted(args.exp.glob("decode_*/wer.json"))
    if not scores:
        raise StageError(f"{args.exp}: no decode_*/wer.json (run the decode and score stages first)")
    rows = []
    for path in scores:
        try:
            summary = json.loads(path.read_text())["summary"]
        except (OSError, ValueError, KeyError) as err:
            raise StageError(f"{path}: not a report of `asr wer --json` ({err})") from None
        rows.append(row(path.parent.name.removeprefix("decode_"), summary))
    table = "## WER (%)\n\n" + HEADER + "".join(rows)
    (args.exp / "RESULTS.md").write_text(f"# {args.exp.name}\n\n{table}")
    print(table, end="")


if __name__ == "__main__":
    sys.exit(run_main(main))
