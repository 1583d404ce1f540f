#!/usr/bin/env python3
"""Word timestamps against where the words are, on connected digits of the unseen speaker.

--count utterances of 2-6 digits spoken by --speaker (default theo, held out of the digits
recipe's training), built from FSDD recordings (takes 0-4) joined by 50-400 ms pauses of
faint noise (tests/fsdd_audio.py). A digit's reference extent is its recording's place in
the utterance trimmed to its speech: the 10 ms blocks within 35 dB of the recording's peak.
Each utterance goes through the Transcriber with timestamps; where it gives as many words as
digits, word i is scored against digit i:

  span      end - start of the word (seconds)
  coverage  |word ∩ digit| / |digit|
  IoU       |word ∩ digit| / |word ∪ digit|  (coverage rewards a word that takes the whole
            utterance; IoU does not)

Prints the medians (and the 10th percentile of IoU, the worst words).

  .venv/bin/python benchmarks/word_times.py --count 50

Shipped model, 50 utterances (200 words scored; 1 utterance left out), 2-core CPU, 20 s:
  CTC anchors extended over the speech (asr/alignment.py)  span 240 ms  coverage 0.861  IoU 0.852
  the same anchored by the cross-attention                 span 240 ms  coverage 0.857  IoU 0.831
  before: the CTC forced alignment's frames alone          span  40 ms  coverage 0.117  IoU 0.115
(digits: median 299 ms). The worst words are mostly the reference's: a few of theo's takes
hold 0.2-0.3 s of room noise at -60..-72 dBFS, within 35 dB of his quiet voice (peaks near
-36 dBFS), which the reference counts into the digit while the pauses' -60 dBFS noise hides it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from asr.transcribe import Transcriber

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test suite's FSDD audio builder
from data_source import fsdd_for_script  # noqa: E402
from fsdd_audio import connected_digits, digit_strings, overlap, spoken_extents, wav_bytes  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50, help="utterances")
    parser.add_argument("--speaker", default="theo", help="FSDD speaker (default: theo, unseen in training)")
    parser.add_argument("--model-dir", help="model directory (default: the shipped model)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    fsdd = fsdd_for_script()
    transcriber = Transcriber.load(args.model_dir)
    pauses = np.random.default_rng(0).uniform(0.05, 0.4, args.count)
    built = [connected_digits(fsdd, d, args.speaker, pause_s=p, seed=i)
             for i, (d, p) in enumerate(zip(digit_strings(args.count, seed=3), pauses))]
    results = transcriber.transcribe_batch([wav_bytes(wave) for wave, _ in built], timestamps=True)

    spans, refs, coverage, iou, skipped = [], [], [], [], 0
    for (wave, digit_spans), result in zip(built, results):
        if len(result.words) != len(digit_spans):
            skipped += 1
            continue
        for word, ref in zip(result.words, spoken_extents(wave, digit_spans)):
            spans.append(word.end - word.start)
            refs.append(ref[1] - ref[0])
            c, j = overlap((word.start, word.end), ref)
            coverage.append(c)
            iou.append(j)
    sources = sorted({r.timing_source for r in results})
    print(f"model {transcriber.model_name}, speaker {args.speaker}, timing source {'/'.join(sources)}")
    print(f"{len(spans)} words of {args.count - skipped} utterances ({skipped} with another number of words left out)")
    print(f"median span {np.median(spans) * 1000:.0f} ms (digits: {np.median(refs) * 1000:.0f} ms)")
    print(f"median coverage {np.median(coverage):.3f}, median IoU {np.median(iou):.3f}, "
          f"10th percentile IoU {np.percentile(iou, 10):.3f}")


if __name__ == "__main__":
    main()
