#!/usr/bin/env python3
"""Stage "real voices": the digit strings of speechocean762 as Kaldi data dirs.

speechocean762 (Zhang et al., Interspeech 2021; OpenSLR 101) is English read by non-native
speakers, most of them children of 6-9: the voices FSDD's five men lack. 125 of its
utterances (41 speakers) are digit strings ("ZERO THREE FIVE ONE"). The corpus' own split
decides who is heard in training:

  data/train_so762  speakers of the corpus' train split; each utterance --repeat times
                    (other ids, same audio: training draws other augmentation for each);
                    --train-set names another folder (train_so762_x40 for the third run)
  data/dev_so762    speakers of its test split, never heard in training: reported
  data/speech_so762 the other utterances (English sentences) of the train split's speakers:
                    speech of the same voices for joint training of the encoder
                    (train.aux_data; conf/joint.yaml)

  local/speechocean.py --data data --local ../../../shared/data/speechocean762

The copy is a folder with `manifest.jsonl` (one utterance a line: id, audio path relative to
the folder, text, speaker, age, duration, split) and the audio it names (any format
soundfile reads). wav.scp points at that audio; spk2age keeps each speaker's age.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from fsdd import DIGIT_WORDS
from kaldi_dir import Utt, write_data_dir
from stage import StageError, add_force_arg, begin, done_marker, mark_done, run_main

SETS = {"train": "train_so762", "test": "dev_so762"}  # corpus split -> data dir of its digit strings
SPEECH_SET = "speech_so762"  # the train split's other utterances


class SpeechoceanError(StageError):
    """Not a usable speechocean762 copy."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="recipe data folder (default: data)")
    parser.add_argument("--local", type=Path, required=True, help="the speechocean762 copy (folder with manifest.jsonl)")
    parser.add_argument("--repeat", type=int, default=10, help="copies of each training utterance (default: 10)")
    parser.add_argument("--train-set", default=SETS["train"], help="data dir name of the train split's digit strings "
                        "(default: %(default)s)")
    add_force_arg(parser)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    return args


def utterances(root: Path) -> list[dict]:
    """The manifest's utterances, text in lower case, audio as an absolute path."""
    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        raise SpeechoceanError(f"{manifest} not found: --local must be a speechocean762 copy with manifest.jsonl")
    rows = []
    for lineno, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            words = row["text"].lower().split()
            if words:
                rows.append({**row, "text": " ".join(words), "audio": (root / row["audio"]).resolve()})
        except (ValueError, KeyError, AttributeError) as err:
            raise SpeechoceanError(f"{manifest}:{lineno}: not an utterance record ({err})") from None
    missing = [str(r["audio"]) for r in rows if not r["audio"].is_file()]
    if missing:
        raise SpeechoceanError(f"{len(missing)} audio file(s) of the manifest are missing, e.g. {missing[0]}")
    return rows


def is_digit_string(row: dict) -> bool:
    return all(w in DIGIT_WORDS for w in row["text"].split())


def make_set(rows: list[dict], repeat: int) -> list[Utt]:
    return [
        Utt(f"so762-{r['speaker']}-{r['id']}-{k}" if repeat > 1 else f"so762-{r['speaker']}-{r['id']}",
            r["audio"], r["text"], f"so762-{r['speaker']}", float(r["duration"]))
        for r in rows for k in range(repeat)
    ]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    root = args.local.resolve()
    every = utterances(root)
    rows = [r for r in every if is_digit_string(r)]
    for split, name in {**SETS, "train": args.train_set}.items():
        repeat = args.repeat if split == "train" else 1
        out = args.data / name
        params = {"copy": str(root), "split": split, "repeat": repeat}
        if not begin(done_marker(out), params, args.force, outputs=[out]):
            continue
        mine = [r for r in rows if r.get("split") == split]
        if not mine:
            raise SpeechoceanError(f"{root}: no digit strings in the corpus' {split} split")
        utts = make_set(mine, repeat)
        write_data_dir(out, utts)
        ages = {f"so762-{r['speaker']}": r.get("age") for r in mine}
        (out / "spk2age").write_text("".join(f"{s} {a}\n" for s, a in sorted(ages.items())))
        mark_done(done_marker(out), params)
        print(f"{out}: {len(utts)} utterances ({len(mine)} recordings, {len(ages)} speakers)")
    out = args.data / SPEECH_SET
    params = {"copy": str(root), "split": "train", "digit_strings": False}
    if begin(done_marker(out), params, args.force, outputs=[out]):
        other = [r for r in every if r.get("split") == "train" and not is_digit_string(r)]
        write_data_dir(out, make_set(other, 1))
        mark_done(done_marker(out), params)
        print(f"{out}: {len(other)} utterances ({len({r['speaker'] for r in other})} speakers)")


if __name__ == "__main__":
    sys.exit(run_main(main))
