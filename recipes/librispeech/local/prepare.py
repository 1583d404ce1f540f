#!/usr/bin/env python3
"""Stage 1 "data": each LibriSpeech part as a Kaldi data dir, data/PART with - as _ (data/dev_clean).

  local/prepare.py --data data --parts train-clean-100 dev-clean dev-other test-clean test-other

Reads the parts where stage 0 recorded them (<data>/librispeech_path). wav.scp names the FLAC
files themselves (absolute paths: nothing is converted or copied); text is the transcript
normalised as everywhere in the project (asr.tokenizer.normalize_text: lower case, single
spaces; apostrophes kept); utt2spk maps to SPEAKER-CHAPTER; utt2dur comes from the FLAC headers.
A part whose layout is not LibriSpeech's (a missing transcript file, a .flac without a
transcript line, a folder not named by a number) stops the stage with one line saying where.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from kaldi_dir import write_data_dir
from librispeech import check_parts, data_dir_name, part_utterances, read_path_file
from stage import add_force_arg, begin, done_marker, mark_done, run_main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="recipe data folder (default: data)")
    parser.add_argument("--parts", nargs="+", required=True, help="LibriSpeech parts, e.g. train-clean-100 dev-clean")
    parser.add_argument("--jobs", type=int, default=8, help="threads reading FLAC headers (default: 8)")
    add_force_arg(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    parts = check_parts(args.parts)
    corpus = read_path_file(args.data)
    for part in parts:
        out = args.data / data_dir_name(part)
        params = {"corpus": str(corpus), "part": part}
        if not begin(done_marker(out), params, args.force, outputs=[out]):
            continue
        utts = part_utterances(corpus, part, args.jobs)
        write_data_dir(out, utts)
        mark_done(done_marker(out), params)
        hours = sum(u.duration for u in utts) / 3600
        readers = len({u.speaker.split("-")[0] for u in utts})
        print(f"{out}: {len(utts)} utterances, {hours:.2f} h, {readers} speakers")


if __name__ == "__main__":
    sys.exit(run_main(main))
