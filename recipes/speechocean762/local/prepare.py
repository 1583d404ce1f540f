#!/usr/bin/env python3
"""Stage "data": speechocean762 as Kaldi data dirs, split by speaker.

speechocean762 (Zhang et al., Interspeech 2021; OpenSLR 101) is English read by 250 non-native
speakers (Mandarin L1), about half of them children; the copy in ../shared holds 200 of them.
No speaker is in two sets:

  data/test   the 15 children whose digit strings are the digits recipe's dev_so762, and
              10 more speakers of the corpus' test split: reported once, never used to choose
  data/dev    20 speakers of the corpus' test split, 10 children (age <= 12) and 10 adults:
              chooses checkpoints, model size and decoding settings
  data/train  everyone else (the corpus' train split and the rest of its test split)

  local/prepare.py --data data --local ../../../shared/data/speechocean762

The copy is either a folder with `manifest.jsonl` (one utterance a line: id, audio path relative
to the folder, text, speaker, age, duration, split) and the audio it names (any format soundfile
reads), as in ../shared; or the corpus as its archive unpacks (local/download.py): WAVE/SPEAKER*/
*.WAV with Kaldi-style train/ and test/ folders (wav.scp, text, utt2spk, spk2age). Both give the
same utterance ids, so the same seed gives the same sets. Text is normalised as everywhere in the
project (asr.tokenizer.normalize_text: lower case, single spaces; apostrophes kept). spk2age keeps each speaker's age, utt2group each
utterance's age group ("child" up to 12, else "adult") for `asr wer --groups`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Sequence

from kaldi_dir import Utt, write_data_dir
from stage import StageError, add_force_arg, add_seed_arg, begin, done_marker, mark_done, run_main

from asr.audio import AudioError, audio_duration
from asr.kaldi import TableError, read_table
from asr.tokenizer import normalize_text

# The digits recipe's dev_so762 speakers (recipes/digits/local/speechocean.py): children of the
# corpus' test split whose digit strings it reports. An English encoder never hears them, so it
# can later be shared with the digits model without leaking that dev set.
DIGITS_DEV_SPEAKERS = ("0003", "0092", "0093", "0096", "0111", "0112", "0122", "0133",
                       "1422", "1465", "1469", "1501", "1502", "2007", "2027")
CHILD_MAX_AGE = 12


class CorpusError(StageError):
    """Not a usable speechocean762 copy."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="recipe data folder (default: data)")
    parser.add_argument("--local", type=Path, required=True, help="the speechocean762 copy (folder with manifest.jsonl)")
    parser.add_argument("--dev-children", type=int, default=10, help="children in data/dev (default: 10)")
    parser.add_argument("--dev-adults", type=int, default=10, help="adults in data/dev (default: 10)")
    parser.add_argument("--test-extra", type=int, default=10,
                        help="speakers of the test split in data/test beside the digits dev children (default: 10)")
    add_seed_arg(parser)
    add_force_arg(parser)
    return parser.parse_args(argv)


def read_manifest(root: Path) -> list[dict]:
    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        raise CorpusError(f"{manifest} not found: --local must be a speechocean762 copy with manifest.jsonl, "
                          "or the corpus as its archive unpacks (WAVE/, train/, test/)")
    rows = []
    for lineno, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            rows.append({**row, "text": normalize_text(row["text"]), "audio": (root / row["audio"]).resolve(),
                         "age": int(row["age"]), "duration": float(row["duration"]), "speaker": str(row["speaker"])})
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise CorpusError(f"{manifest}:{lineno}: not an utterance record ({err})") from None
    return rows


