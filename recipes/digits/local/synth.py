#!/usr/bin/env python3
"""Stage "synthetic voices": a TTS engine speaks random digit strings -> data/train_ENGINE.

Each utterance is 1-7 random digits spoken as words ("three one four").

  --engine espeak-ng  formant synthesis: a random English voice and variant
                      (e.g. en-us+m3, en-gb-x-rp+klatt2, 304 in all) at a random
                      speed (120-200 words/min), pitch (20-80) and word gap; the
                      string is spoken in one go.
  --engine flite      voices built from recordings of real people (CMU awb, rms,
                      slt, kal) at a random duration stretch (0.7-1.15) and mean
                      pitch; each digit is spoken on its own and the digits are
                      joined with 50-300 ms pauses, like the FSDD utterances.

The audio is resampled to 8 kHz 16-bit (the telephone band of FSDD), trimmed,
set to a random level, and given 100-300 ms of lead and trail with a low noise
floor under the whole utterance. utt2src records the engine settings of each
utterance. Without the engine the stage fails (exit status 1), or with
--optional says so and does nothing.
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
from make_connected import PAUSE_MS
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

ESPEAK_VOICES = ("en-us", "en-us-nyc", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5",
    "adam", "Alex", "Andy", "Annie", "aunty", "belinda", "david", "edward", "john", "linda",
    "max", "Michael", "paul", "robert", "steph", "travis", "victor", "grandma", "grandpa", "croak",
)  # fmt: skip
ESPEAK_SPEED_WPM = (120, 200)
ESPEAK_PITCH = (20, 80)
ESPEAK_WORD_GAP_10MS = (0, 15)  # espeak-ng -g: extra pause between words, in 10 ms units
FLITE_VOICES = {"awb": (80, 150), "rms": (80, 150), "kal16": (80, 150), "slt": (150, 260)}  # mean F0 range, Hz
FLITE_STRETCH = (0.7, 1.15)
ENGINES = ("espeak-ng", "flite")
PEAK_DB = (-35.0, -15.0)  # loudest 10 ms frame, about the range of the FSDD speakers
NOISE_BELOW_PEAK_DB = (35.0, 55.0)
EDGE_MS = (100, 300)


@dataclass(frozen=True)
class SynthJob:
    """Everything one utterance depends on, drawn in the parent so results do not depend on scheduling."""

    utt_id: str
    speaker: str
    engine: str
    voice: str  # e.g. "en-us+m3" (espeak-ng) or "slt" (flite)
    settings: tuple[str, ...]  # the engine's command-line options besides voice, text and output
    words: tuple[str, ...]
    gaps: tuple[int, ...]  # samples: lead, a pause after each part but the last (flite only), trail
    peak_db: float
    noise_db: float
    noise_seed: int
    wav: Path

    @property
    def source(self) -> str:
        """e.g. espeak-ng:en-us+m3:s150:p40:g5 or flite:slt:duration_stretch=0.93:int_f0_target_mean=201."""
        flags, values = self.settings[::2], self.settings[1::2]
        shown = [v if f.startswith("--") else f[1:] + v for f, v in zip(flags, values)]
        return ":".join((self.engine, self.voice, *shown))

    @property
    def text(self) -> str:
        return " ".join(self.words)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="recipe data folder (default: data)")
    parser.add_argument("--engine", choices=ENGINES, default="espeak-ng", help="TTS engine (default: espeak-ng)")
    parser.add_argument("--name", help="data dir to write under --data (default: train_espeak / train_flite)")
    parser.add_argument("--num-utts", type=int, default=3000, help="utterances (default: 3000)")
    add_digit_range_args(parser)
    parser.add_argument("--jobs", type=int, default=2, choices=(1, 2), help="worker processes (default: 2)")
    parser.add_argument("--exe", help="the engine's executable (default: espeak-ng or flite on PATH)")
    parser.add_argument(
        "--optional", action="store_true", help="without the engine, skip the stage (exit 0) instead of failing"
    )
    add_seed_arg(parser)
    add_force_arg(parser)
    args = parse_with_digit_range(parser, argv)
    args.name = args.name or f"train_{args.engine.split('-')[0]}"
    args.exe = args.exe or args.engine
    return args


def _espeak_voice(rng: np.random.Generator, num_words: int) -> tuple[str, str, tuple[str, ...], int]:
    """(speaker, voice, settings, number of parts): the whole string is one part."""
    voice, variant = ESPEAK_VOICES[rng.integers(len(ESPEAK_VOICES))], ESPEAK_VARIANTS[rng.integers(len(ESPEAK_VARIANTS))]
    speed = int(rng.integers(ESPEAK_SPEED_WPM[0], ESPEAK_SPEED_WPM[1] + 1))
    pitch = int(rng.integers(ESPEAK_PITCH[0], ESPEAK_PITCH[1] + 1))
    gap = int(rng.integers(ESPEAK_WORD_GAP_10MS[0], ESPEAK_WORD_GAP_10MS[1] + 1))
    settings = ("-s", str(speed), "-p", str(pitch), "-g", str(gap))
    return f"espeak_{voice}_{variant}".replace("-", "").lower(), f"{voice}+{variant}", settings, 1


def _flite_voice(rng: np.random.Generator, num_words: int) -> tuple[str, str, tuple[str, ...], int]:
    """(speaker, voice, settings, number of parts): one part per word."""
    voice = list(FLITE_VOICES)[rng.integers(len(FLITE_VOICES))]
    stretch = round(float(rng.uniform(*FLITE_STRETCH)), 2)
    f0 = int(rng.integers(FLITE_VOICES[voice][0], FLITE_VOICES[voice][1] + 1))
    settings = ("--setf", f"duration_stretch={stretch}", "--setf", f"int_f0_target_mean={f0}")
    return f"flite_{voice}", voice, settings, num_words


def plan_jobs(args: argparse.Namespace, wav_dir: Path) -> list[SynthJob]:
    rng = np.random.default_rng(args.seed)
    draw_voice = _espeak_voice if args.engine == "espeak-ng" else _flite_voice
    jobs = []
    for index in range(args.num_utts):
        digits = rng.integers(len(DIGIT_WORDS), size=int(rng.integers(args.min_digits, args.max_digits + 1)))
        speaker, voice, settings, num_parts = draw_voice(rng, len(digits))
        utt_id = f"{speaker}-synth-{index:05d}"
        pauses = [ms_to_samples(rng.uniform(*PAUSE_MS)) for _ in range(num_parts - 1)]
        lead, trail = ms_to_samples(rng.uniform(*EDGE_MS)), ms_to_samples(rng.uniform(*EDGE_MS))
        peak_db = float(rng.uniform(*PEAK_DB))
        jobs.append(
            SynthJob(
                utt_id=utt_id,
                speaker=speaker,
                engine=args.engine,
                voice=voice,
                settings=settings,
                words=tuple(DIGIT_WORDS[d] for d in digits),
                gaps=(lead, *pauses, trail),
                peak_db=peak_db,
                noise_db=peak_db - float(rng.uniform(*NOISE_BELOW_PEAK_DB)),
                noise_seed=int(rng.integers(2**31)),
                wav=wav_dir / f"{utt_id}.wav",
            )
        )
    return jobs


def _run_engine(cmd: list[str], out: Path) -> tuple[np.ndarray, int]:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not out.is_file():
        raise StageError(f"{' '.join(cmd)} failed: {result.stderr.strip() or f'exit status {result.returncode}'}")
    x, sr = sf.read(out, dtype="float32")
    out.unlink()
    return x, sr


def speak(job: SynthJob, exe: str, tmp_dir: Path) -> list[tuple[np.ndarray, int]]:
    """The engine's waveforms for the job, one per part: [((N,) float in [-1, 1), sample rate)]."""
    out = tmp_dir / f"{job.utt_id}.wav"
    if job.engine == "espeak-ng":
        return [_run_engine([exe, "-v", job.voice, *job.settings, "-w", str(out), job.text], out)]
    return [_run_engine([exe, "-voice", job.voice, *job.settings, "-t", word, "-o", str(out)], out) for word in job.words]


