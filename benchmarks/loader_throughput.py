#!/usr/bin/env python3
"""CPU cost of the training data pipeline: CPU seconds per second of audio for the examples a
config's training set yields (FLAC decoding, speed perturbation, fbank, SpecAugment, tokens), in
one thread.

  .venv/bin/python benchmarks/loader_throughput.py --config recipes/librispeech/conf/train_100h_1gpu.yaml \\
      --data ../shared/data/speechocean762/manifest.jsonl

On a GPU these examples are made by train.num_workers DataLoader processes while the GPU trains,
so a run cannot train on more than num_workers / (CPU s per audio s) seconds of audio per second,
however fast its GPU (the LibriSpeech recipe's README uses this bound). Consecutive utterances of
--data are joined into 16 kHz FLAC files of about --seconds (LibriSpeech's utterances average
12.3 s), so that the figure is for LibriSpeech-like files whatever --data holds. CPU time is the
process's own (time.process_time), so other work on the machine does not inflate it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from asr.audio import load_audio
from asr.config import load_config
from asr.data import ASRDataset, Utterance, load_manifest
from asr.tokenizer import Tokenizer


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="training config (its features, augment and tokenizer)")
    p.add_argument("--data", required=True, help="Kaldi dir / JSONL of real speech")
    p.add_argument("--files", type=int, default=60, help="joined files to time (default: 60)")
    p.add_argument("--seconds", type=float, default=12.3, help="length of each joined file (default: 12.3)")
    return p.parse_args()


def joined_flacs(data: str, count: int, seconds: float, rate: int, out: Path) -> list[Utterance]:
    """`count` FLAC files in `out`, each the next utterances of `data` end to end until it lasts `seconds`."""
    source = iter(load_manifest(data))
    utts = []
    for i in range(count):
        waves, texts = [], []
        while sum(len(w) for w in waves) < seconds * rate:
            u = next(source)
            waves.append(load_audio(u.audio, rate))
            texts.append(u.text or "")
        path = out / f"joined{i:04d}.flac"
        sf.write(path, np.concatenate(waves), rate, format="FLAC", subtype="PCM_16")
        utts.append(Utterance(path.stem, str(path), " ".join(texts), sf.info(path).duration))
    return utts


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        utts = joined_flacs(args.data, args.files, args.seconds, cfg.features.sample_rate, Path(tmp))
        tokenizer = Tokenizer.train(cfg.tokenizer.kind, [u.text for u in utts], vocab_size=cfg.tokenizer.vocab_size)
        dataset = ASRDataset(utts, tokenizer, cfg.features, cfg.augment, seed=0)
        dataset[0]  # warm-up: first calls allocate and load kernels
        start = time.process_time()
        for i in range(len(dataset)):
            dataset[i]
        cpu = time.process_time() - start
    audio = sum(u.duration for u in utts)
    print(f"{args.config}: {len(utts)} files, {audio:.0f} s of audio: {cpu:.2f} CPU s, "
          f"{cpu / audio:.4f} CPU s per audio s = {audio / cpu:.0f} audio s per CPU s (one thread)")


if __name__ == "__main__":
    main()
