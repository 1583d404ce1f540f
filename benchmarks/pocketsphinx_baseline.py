#!/usr/bin/env python3
"""The peer baseline: pocketsphinx 5 (CMU Sphinx, HMM-GMM) with the en-us acoustic model, the general
en-us 3-gram LM and CMUdict that its PyPI package ships, on a Kaldi data dir. Writes a Kaldi text
of hypotheses that `asr wer` scores with the same normalisation as our models' output.

pocketsphinx is not a dependency of the project: `.venv/bin/pip install pocketsphinx` first.

  .venv/bin/python benchmarks/pocketsphinx_baseline.py recipes/speechocean762/data/dev /tmp/ps_dev.txt
  .venv/bin/python -m asr wer recipes/speechocean762/data/dev /tmp/ps_dev.txt \
      --groups recipes/speechocean762/data/dev/utt2group
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from asr.audio import load_audio
from asr.data import load_manifest

SAMPLE_RATE = 16000  # the en-us acoustic model's rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="Kaldi data dir (or JSONL manifest) to decode")
    parser.add_argument("out", help="Kaldi text file of hypotheses to write")
    args = parser.parse_args()

    from pocketsphinx import Decoder  # imported here: the --help above works without it

    decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")  # the package's default en-us model and LM
    utts = load_manifest(args.data)
    audio_seconds = decode_seconds = 0.0
    with open(args.out, "w") as out:
        for utt in tqdm(utts, desc="pocketsphinx", unit="utt"):
            wave = load_audio(utt.audio, SAMPLE_RATE)  # (N,) float32 in [-1, 1]
            pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
            start = time.perf_counter()
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            decode_seconds += time.perf_counter() - start
            audio_seconds += len(wave) / SAMPLE_RATE
            hyp = decoder.hyp()  # None when it found no words
            out.write(f"{utt.id} {hyp.hypstr if hyp is not None else ''}".rstrip() + "\n")
    print(f"{len(utts)} utterances, {audio_seconds:.1f} s of audio, decoding {decode_seconds:.1f} s, "
          f"RTF {decode_seconds / audio_seconds:.4f} (one thread)")


if __name__ == "__main__":
    main()
