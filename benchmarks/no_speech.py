#!/usr/bin/env python3
"""Words from non-speech (target 0) and what the no-speech gate costs on real speech (target nothing).

Non-speech: every kind of asr.no_speech.NON_SPEECH_KINDS (+-1 LSB, white/pink/brown noise,
50/60 Hz hum, DC offset, clicks, tone sequences, babble of reversed utterances) at RMS levels
-90..-10 dBFS in 10 dB steps, 1, 5 and 10 s long (243 files), plus three long ones (60 s of
+-1 LSB, 60 s of white noise at -50 dBFS, 15 min of DC offset). The babble is made from the
speech set's speakers (default: the digits recipe's unseen speaker, whom the no-speech head
never heard), and the random draws use another seed than the head's training.

"no gate" counts the words of the model alone (the gate switched off, as below).

Speech: the same sets decoded with the gate (the model's defaults) and without it
(inference.min_speech_dbfs = -inf, no_speech_threshold = 1, min_confidence = 0); the gate may only remove words.

At equal cost: a threshold only moves the gate along a trade-off, so two heads are compared at
the threshold where at most K of all the speech utterances would be taken for non-speech
(K = 0, 1, 2, 5): the non-speech files that would still pass it.

--reversed also decodes every speech utterance played backwards: one talker's voice with no word
in it, a harder test than babble (which mixes 2-6 such voices); its files with words are counted.

  .venv/bin/python benchmarks/no_speech.py                       # shipped model
  .venv/bin/python benchmarks/no_speech.py --model recipes/digits/exp/TAG/model --vtln-warps 1
  .venv/bin/python benchmarks/no_speech.py --seed 777 --speech recipes/digits/data/valid ...   # another draw, other babble
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from asr.cli import add_vtln_warps_argument
from asr.data import load_manifest
from asr.evaluate import Normalizer, score
from asr.no_speech import NON_SPEECH_KINDS, non_speech
from asr.transcribe import Transcriber

REPO = Path(__file__).resolve().parents[1]
DIGITS_DATA = REPO / "recipes" / "digits" / "data"
SEED = 12345  # the head is trained with seed 0
LEVELS = range(-90, 0, 10)
SECONDS = (1.0, 5.0, 10.0)


def non_speech_set(sr: int, sources: list[np.ndarray], seed: int = SEED) -> list[tuple[str, float, np.ndarray]]:
    """[(kind, level dBFS, wave (N,))]: the grid of kinds x levels x lengths, then the long files."""
    rng = np.random.default_rng(seed)
    out = [(k, lvl, non_speech(k, s, lvl, sr, rng, sources)) for k in NON_SPEECH_KINDS for lvl in LEVELS for s in SECONDS]
    out.append(("lsb 60s", -90.0, non_speech("lsb", 60.0, -90.0, sr, rng)))
    out.append(("white 60s", -50.0, non_speech("white", 60.0, -50.0, sr, rng)))
    out.append(("dc 15min", -20.0, non_speech("dc", 900.0, -20.0, sr, rng)))
    return out


def file_no_speech(r) -> float:
    """P(no speech) of a transcribed file: that of its most speech-like piece (1 if none was audible)."""
    return min((s.no_speech_prob for s in r.segments), default=1.0)


def without_gate(t: Transcriber) -> Transcriber:
    return t.with_inference(min_speech_dbfs=-np.inf, no_speech_threshold=1.0, min_confidence=0.0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    p.add_argument("--speech", nargs="+", default=[str(DIGITS_DATA / s) for s in ("dev", "dev_single", "valid")],
                   help="data sets of real speech (Kaldi dirs or JSONL); the first one's audio makes the babble")
    p.add_argument("--seed", type=int, default=SEED, help="of the non-speech draws (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reversed", action="store_true", help="also count words from each speech utterance played backwards")
    add_vtln_warps_argument(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    gated = Transcriber.load(args.model, vtln_warps=args.vtln_warps)
    print(f"model {gated.model_name}: no-speech head {'yes' if gated.model.no_speech_head is not None else 'no'}, "
          f"min_speech_dbfs {gated.cfg.inference.min_speech_dbfs}, threshold {gated.cfg.inference.no_speech_threshold}, "
          f"min_confidence {gated.cfg.inference.min_confidence}, "
          f"VTLN warps {gated.vtln_warps}")

    sets = {Path(d).name: load_manifest(d) for d in args.speech}
    first = next(iter(sets.values()))
    sources = [gated.load_audio(u.audio) for u in first[:100]]
    files = non_speech_set(gated.sample_rate, sources, args.seed)
    seconds = sum(len(w) for _, _, w in files) / gated.sample_rate
    ungated = without_gate(gated)
    start = time.perf_counter()
    results = gated.transcribe_batch([w for _, _, w in files])
    elapsed = time.perf_counter() - start
    alone = ungated.transcribe_batch([w for _, _, w in files])  # what the model says without the gate
    # kind -> files, files with words, words (with the gate), words of the model alone
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (kind, _, _), r, a in zip(files, results, alone):
        words = len(r.text.split())
        row = by_kind[kind]
        row[0] += 1
        row[1] += words > 0
        row[2] += words
        row[3] += len(a.text.split())
    print(f"\nnon-speech: {len(files)} files, {seconds / 60:.1f} min, decoded in {elapsed:.1f} s")
    print(f"{'kind':<10} {'files':>5} {'with words':>10} {'words':>6} {'no gate':>8}")
    for kind, (n, with_words, words, words_alone) in by_kind.items():
        print(f"{kind:<10} {n:>5} {with_words:>10} {words:>6} {words_alone:>8}")
    total = [sum(col) for col in zip(*by_kind.values())]
    print(f"{'total':<10} {total[0]:>5} {total[1]:>10} {total[2]:>6} {total[3]:>8}")
    worst = sorted(zip(files, results), key=lambda fr: -len(fr[1].text.split()))[:5]
    for (kind, level, _), r in worst:
        if r.text:
            print(f"  {kind} at {level} dBFS -> {r.text!r} (P(no speech) {file_no_speech(r):.3f})")

    reversed_col = f" {'reversed: files with words':>26}" if args.reversed else ""
    print(f"\n{'speech set':<12} {'utts':>5} {'WER gate %':>10} {'WER no gate %':>13} {'emptied':>8}{reversed_col}")
    speech_p: list[float] = []  # P(no speech) of every speech utterance
    for name, utts in sets.items():
        refs = {u.id: u.text or "" for u in utts}
        waves = [gated.load_audio(u.audio) for u in utts]
        found = gated.transcribe_batch(waves)
        speech_p += [file_no_speech(r) for r in found]
        with_gate = {u.id: r.text for u, r in zip(utts, found)}
        no_gate = {u.id: r.text for u, r in zip(utts, ungated.transcribe_batch(waves))}
        emptied = sum(1 for u in utts if no_gate[u.id] and not with_gate[u.id])
        a, b = score(refs, with_gate, Normalizer()), score(refs, no_gate, Normalizer())
        backwards = ""
        if args.reversed:
            said = [r.text.split() for r in gated.transcribe_batch([np.ascontiguousarray(w[::-1]) for w in waves])]
            backwards = f" {f'{sum(1 for x in said if x)} ({sum(map(len, said))} words)':>26}"
        print(f"{name:<12} {len(utts):>5} {100 * a.wer:>10.2f} {100 * b.wer:>13.2f} {emptied:>8}{backwards}")

    if gated.model.no_speech_head is not None:
        ranked = sorted(speech_p, reverse=True) + [0.0]
        noise_p = np.array([file_no_speech(r) for r in results])
        print(f"\nat equal cost ({len(speech_p)} speech utterances): threshold -> non-speech files that pass it")
        for k in (0, 1, 2, 5):
            threshold = min(ranked[k], np.nextafter(1.0, 0.0))  # at most k speech utterances above it
            print(f"  <= {k} speech taken: threshold {threshold:.4f}, {int((noise_p <= threshold).sum())} of {len(files)} pass")


if __name__ == "__main__":
    main()
