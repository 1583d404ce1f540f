#!/usr/bin/env python3
"""Stage "non-speech": recordings with no words in them, with empty transcripts.

A model that has only ever heard digits finds digits in anything (hum, babble, clicks). Shown
non-speech with an empty transcript, the decoder learns to answer end-of-sentence at once and
the CTC head to stay blank. Every kind of asr.no_speech.NON_SPEECH_KINDS, in equal shares, at
RMS levels -90..-10 dBFS, 0.5-6 s long; the babble is made from the training speakers' own
utterances (data/train, reversed), never from a dev speaker.

  data/train_nonspeech   float WAVs at 16 kHz (faint levels survive; 16-bit would round them to zero)

  local/nonspeech.py --data data --num-utts 600
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
from kaldi_dir import Utt, read_data_dir, write_data_dir
from stage import add_force_arg, add_seed_arg, begin, done_marker, mark_done, run_main

from asr.audio import load_audio
from asr.no_speech import NON_SPEECH_KINDS, non_speech

SAMPLE_RATE = 16000
LEVELS_DBFS = (-90.0, -10.0)
SECONDS = (0.5, 6.0)
BABBLE_SOURCES = 200  # training utterances the babble is drawn from


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="recipe data folder (default: data)")
    parser.add_argument("--num-utts", type=int, default=600, help="recordings to make (default: 600)")
    add_seed_arg(parser)
    add_force_arg(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    out, wav_dir = args.data / "train_nonspeech", args.data / "wav" / "train_nonspeech"
    params = {"num_utts": args.num_utts, "seed": args.seed, "levels": LEVELS_DBFS, "seconds": SECONDS}
    if not begin(done_marker(out), params, args.force, outputs=[out, wav_dir]):
        return
    rng = np.random.default_rng([args.seed, zlib.crc32(b"train_nonspeech")])
    speech = read_data_dir(args.data / "train")
    picks = rng.choice(len(speech), size=min(BABBLE_SOURCES, len(speech)), replace=False)
    sources = [load_audio(speech[i].wav, SAMPLE_RATE) for i in sorted(picks)]
    wav_dir = wav_dir.resolve()
    wav_dir.mkdir(parents=True, exist_ok=True)
    utts = []
    for index in range(args.num_utts):
        kind = NON_SPEECH_KINDS[index % len(NON_SPEECH_KINDS)]
        seconds = float(rng.uniform(*SECONDS))
        wave = non_speech(kind, seconds, float(rng.uniform(*LEVELS_DBFS)), SAMPLE_RATE, rng, sources)  # (N,)
        utt_id = f"nonspeech-{index:05d}"
        path = wav_dir / f"{utt_id}.wav"
        sf.write(path, wave, SAMPLE_RATE, subtype="FLOAT")
        utts.append(Utt(utt_id, path, "", f"nonspeech-{kind}", len(wave) / SAMPLE_RATE))
    write_data_dir(out, utts)
    mark_done(done_marker(out), params)
    print(f"{out}: {len(utts)} recordings, {sum(u.duration for u in utts) / 3600:.2f} h")


if __name__ == "__main__":
    sys.exit(run_main(main))
