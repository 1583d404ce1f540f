#!/usr/bin/env python3
"""Stage "synthetic voices": espeak-ng speaks random digit strings -> data/train_synth.

Each utterance: 1-7 random digits spoken as words ("three one four") by a
random English voice and variant (e.g. en-us+m3, en-gb-x-rp+klatt2) at a random
speed (120-200 words/min), pitch (20-80) and word gap; resampled to 8 kHz 16-bit
(the telephone band of FSDD), trimmed, set to a random level, and given
100-300 ms of lead and trail with a low noise floor under the whole utterance.

utt2src records the espeak-ng settings of each utterance. Without espeak-ng
the stage fails (exit status 1), or with --optional says so and does nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional

from fsdd import DIGIT_WORDS
from kaldi_dir import Utt, write_data_dir
from stage import (
    StageError,
    add_digit_range_args,
    add_force_arg,
    add_seed_arg,
    begin,
    done_marker,
    mark_done,
    parse_with_digit_range,
    run_main,
)
from waveform import FULL_SCALE, SAMPLE_RATE, frame_db, join, ms_to_samples, noise, trimmed, write_pcm16

VOICES = ("en-us", "en-us-nyc", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5",
    "adam", "Alex", "Andy", "Annie", "aunty", "belinda", "david", "edward", "john", "linda",
    "max", "Michael", "paul", "robert", "steph", "travis", "victor", "grandma", "grandpa", "croak",
)  # fmt: skip
SPEED_WPM = (120, 200)
PITCH = (20, 80)
WORD_GAP_10MS = (0, 15)  # espeak-ng -g: extra pause between words, in 10 ms units
PEAK_DB = (-35.0, -15.0)  # loudest 10 ms frame, about the range of the FSDD speakers
NOISE_BELOW_PEAK_DB = (35.0, 55.0)
EDGE_MS = (100, 300)


@dataclass(frozen=True)
class SynthJob:
    """Everything one utterance depends on, drawn in the parent so results do not depend on scheduling."""

    utt_id: str
    speaker: str
    voice: str  # e.g. "en-us+m3"
    speed: int
    pitch: int
    word_gap: int
    text: str
    peak_db: float
    noise_db: float
    lead: int  # samples
    trail: int
    noise_seed: int
    wav: Path

    @property
    def source(self) -> str:
        return f"espeak-ng:{self.voice}:s{self.speed}:p{self.pitch}:g{self.word_gap}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="recipe data folder (default: data)")
    parser.add_argument("--name", default="train_synth", help="data dir to write under --data (default: train_synth)")
    parser.add_argument("--num-utts", type=int, default=3000, help="utterances (default: 3000)")
    add_digit_range_args(parser)
    parser.add_argument("--jobs", type=int, default=2, choices=(1, 2), help="worker processes (default: 2)")
    parser.add_argument("--espeak", default="espeak-ng", help="espeak-ng executable (default: espeak-ng)")
    parser.add_argument(
        "--optional", action="store_true", help="without espeak-ng, skip the stage (exit 0) instead of failing"
    )
    add_seed_arg(parser)
    add_force_arg(parser)
    return parse_with_digit_range(parser, argv)


def plan_jobs(args: argparse.Namespace, wav_dir: Path) -> list[SynthJob]:
    rng = np.random.default_rng(args.seed)
    jobs = []
    for index in range(args.num_utts):
        voice, variant = VOICES[rng.integers(len(VOICES))], VARIANTS[rng.integers(len(VARIANTS))]
        speaker = f"espeak_{voice}_{variant}".replace("-", "").lower()
        utt_id = f"{speaker}-synth-{index:05d}"
        digits = rng.integers(len(DIGIT_WORDS), size=int(rng.integers(args.min_digits, args.max_digits + 1)))
        peak_db = float(rng.uniform(*PEAK_DB))
        jobs.append(
            SynthJob(
                utt_id=utt_id,
                speaker=speaker,
                voice=f"{voice}+{variant}",
                speed=int(rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1)),
                pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                word_gap=int(rng.integers(WORD_GAP_10MS[0], WORD_GAP_10MS[1] + 1)),
                text=" ".join(DIGIT_WORDS[d] for d in digits),
                peak_db=peak_db,
                noise_db=peak_db - float(rng.uniform(*NOISE_BELOW_PEAK_DB)),
                lead=ms_to_samples(rng.uniform(*EDGE_MS)),
                trail=ms_to_samples(rng.uniform(*EDGE_MS)),
                noise_seed=int(rng.integers(2**31)),
                wav=wav_dir / f"{utt_id}.wav",
            )
        )
    return jobs


def speak(job: SynthJob, espeak: str, tmp_dir: Path) -> tuple[np.ndarray, int]:
    """espeak-ng's waveform for the job: ((N,) float in [-1, 1), its sample rate)."""
    out = tmp_dir / f"{job.utt_id}.wav"
    settings = ["-v", job.voice, "-s", str(job.speed), "-p", str(job.pitch), "-g", str(job.word_gap)]
    cmd = [espeak, *settings, "-w", str(out), job.text]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not out.is_file():
        raise StageError(f"{' '.join(cmd)} failed: {result.stderr.strip() or f'exit status {result.returncode}'}")
    x, sr = sf.read(out, dtype="float32")
    out.unlink()
    return x, sr