def synthesize(job: SynthJob, exe: str, tmp_dir: Path) -> float:
    """Make and write one utterance; return its duration in seconds."""
    parts = []
    for x, sr in speak(job, exe, tmp_dir):
        x8k = torchaudio.functional.resample(torch.from_numpy(x), sr, SAMPLE_RATE).numpy().astype(np.float64)
        part = trimmed(x8k * FULL_SCALE)
        if not np.any(part):
            raise StageError(f"{job.engine} produced silence for {job.source} {job.text!r}")
        parts.append(part)
    gain = 10.0 ** ((job.peak_db - max(frame_db(p).max() for p in parts)) / 20.0)
    rng = np.random.default_rng(job.noise_seed)
    # TTS pauses are digital zero: a noise floor under the speech too, not only in the pauses.
    parts = [p * gain + noise(len(p), job.noise_db, rng) for p in parts]
    audio, _ = join(parts, list(job.gaps), job.noise_db, rng)
    write_pcm16(job.wav, audio)
    return len(audio) / SAMPLE_RATE


_worker_exe = ""
_worker_tmp = Path()


def _init_worker(exe: str, tmp_dir: Path) -> None:
    global _worker_exe, _worker_tmp
    _worker_exe, _worker_tmp = exe, tmp_dir
    torch.set_num_threads(1)