def read_upstream(root: Path) -> list[dict]:
    """The corpus as its archive unpacks: {train,test}/{wav.scp,text,utt2spk,spk2age} and WAVE/. Rows as
    read_manifest's, durations from the audio files' headers."""
    rows = []
    try:
        for split in ("train", "test"):
            tables = {name: read_table(root / split / name) for name in ("wav.scp", "text", "utt2spk", "spk2age")}
            # spk2age names speakers "SPEAKER0001" in some releases and "0001" in others, as utt2spk does
            age = {key.removeprefix("SPEAKER"): value for key, (_, value) in tables["spk2age"].items()}
            for utt, (_, path) in tables["wav.scp"].items():
                speaker = tables["utt2spk"][utt][1]
                audio = (root / path).resolve()
                rows.append({"id": f"so762-{utt}", "audio": audio, "text": normalize_text(tables["text"][utt][1]),
                             "speaker": speaker, "age": int(age[speaker]), "split": split,
                             "duration": audio_duration(audio) if audio.is_file() else 0.0})
    except (OSError, TableError, AudioError) as err:
        raise CorpusError(f"{root}: not a usable speechocean762 folder ({err})") from None
    except KeyError as err:
        raise CorpusError(f"{root}: {err.args[0]} is in one of wav.scp, utt2spk, spk2age but not in the others") from None
    except ValueError as err:
        raise CorpusError(f"{root}: an age in spk2age is not a number ({err})") from None
    return rows


def read_corpus(root: Path) -> list[dict]:
    """A copy's utterances, from its manifest.jsonl or else from the corpus' own layout; CorpusError
    if it is neither, or if audio files it names are missing."""
    if (root / "manifest.jsonl").is_file() or not (root / "WAVE").is_dir():
        rows = read_manifest(root)
    else:
        rows = read_upstream(root)
    missing = [str(r["audio"]) for r in rows if not r["audio"].is_file()]
    if missing:
        raise CorpusError(f"{len(missing)} audio file(s) of the copy are missing, e.g. {missing[0]}")
    return rows


def split_speakers(rows: list[dict], args: argparse.Namespace) -> dict[str, set[str]]:
    """speaker sets {train, dev, test}; dev and test from the corpus' test split, drawn with the seed."""
    age = {r["speaker"]: r["age"] for r in rows}
    test_split = sorted({r["speaker"] for r in rows if r.get("split") == "test"})
    test = {s for s in DIGITS_DEV_SPEAKERS if s in age}
    rest = [s for s in test_split if s not in test]
    rng = random.Random(args.seed)
    rng.shuffle(rest)
    children = [s for s in rest if age[s] <= CHILD_MAX_AGE][: args.dev_children]
    adults = [s for s in rest if age[s] > CHILD_MAX_AGE][: args.dev_adults]
    dev = set(children) | set(adults)
    if len(children) < args.dev_children or len(adults) < args.dev_adults:
        raise CorpusError(f"the corpus' test split has too few speakers for {args.dev_children} children "
                          f"and {args.dev_adults} adults in dev")
    test |= set([s for s in rest if s not in dev][: args.test_extra])
    return {"train": set(age) - dev - test, "dev": dev, "test": test}


def age_group(age: int) -> str:
    return "child" if age <= CHILD_MAX_AGE else "adult"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    root = args.local.resolve()
    rows = read_corpus(root)
    speakers = split_speakers(rows, args)
    for name, chosen in speakers.items():
        out = args.data / name
        params = {"copy": str(root), "seed": args.seed, "dev_children": args.dev_children,
                  "dev_adults": args.dev_adults, "test_extra": args.test_extra}
        if not begin(done_marker(out), params, args.force, outputs=[out]):
            continue
        mine = [r for r in rows if r["speaker"] in chosen]
        utts = [Utt(f"so762-{r['speaker']}-{r['id']}", r["audio"], r["text"], f"so762-{r['speaker']}", r["duration"])
                for r in mine]
        write_data_dir(out, utts)
        ages = {f"so762-{r['speaker']}": r["age"] for r in mine}
        (out / "spk2age").write_text("".join(f"{s} {a}\n" for s, a in sorted(ages.items())))
        (out / "utt2group").write_text("".join(f"{u.id} {age_group(ages[u.speaker])}\n" for u in sorted(utts, key=lambda u: u.id)))
        mark_done(done_marker(out), params)
        children = sum(age_group(a) == "child" for a in ages.values())
        hours = sum(r["duration"] for r in mine) / 3600
        print(f"{out}: {len(utts)} utterances, {hours:.2f} h, {len(ages)} speakers ({children} children)")


if __name__ == "__main__":
    sys.exit(run_main(main))