def synthesize(job: SynthJob, espeak: str, tmp_dir: Path) -> float:
    """Make and write one utterance; return its duration in seconds."""
    x, sr = speak(job, espeak, tmp_dir)
    x8k = torchaudio.functional.resample(torch.from_numpy(x), sr, SAMPLE_RATE).numpy().astype(np.float64) * FULL_SCALE
    speech = trimmed(x8k)
    if not np.any(speech):
        raise StageError(f"espeak-ng produced silence for {job.source} {job.text!r}")
    speech *= 10.0 ** ((job.peak_db - frame_db(speech).max()) / 20.0)
    rng = np.random.default_rng(job.noise_seed)
    # espeak-ng pauses are digital zero: a noise floor under the speech too, not only in the edges.
    speech += noise(len(speech), job.noise_db, rng)
    audio, _ = join([speech], [job.lead, job.trail], job.noise_db, rng)
    write_pcm16(job.wav, audio)
    return len(audio) / SAMPLE_RATE


_worker_espeak = ""
_worker_tmp = Path()


def _init_worker(espeak: str, tmp_dir: Path) -> None:
    global _worker_espeak, _worker_tmp
    _worker_espeak, _worker_tmp = espeak, tmp_dir
    torch.set_num_threads(1)


def _run_job(job: SynthJob) -> float:
    return synthesize(job, _worker_espeak, _worker_tmp)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    espeak = shutil.which(args.espeak)
    if espeak is None:
        message = f"{args.espeak} not found: install espeak-ng (e.g. apt-get install espeak-ng) for synthetic voices"
        if args.optional:
            print(f"{message}; skipping this optional stage")
            return
        raise StageError(message)
    out_dir, wav_dir = args.data / args.name, args.data / "wav" / args.name
    params = {k: getattr(args, k) for k in ("num_utts", "min_digits", "max_digits", "seed")}
    params.update(voices=VOICES, variants=VARIANTS, speed=SPEED_WPM, pitch=PITCH, word_gap=WORD_GAP_10MS)
    params.update(peak_db=PEAK_DB, noise_below_peak_db=NOISE_BELOW_PEAK_DB, edge_ms=EDGE_MS)
    if not begin(done_marker(out_dir), params, args.force, outputs=[out_dir, wav_dir]):
        return
    t0 = time.time()
    wav_dir.mkdir(parents=True)
    jobs = plan_jobs(args, wav_dir.resolve())
    with tempfile.TemporaryDirectory(prefix="espeak") as tmp:
        with multiprocessing.Pool(args.jobs, initializer=_init_worker, initargs=(espeak, Path(tmp))) as pool:
            durations = pool.map(_run_job, jobs, chunksize=16)
    utts = [Utt(j.utt_id, j.wav, j.text, j.speaker, dur, (j.source,)) for j, dur in zip(jobs, durations)]
    write_data_dir(out_dir, utts)
    mark_done(done_marker(out_dir), params)
    hours = sum(durations) / 3600
    voices = len({u.speaker for u in utts})
    print(f"{out_dir}: {len(utts)} utterances, {voices} voices, {hours:.2f} h, {time.time() - t0:.1f} s")


if __name__ == "__main__":
    sys.exit(run_main(main))