def _run_job(job: SynthJob) -> float:
    return synthesize(job, _worker_exe, _worker_tmp)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    exe = shutil.which(args.exe)
    if exe is None:
        message = f"{args.exe} not found: install {args.engine} (e.g. apt-get install {args.engine}) for synthetic voices"
        if args.optional:
            print(f"{message}; skipping this optional stage")
            return
        raise StageError(message)
    out_dir, wav_dir = args.data / args.name, args.data / "wav" / args.name
    params = {k: getattr(args, k) for k in ("engine", "num_utts", "min_digits", "max_digits", "seed")}
    if args.engine == "espeak-ng":
        params.update(voices=ESPEAK_VOICES, variants=ESPEAK_VARIANTS, speed=ESPEAK_SPEED_WPM, pitch=ESPEAK_PITCH)
        params.update(word_gap=ESPEAK_WORD_GAP_10MS)
    else:
        params.update(voices=FLITE_VOICES, stretch=FLITE_STRETCH, pause_ms=PAUSE_MS)
    params.update(peak_db=PEAK_DB, noise_below_peak_db=NOISE_BELOW_PEAK_DB, edge_ms=EDGE_MS)
    if not begin(done_marker(out_dir), params, args.force, outputs=[out_dir, wav_dir]):
        return
    t0 = time.time()
    wav_dir.mkdir(parents=True)
    jobs = plan_jobs(args, wav_dir.resolve())
    with tempfile.TemporaryDirectory(prefix="synth") as tmp:
        with multiprocessing.Pool(args.jobs, initializer=_init_worker, initargs=(exe, Path(tmp))) as pool:
            durations = pool.map(_run_job, jobs, chunksize=16)
    utts = [Utt(j.utt_id, j.wav, j.text, j.speaker, dur, (j.source,)) for j, dur in zip(jobs, durations)]
    write_data_dir(out_dir, utts)
    mark_done(done_marker(out_dir), params)
    hours = sum(durations) / 3600
    voices = len({u.speaker for u in utts})
    print(f"{out_dir}: {len(utts)} utterances, {voices} voices, {hours:.2f} h, {time.time() - t0:.1f} s")


if __name__ == "__main__":
    sys.exit(run_main(main))
