#!/usr/bin/env python3
"""WER under recording conditions the model was not tuned on.

Decodes a data set (default: the digits recipe's unseen-speaker set) as it is and after
one change to every recording at a time, with the model's default search:

  clean         as recorded
  quiet -20dB   20 dB quieter (a distant or low-gain microphone)
  loud +10dB    10 dB louder (clipped at full scale)
  silence 1s    1 s of faint noise (-60 dBFS) before and after the speech
  noise 20dB    white noise at 20 dB SNR
  wideband 16k  the 8 kHz recording resampled to 16 kHz (a wide-band file of band-limited speech)

A model that has learnt the voices and not just the recordings keeps its WER flat across
the rows. Each condition is seeded, so two models see exactly the same audio.

  .venv/bin/python benchmarks/robustness.py                          # shipped model
  .venv/bin/python benchmarks/robustness.py --model recipes/digits/exp/TAG/model --utts 200
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.cli import add_vtln_warps_argument
from asr.data import load_manifest
from asr.evaluate import Normalizer, score
from asr.transcribe import Transcriber

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test suite's WAV writer
from fsdd_audio import wav_bytes  # noqa: E402

DEFAULT_DATA = REPO / "recipes" / "digits" / "data" / "dev"
SEED = 0

# (wave (N,), sample rate, rng) -> (changed wave (N',), its sample rate)
Condition = Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, int]]


def _gain(db: float) -> Condition:
    return lambda wave, sr, rng: (wave * 10 ** (db / 20), sr)


def _pad_silence(wave: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    pad = (1e-3 * rng.standard_normal(sr)).astype(np.float32)  # 1 s at about -60 dBFS
    return np.concatenate([pad, wave, pad]), sr


def _white_noise(wave: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    power = np.mean(wave**2) / 10 ** (20 / 10)
    return wave + np.sqrt(power) * rng.standard_normal(len(wave)).astype(np.float32), sr


def _wideband(wave: np.ndarray, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    return AF.resample(torch.from_numpy(wave), sr, 16000).numpy(), 16000


CONDITIONS: dict[str, Condition] = {
    "clean": lambda wave, sr, rng: (wave, sr),
    "quiet -20dB": _gain(-20),
    "loud +10dB": _gain(10),
    "silence 1s": _pad_silence,
    "noise 20dB": _white_noise,
    "wideband 16k": _wideband,
}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="Kaldi data dir or JSONL with transcripts")
    p.add_argument("--utts", type=int, default=0, help="first N utterances only (default: all)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    add_vtln_warps_argument(p)
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    t = Transcriber.load(args.model, vtln_warps=args.vtln_warps)
    utts = load_manifest(args.data)[: args.utts or None]
    refs = {u.id: u.text or "" for u in utts}
    recordings = [sf.read(u.audio, dtype="float32", always_2d=True) for u in utts]
    native = [(w.mean(axis=1), sr) for w, sr in recordings]  # (N,) mono at the file's own rate
    print(f"model {t.model_name}, {len(utts)} utterances of {args.data}, {t.default_options}, VTLN warps {t.vtln_warps}")
    print(f"{'condition':<14} {'WER %':>6} {'S':>4} {'D':>4} {'I':>4} {'seconds':>8}")
    for name, change in CONDITIONS.items():
        rng = np.random.default_rng(SEED)
        start = time.perf_counter()
        changed = [change(w, sr, rng) for w, sr in native]
        # as a client would send it: 16-bit PCM WAV (clipped at full scale)
        waves = [t.load_audio(wav_bytes(np.clip(w, -1.0, 1.0), sr)) for w, sr in changed]
        hyps = {u.id: r.text for u, r in zip(utts, t.transcribe_batch(waves))}
        report = score(refs, hyps, Normalizer())
        print(f"{name:<14} {100 * report.wer:>6.2f} {report.substitutions:>4} {report.deletions:>4} "
              f"{report.insertions:>4} {time.perf_counter() - start:>8.1f}")


if __name__ == "__main__":
    main()
