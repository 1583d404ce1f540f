"""Synthetic voices: a TTS engine speaks text in random voices -> 16-bit WAVs and a data dir.

The part of a synthesis stage that does not depend on what is said, shared by the digits
recipe (local/synth.py: digit strings, 8 kHz) and the English recipe
(recipes/speechocean762/local/synth_sentences.py: sentences, 16 kHz):

  draw_voice    a random voice of the engine, at a random speed and pitch
                  espeak-ng  formant synthesis: an English voice and variant (e.g.
                             en-us+m3, en-gb-x-rp+klatt2, 304 in all), 120-200 words/min,
                             pitch 20-80, an extra gap between words
                  flite      voices built from recordings of real people (CMU awb, rms,
                             slt, kal16; 16 kHz) at a duration stretch of 0.7-1.15 and a
                             random mean pitch
  plan_job      one utterance: the texts the engine speaks one at a time, the pauses
                between them, lead and trail, level and noise floor. Everything is drawn
                in the parent, so the audio does not depend on the workers' scheduling.
  render        the engine speaks each part; the parts are resampled, trimmed, set to
                the drawn level and joined, with a low noise floor under the whole
                utterance (TTS silence is digital zero, which no microphone records)
  synthesize    a pool of worker processes renders the jobs; durations in job order
  find_engine, add_engine_args, write_synth_dir: the stage's command line and output
                (utt2src: the engine and its settings, then where the text came from)
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional

from kaldi_dir import Utt, write_data_dir
from stage import StageError, done_marker, mark_done
from waveform import FULL_SCALE, frame_db, join, ms_to_samples, noise, trimmed, write_pcm16

ENGINES = ("espeak-ng", "flite")
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
EDGE_MS = (100, 300)  # lead and trail
NOISE_BELOW_PEAK_DB = (35.0, 55.0)
POOL_CHUNK = 4  # jobs a worker takes at a time: few, so a caller that stops early wastes little


@dataclass(frozen=True)
class Voice:
    engine: str
    name: str  # e.g. "en-us+m3" (espeak-ng) or "slt" (flite)
    settings: tuple[str, ...]  # the engine's command-line options besides voice, text and output
    speaker: str  # e.g. "espeak_enus_m3", "flite_slt": the utterances' speaker id

    @property
    def source(self) -> str:
        """e.g. espeak-ng:en-us+m3:s150:p40:g5 or flite:slt:duration_stretch=0.93:int_f0_target_mean=201."""
        flags, values = self.settings[::2], self.settings[1::2]
        shown = [v if f.startswith("--") else f[1:] + v for f, v in zip(flags, values)]
        return ":".join((self.engine, self.name, *shown))


def draw_voice(engine: str, rng: np.random.Generator, word_gap: tuple[int, int] = ESPEAK_WORD_GAP_10MS) -> Voice:
    """A random voice of `engine`; word_gap: espeak-ng's extra pause between words (10 ms units)."""
    if engine == "espeak-ng":
        voice, variant = ESPEAK_VOICES[rng.integers(len(ESPEAK_VOICES))], ESPEAK_VARIANTS[rng.integers(len(ESPEAK_VARIANTS))]
        speed = int(rng.integers(ESPEAK_SPEED_WPM[0], ESPEAK_SPEED_WPM[1] + 1))
        pitch = int(rng.integers(ESPEAK_PITCH[0], ESPEAK_PITCH[1] + 1))
        gap = int(rng.integers(word_gap[0], word_gap[1] + 1))
        settings = ("-s", str(speed), "-p", str(pitch), "-g", str(gap))
        return Voice(engine, f"{voice}+{variant}", settings, f"espeak_{voice}_{variant}".replace("-", "").lower())
    voice = list(FLITE_VOICES)[rng.integers(len(FLITE_VOICES))]
    stretch = round(float(rng.uniform(*FLITE_STRETCH)), 2)
    f0 = int(rng.integers(FLITE_VOICES[voice][0], FLITE_VOICES[voice][1] + 1))
    settings = ("--setf", f"duration_stretch={stretch}", "--setf", f"int_f0_target_mean={f0}")
    return Voice(engine, voice, settings, f"flite_{voice}")


def voice_params(engine: str, word_gap: tuple[int, int] = ESPEAK_WORD_GAP_10MS) -> dict[str, Any]:
    """What draw_voice draws from, for a stage's .done marker: a change remakes the stage."""
    if engine == "espeak-ng":
        return dict(voices=ESPEAK_VOICES, variants=ESPEAK_VARIANTS, speed=ESPEAK_SPEED_WPM, pitch=ESPEAK_PITCH,
                    word_gap=word_gap)
    return dict(voices=FLITE_VOICES, stretch=FLITE_STRETCH)


@dataclass(frozen=True)
class Rendering:
    """What a stage's utterances share: their sample rate, and the ranges plan_job draws each one's level
    and pauses from."""

    sample_rate: int
    peak_db: tuple[float, float]  # loudest 10 ms frame, dBFS
    pause_ms: tuple[float, float] = (0.0, 0.0)  # between parts


@dataclass(frozen=True)
class SynthJob:
    """Everything one utterance depends on."""

    utt_id: str
    voice: Voice
    parts: tuple[str, ...]  # texts the engine speaks one at a time (a sentence, or each digit)
    text: str  # the transcript
    origin: tuple[str, ...]  # where the text came from (e.g. its id in a text file), for utt2src
    sample_rate: int
    gaps: tuple[int, ...]  # samples: lead, a pause after each part but the last, trail
    peak_db: float  # loudest 10 ms frame, dBFS
    noise_db: float
    noise_seed: int
    wav: Path


