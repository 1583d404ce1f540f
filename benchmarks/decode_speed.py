#!/usr/bin/env python3
"""Decoding speed with and without the decoder's key/value cache, and the WER to show they agree.

For greedy search and beam 5 (jointly with CTC where the model has a CTC head, at its
inference.ctc_weight), each with the cache (DecodeOptions.kv_cache, the default) and without
it (the decoder re-run over every whole prefix at each step): RTF = processing time / audio
duration through the Transcriber (features, encoder and search timed; model loading not), one
utterance at a time and in batches (benchmarks/speed.py's decode_rtf), also as CPU seconds
per audio second (steadier than wall time on a machine busy with other work), the WER, and how
many transcripts equal the cached search's. CTC greedy (no attention decoder) is the floor the
encoder and features set. The model's own decoding options otherwise (attention window, EOS
penalty, test-time VTLN warps unless --vtln-warps).

  .venv/bin/python benchmarks/decode_speed.py                  # digits, 50 FSDD utterances of the unseen speaker
  .venv/bin/python benchmarks/decode_speed.py --model recipes/speechocean762/exp/conformer/model \\
      --data recipes/speechocean762/data/dev --max-utts 50

The default audio is --max-utts strings of 2-6 connected digits spoken by theo (held out of the
digits recipe's training), built from FSDD takes 0-4 as benchmarks/word_times.py builds them.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

from asr.cli import add_vtln_warps_argument
from asr.config import ConfigError
from asr.data import ManifestError, load_manifest
from asr.decoding import DecodeOptions
from asr.evaluate import score
from asr.transcribe import Transcriber
from speed import decode_rtf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test suite's FSDD audio builder
from data_source import fsdd_for_script  # noqa: E402
from fsdd_audio import connected_digits, digit_strings, expected_text, wav_bytes  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="digits", help="a shipped model's name or a model directory (default: digits)")
    p.add_argument("--data", default=None, help="Kaldi dir (wav.scp, text) or JSONL (default: FSDD connected digits)")
    p.add_argument("--max-utts", type=int, default=50, help="utterances to decode (default: 50)")
    p.add_argument("--beam-size", type=int, default=5, help="beam of the beam search (default: 5)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    add_vtln_warps_argument(p)
    args = p.parse_args()
    if args.max_utts < 1 or args.beam_size < 1:
        p.error("--max-utts and --beam-size must be >= 1")
    return args


def fsdd_digits(t: Transcriber, count: int) -> tuple[list, dict[str, str], str]:
    """count connected-digit utterances of the unseen speaker -> (waves at t.sample_rate, {id: text}, where)."""
    fsdd = fsdd_for_script()
    digits = digit_strings(count, seed=3)
    waves = [t.load_audio(wav_bytes(connected_digits(fsdd, d, "theo", seed=i)[0])) for i, d in enumerate(digits)]
    return waves, {f"theo-{i:03d}": expected_text(d) for i, d in enumerate(digits)}, f"FSDD connected digits of theo ({fsdd})"


def manifest(t: Transcriber, data: str, count: int) -> tuple[list, dict[str, str], str]:
    """The first count utterances of a data set with transcripts -> (waves, {id: text}, where)."""
    try:
        utts = load_manifest(data)[:count]
    except ManifestError as err:
        sys.exit(f"error: {err}")
    untranscribed = [u.id for u in utts if u.text is None]
    if untranscribed:
        sys.exit(f"error: {data}: no transcript for {len(untranscribed)} utterance(s), e.g. {untranscribed[0]}")
    return [t.load_audio(u.audio) for u in utts], {u.id: u.text for u in utts}, data


def measure(t: Transcriber, waves, refs: dict[str, str], opts: DecodeOptions) -> tuple[str, float, list[list[str]]]:
    """The RTF columns (wall, CPU; one by one, batched), the WER % of the one-by-one transcripts, and
    both lists of transcripts."""
    one, batched = decode_rtf(t, waves, opts, batched=False), decode_rtf(t, waves, opts, batched=True)
    texts = [[r.text for r in one.results], [r.text for r in batched.results]]
    columns = f"{one.rtf:>9.4f}{batched.rtf:>9.4f}{one.cpu_rtf:>9.4f}{batched.cpu_rtf:>9.4f}"
    return columns, 100 * score(refs, dict(zip(refs, texts[0]))).wer, texts


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    try:
        t = Transcriber.load(args.model, vtln_warps=args.vtln_warps)
    except ConfigError as err:
        sys.exit(f"error: {err}")
    waves, refs, where = manifest(t, args.data, args.max_utts) if args.data else fsdd_digits(t, args.max_utts)
    seconds = sum(len(w) for w in waves) / t.sample_rate
    print(f"model {t.model_name}: {sum(p.numel() for p in t.model.parameters()) / 1e6:.2f} M parameters; "
          f"torch threads {torch.get_num_threads()}; VTLN warps {t.vtln_warps}; "
          f"{len(waves)} utterances, {seconds:.1f} s of audio from {where}")
    joint = f" + CTC {t.default_options.ctc_weight:g}" if t.default_options.ctc_weight else ""
    searches = [("greedy", t.options("greedy")), (f"beam {args.beam_size}{joint}", t.options("beam", args.beam_size))]
    print(f"{'':<26}{'RTF (wall)':^18}{'RTF (CPU)':^18}")
    print(f"{'search':<20}{'cache':>6}{'1 by 1':>9}{'batched':>9}{'1 by 1':>9}{'batched':>9}{'WER %':>8}{'same text':>11}")
    for name, opts in searches:
        for cache in (True, False):
            columns, wer, texts = measure(t, waves, refs, replace(opts, kv_cache=cache))
            if cache:
                cached_texts = texts
            same = sum(a == b for mine, ref in zip(texts, cached_texts) for a, b in zip(mine, ref))
            print(f"{name:<20}{'on' if cache else 'off':>6}{columns}{wer:>8.2f}{f'{same}/{2 * len(waves)}':>11}")
    if t.model.has_ctc:
        columns, wer, _ = measure(t, waves, refs, DecodeOptions("ctc_greedy"))
        print(f"{'ctc greedy (floor)':<20}{'-':>6}{columns}{wer:>8.2f}")
    print("RTF (CPU): this process's CPU seconds (all threads) per audio second; same text: transcripts "
          "(one by one, then batched) equal to those of the same search with the cache")


if __name__ == "__main__":
    main()
