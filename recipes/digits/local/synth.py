#!/usr/bin/env python3
"""Stage "synthetic voices": a TTS engine speaks random digit strings -> data/train_ENGINE.

Each utterance is 1-7 random digits spoken as words ("three one four").

  --engine espeak-ng  formant synthesis: a random English voice and variant
                      (e.g. en-us+m3, en-gb-x-rp+klatt2, 304 in all) at a random
                      speed (120-200 words/min), pitch (20-80) and word gap; the
                      string is spoken in one go.
  --engine flite      voices built from recordings of real people (CMU awb, rms,
                      slt, kal16) at a random duration stretch (0.7-1.15) and mean
                      pitch; each digit is spoken on its own and the digits are
                      joined with 50-300 ms pauses, like the FSDD utterances.

The audio is resampled to 8 kHz 16-bit (the telephone band of FSDD), trimmed,
set to a random level, and given 100-300 ms of lead and trail with a low noise
floor under the whole utterance. utt2src records the engine settings of each
utterance. Without the engine the stage fails (exit status 1), or with
--optional says so and does nothing. Voices, rendering and the worker pool are
local/tts.py's, shared with the English recipe's synthetic voices.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Sequence

import numpy as np

from fsdd import DIGIT_WORDS
from make_connected import PAUSE_MS
from stage import (
    add_digit_range_args,
    add_force_arg,
    add_seed_arg,
    begin,
    done_marker,
    parse_with_digit_range,
    run_main,
)
from tts import (
    EDGE_MS,
    NOISE_BELOW_PEAK_DB,
    Rendering,
    SynthJob,
    add_engine_args,
    draw_voice,
    find_engine,
    plan_job,
    synthesize,
    voice_params,
    write_synth_dir,
)
from waveform import SAMPLE_RATE

PEAK_DB = (-35.0, -15.0)  # loudest 10 ms frame, about the range of the FSDD speakers


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="recipe data folder (default: data)")
    parser.add_argument("--name", help="data dir to write under --data (default: train_espeak / train_flite)")
    parser.add_argument("--num-utts", type=int, default=3000, help="utterances (default: 3000)")
    add_digit_range_args(parser)
    add_engine_args(parser)
    add_seed_arg(parser)
    add_force_arg(parser)
    args = parse_with_digit_range(parser, argv)
    args.name = args.name or f"train_{args.engine.split('-')[0]}"
    return args


def plan_jobs(args: argparse.Namespace, wav_dir: Path) -> list[SynthJob]:
    """espeak-ng speaks the string in one go; flite each digit on its own, joined with FSDD-like pauses."""
    rng = np.random.default_rng(args.seed)
    how = Rendering(SAMPLE_RATE, PEAK_DB, PAUSE_MS)
    jobs = []
    for index in range(args.num_utts):
        digits = rng.integers(len(DIGIT_WORDS), size=int(rng.integers(args.min_digits, args.max_digits + 1)))
        words = [DIGIT_WORDS[d] for d in digits]
        voice = draw_voice(args.engine, rng)
        utt_id = f"{voice.speaker}-synth-{index:05d}"
        parts = [" ".join(words)] if args.engine == "espeak-ng" else words
        jobs.append(plan_job(rng, how, utt_id, voice, parts, " ".join(words), wav_dir / f"{utt_id}.wav"))
    return jobs


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    exe = find_engine(args)
    if exe is None:
        return
    out_dir, wav_dir = args.data / args.name, args.data / "wav" / args.name
    params = {k: getattr(args, k) for k in ("engine", "num_utts", "min_digits", "max_digits", "seed")}
    params.update(voice_params(args.engine))
    if args.engine == "flite":
        params.update(pause_ms=PAUSE_MS)
    params.update(peak_db=PEAK_DB, noise_below_peak_db=NOISE_BELOW_PEAK_DB, edge_ms=EDGE_MS)
    if not begin(done_marker(out_dir), params, args.force, outputs=[out_dir, wav_dir]):
        return
    start = time.time()
    wav_dir.mkdir(parents=True)
    jobs = plan_jobs(args, wav_dir.resolve())
    with closing(synthesize(jobs, exe, args.jobs)) as durations:
        write_synth_dir(out_dir, jobs, list(durations), params, start)


if __name__ == "__main__":
    sys.exit(run_main(main))
