#!/usr/bin/env python3
"""Cross-attention of a model on one recording, as the decoder produced it (beam search).

  local/plot_attention.py exp/transformer_guided/model some.wav --out attn.png

One panel: encoder frames (40 ms) across, output tokens down, averaged over heads and layers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.plots import plot_attention
from asr.transcribe import Transcriber


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("audio", type=Path)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    t = Transcriber.load(args.model)
    result = t.transcribe(args.audio, attention=True)
    if result.attention is None:
        raise SystemExit("no attention: the recording was cut into several pieces")
    plot_attention([result.attention], result.tokens + ["<eos>"][: len(result.attention) - len(result.tokens)],
                   args.out, title=f"{args.model.parent.name}: {result.text}")
    print(f"{result.text}\nwrote {args.out}")


if __name__ == "__main__":
    main()