def plan_job(
    rng: np.random.Generator,
    how: Rendering,
    utt_id: str,
    voice: Voice,
    parts: Sequence[str],
    text: str,
    wav: Path,
    origin: tuple[str, ...] = (),
) -> SynthJob:
    """Draw the pauses between parts, lead and trail, level and noise floor of one utterance."""
    sr = how.sample_rate
    pauses = [ms_to_samples(rng.uniform(*how.pause_ms), sr) for _ in range(len(parts) - 1)]
    lead, trail = (ms_to_samples(rng.uniform(*EDGE_MS), sr) for _ in range(2))
    peak = float(rng.uniform(*how.peak_db))
    return SynthJob(
        utt_id=utt_id,
        voice=voice,
        parts=tuple(parts),
        text=text,
        origin=origin,
        sample_rate=sr,
        gaps=(lead, *pauses, trail),
        peak_db=peak,
        noise_db=peak - float(rng.uniform(*NOISE_BELOW_PEAK_DB)),
        noise_seed=int(rng.integers(2**31)),
        wav=wav,
    )


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
    voice = job.voice
    if voice.engine == "espeak-ng":  # "--": a text that starts with "-" is text, not an option
        return [_run_engine([exe, "-v", voice.name, *voice.settings, "-w", str(out), "--", part], out) for part in job.parts]
    return [_run_engine([exe, "-voice", voice.name, *voice.settings, "-t", part, "-o", str(out)], out) for part in job.parts]


def render(job: SynthJob, exe: str, tmp_dir: Path) -> float:
    """Make and write one utterance; return its duration in seconds."""
    sr = job.sample_rate
    parts = []
    for x, engine_sr in speak(job, exe, tmp_dir):
        y = torchaudio.functional.resample(torch.from_numpy(x), engine_sr, sr).numpy().astype(np.float64)
        part = trimmed(y * FULL_SCALE, sr)
        if not np.any(part):
            raise StageError(f"{job.voice.engine} produced silence for {job.voice.source} {' '.join(job.parts)!r}")
        parts.append(part)
    gain = 10.0 ** ((job.peak_db - max(frame_db(p, sr).max() for p in parts)) / 20.0)
    rng = np.random.default_rng(job.noise_seed)
    parts = [p * gain + noise(len(p), job.noise_db, rng) for p in parts]
    audio, _ = join(parts, list(job.gaps), job.noise_db, rng)
    write_pcm16(job.wav, audio, sr)
    return len(audio) / sr


_worker_exe = ""
_worker_tmp = Path()


def _init_worker(exe: str, tmp_dir: Path) -> None:
    global _worker_exe, _worker_tmp
    _worker_exe, _worker_tmp = exe, tmp_dir
    torch.set_num_threads(1)


def _run_job(job: SynthJob) -> float:
    return render(job, _worker_exe, _worker_tmp)


def synthesize(jobs: Sequence[SynthJob], exe: str, workers: int) -> Iterator[float]:
    """Render `jobs` in `workers` processes, yielding their durations in job order.

    A caller that has enough may stop early (close the generator, e.g. with
    contextlib.closing): the pool is then terminated, and the WAVs of jobs that were
    under way or done past that point may be left behind for the caller to delete.
    """
    with tempfile.TemporaryDirectory(prefix="synth") as tmp:
        with multiprocessing.Pool(workers, initializer=_init_worker, initargs=(exe, Path(tmp))) as pool:
            yield from pool.imap(_run_job, jobs, chunksize=POOL_CHUNK)


def add_engine_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=ENGINES, default="espeak-ng", help="TTS engine (default: espeak-ng)")
    parser.add_argument("--jobs", type=int, default=2, choices=(1, 2), help="worker processes (default: 2)")
    parser.add_argument("--exe", help="the engine's executable (default: espeak-ng or flite on PATH)")
    parser.add_argument(
        "--optional", action="store_true", help="without the engine, skip the stage (exit 0) instead of failing"
    )


def find_engine(args: argparse.Namespace) -> str | None:
    """The path of the engine's executable; None (said on stdout) when it is missing and --optional."""
    exe = shutil.which(args.exe or args.engine)
    if exe is None:
        message = f"{args.exe or args.engine} not found: install {args.engine} (e.g. apt-get install {args.engine}) for synthetic voices"
        if args.optional:
            print(f"{message}; skipping this optional stage")
            return None
        raise StageError(message)
    return exe


def write_synth_dir(out_dir: Path, jobs: Sequence[SynthJob], durations: Sequence[float], params: dict[str, Any],
                    start: float) -> None:
    """Write the data dir of the rendered jobs and its .done marker; say what was made since `start` (time.time())."""
    utts = [Utt(j.utt_id, j.wav, j.text, j.voice.speaker, d, (j.voice.source, *j.origin)) for j, d in zip(jobs, durations)]
    write_data_dir(out_dir, utts)
    mark_done(done_marker(out_dir), params)
    hours = sum(durations) / 3600
    voices = len({u.speaker for u in utts})
    print(f"{out_dir}: {len(utts)} utterances, {voices} voices, {hours:.2f} h, {time.time() - start:.1f} s")
