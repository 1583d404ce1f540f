#!/usr/bin/env python3
"""Real-time factor of the Transcriber on long audio built from real FSDD recordings.

For each duration (default 1 s, 10 s, 60 s, 10 min), strings of connected digits spoken
by the five FSDD speakers (held-out takes 0-4) are joined by half-second pauses until the
audio is that long; the Transcriber the service uses cuts it at quiet points and decodes
the pieces in batches. Prints seconds, RTF (processing time / audio time; < 1 is faster
than real time), WER, pieces, and the process's peak memory after each duration: RTF
should stay flat and memory bounded as the audio grows.

  .venv/bin/python benchmarks/long_audio_rtf.py --threads 2
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import jiwer
import numpy as np
import torch

from asr.audio import load_audio
from asr.transcribe import Transcriber

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test suite's FSDD audio builder
from data_source import fsdd_for_script  # noqa: E402
from fsdd_audio import SAMPLE_RATE, SPEAKERS, connected_digits, expected_text, wav_bytes  # noqa: E402


def long_recording(seconds: float, seed: int = 0) -> tuple[np.ndarray, str]:
    """About `seconds` of connected digits at 8 kHz (whole digit strings) -> (wave (N,), reference text)."""
    rng = np.random.default_rng(seed)
    pause = (1e-3 * rng.standard_normal(SAMPLE_RATE // 2)).astype(np.float32)
    parts, words, total = [], [], 0.0
    while not parts or total < seconds - 0.4:
        length = int(np.clip((seconds - total) / 0.7, 1, 6))  # about 0.7 s per spoken digit
        digits = "".join(str(d) for d in rng.integers(0, 10, length))
        wave, _ = connected_digits(fsdd_for_script(), digits, SPEAKERS[len(words) % len(SPEAKERS)], seed=len(words))
        parts += [wave, pause]
        words.append(expected_text(digits))
        total += (len(wave) + len(pause)) / SAMPLE_RATE
    return np.concatenate(parts[:-1]), " ".join(words)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--durations", type=float, nargs="+", default=[1, 10, 60, 600], help="seconds")
    parser.add_argument("--model-dir", help="model directory (default: the shipped model)")
    parser.add_argument("--decoder", choices=["beam", "greedy", "ctc_greedy"], help="default: the model's")
    parser.add_argument("--beam-size", type=int, help="default: the model's")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    transcriber = Transcriber.load(args.model_dir)
    opts = transcriber.default_options  # the search the model was tuned for (joint CTC beam search)
    if args.decoder:
        opts = replace(opts, method=args.decoder)
    if args.beam_size:
        opts = replace(opts, beam_size=args.beam_size)
    # Warm-up on real speech through the same path (decoding, resampling, the search's kernels),
    # so the first timed duration does not pay for one-off initialisation.
    transcriber.transcribe(load_audio(wav_bytes(long_recording(1)[0]), transcriber.sample_rate), opts)
    print(f"model {transcriber.model_name}, {opts}, VTLN warps {transcriber.vtln_warps}, {args.threads} thread(s)")
    print(f"{'target':>7} {'audio':>8} {'seconds':>8} {'RTF':>7} {'WER':>6} {'pieces':>6} {'peak RSS':>9}")
    for target in args.durations:
        wave, reference = long_recording(target)
        data = wav_bytes(wave)  # as the service gets it: a file to decode and resample
        start = time.perf_counter()
        result = transcriber.transcribe(load_audio(data, transcriber.sample_rate), opts)
        elapsed = time.perf_counter() - start
        print(f"{target:>6.0f}s {result.duration:>7.1f}s {elapsed:>8.2f} {elapsed / result.duration:>7.3f} "
              f"{jiwer.wer(reference, result.text):>6.3f} {len(result.segments):>6} {peak_rss_mib():>5.0f} MiB")

if __name__ == "__main__":
    main()
