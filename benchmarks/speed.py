#!/usr/bin/env python3
"""Training throughput and decoding real-time factor, measured on real recordings.

  .venv/bin/python benchmarks/speed.py                       # shipped model, recipe dev set
  .venv/bin/python benchmarks/speed.py --data recipes/digits/data/dev --model exp/.../model
  .venv/bin/python benchmarks/speed.py --vtln-warps 0.9,0.95,1,1.05,1.1   # test-time VTLN: five decodes per input

Training: seconds of audio processed per second of wall time by the training step
(forward, losses incl. guided attention, backward, AdamW) with the model's own config
and augmentation, on length-bucketed batches of --train-data.
Decoding: RTF = processing time / audio duration for each search method, one utterance
at a time (the latency a client sees) and in batches (throughput). Features, encoder and
search are all inside the timed region; model loading is not.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import NamedTuple

import torch

from asr.cli import add_vtln_warps_argument
from asr.data import ASRDataset, BucketBatchSampler, collate, load_manifest
from asr.decoding import DecodeOptions
from asr.model import ASRModel
from asr.transcribe import Transcriber, Transcription

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "recipes" / "digits" / "data" / "dev"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="Kaldi dir / JSONL to decode (default: recipe dev set)")
    p.add_argument("--train-data", default=None, help="data for the training measurement (default: --data)")
    p.add_argument("--utts", type=int, default=100, help="utterances to decode (default: 100)")
    p.add_argument("--train-steps", type=int, default=20, help="training steps to time (default: 20)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    add_vtln_warps_argument(p)
    return p.parse_args()


class DecodeRun(NamedTuple):
    rtf: float  # wall seconds / audio seconds
    cpu_rtf: float  # this process's CPU seconds (all threads) / audio seconds: less inflated by a busy machine
    results: list[Transcription]


def decode_rtf(t: Transcriber, waves, opts: DecodeOptions, batched: bool) -> DecodeRun:
    """Transcribe waves (each (N,) at t.sample_rate) one by one or in one batched call, timed."""
    audio_seconds = sum(len(w) for w in waves) / t.sample_rate
    t.transcribe(waves[0], opts)  # warm-up
    start, cpu_start = time.perf_counter(), time.process_time()
    if batched:
        results = t.transcribe_batch(waves, opts)
    else:
        results = [t.transcribe(w, opts) for w in waves]
    cpu = time.process_time() - cpu_start
    return DecodeRun((time.perf_counter() - start) / audio_seconds, cpu / audio_seconds, results)


def train_throughput(t: Transcriber, data: str, steps: int) -> float:
    cfg = t.cfg
    utts = load_manifest(data)
    dataset = ASRDataset(utts, t.tokenizer, cfg.features, cfg.augment, seed=0)
    batches = list(BucketBatchSampler(dataset.frame_lengths(), cfg.train.max_frames_per_batch, seed=0))
    model = ASRModel(cfg.model, t.tokenizer.vocab_size, cfg.features.num_mel_bins)
    model.load_state_dict(t.model.state_dict())
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    audio = 0.0
    start = None
    for i, idx in enumerate(batches[: steps + 2]):
        if i == 2:  # the first steps warm up the allocator and kernels
            start, audio = time.perf_counter(), 0.0
        batch = collate([dataset[j] for j in idx])
        out = model(batch.feats, batch.feat_lens, batch.tokens, batch.token_lens, cfg.loss)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        audio += batch.feat_lens.sum().item() * cfg.features.frame_shift_ms / 1000
    return audio / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    t = Transcriber.load(args.model, vtln_warps=args.vtln_warps)
    utts = load_manifest(args.data)[: args.utts]
    waves = [t.load_audio(u.audio) for u in utts]
    seconds = sum(len(w) for w in waves) / t.sample_rate
    print(f"model {t.model_name}: {sum(p.numel() for p in t.model.parameters()) / 1e6:.2f} M parameters; "
          f"torch threads {torch.get_num_threads()}; VTLN warps {t.vtln_warps}; "
          f"{len(waves)} utterances, {seconds:.1f} s of audio from {args.data}")
    print(f"{'decoder':<22}{'RTF one by one':>16}{'RTF batched':>14}")
    for name, opts in [
        ("greedy", DecodeOptions(method="greedy")),
        ("beam 1", DecodeOptions(method="beam", beam_size=1)),
        ("beam 5", DecodeOptions(method="beam", beam_size=5)),
        (f"beam 5 + CTC {t.default_options.ctc_weight:g}", DecodeOptions(beam_size=5, ctc_weight=t.default_options.ctc_weight)),
        ("ctc greedy", DecodeOptions(method="ctc_greedy")),
    ]:
        print(f"{name:<22}{decode_rtf(t, waves, opts, False).rtf:>16.4f}{decode_rtf(t, waves, opts, True).rtf:>14.4f}")
    rate = train_throughput(t, args.train_data or args.data, args.train_steps)
    print(f"training: {rate:.1f} s of audio per second ({args.train_steps} steps, "
          f"batches of <= {t.cfg.train.max_frames_per_batch} frames, augmentation on)")


if __name__ == "__main__":
    main()
