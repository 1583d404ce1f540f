#!/usr/bin/env python3
"""Stage "combine": the union of Kaldi data dirs, e.g. train + train_synth -> train_all.

  local/combine.py data/train_all data/train data/train_synth

Fails on an utterance id found in more than one input. Inputs must be finished
stages (have a .done marker); with --allow-missing an input that does not exist
is left out with a warning (e.g. train_synth where espeak-ng is not installed).
The output is remade whenever an input has been remade.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from kaldi_dir import DataDirError, combine_data_dirs
from stage import DONE_MARKER, add_force_arg, begin, done_marker, mark_done, read_marker, run_main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="data dir to write")
    parser.add_argument("inputs", type=Path, nargs="+", help="data dirs to combine")
    parser.add_argument(
        "--allow-missing", action="store_true", help="leave out inputs that do not exist instead of failing"
    )
    add_force_arg(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    inputs = []
    for d in args.inputs:
        if args.allow_missing and not d.exists():
            print(f"warning: {d} does not exist, leaving it out of {args.out}")
        elif read_marker(done_marker(d)) is None:
            raise DataDirError(f"{d} is not a finished data dir (no {DONE_MARKER}): run the stage that makes it")
        else:
            inputs.append(d)
    if not inputs:
        raise DataDirError(f"nothing to combine into {args.out}")
    # The inputs' own markers are part of the options, so remaking an input remakes the union.
    params = {"inputs": [[str(d.resolve()), read_marker(done_marker(d))] for d in inputs]}
    if not begin(done_marker(args.out), params, args.force, outputs=[args.out]):
        return
    utts = combine_data_dirs(args.out, inputs)
    mark_done(done_marker(args.out), params)
    hours = sum(u.duration for u in utts) / 3600
    print(f"{args.out}: {len(utts)} utterances from {len(inputs)} dirs, {hours:.2f} h")


if __name__ == "__main__":
    sys.exit(run_main(main))
