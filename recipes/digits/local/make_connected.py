#!/usr/bin/env python3
"""Stage "connected digits": Kaldi data dirs of connected-digit utterances built from FSDD.

Each utterance strings 1-7 digits (length uniform, digits uniform) taken from
ONE speaker's recordings: every take trimmed of leading/trailing near-silence,
joined by 50-300 ms pauses, with 100-300 ms of lead and trail; the pauses hold
noise with the level and spectrum of the recordings' background, not digital zero.

  data/train       train speakers, takes >= 5 (recordings reused across utterances)
  data/valid       train speakers, takes 0-4 only: checkpoint selection without the dev speaker
  data/dev         the held-out dev speaker (all takes)
  data/dev_single  every recording of the dev speaker alone (per-digit view)

Audio: 16-bit 8 kHz WAVs in data/wav/<set>/. Besides wav.scp, text, utt2spk,
spk2utt and utt2dur each dir has utt2src (the recordings used, in order) and
ctm (where each digit lies in the utterance).
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from fsdd import DIGIT_WORDS, FsddError, Recording, list_recordings, read_path_file
from kaldi_dir import Utt, Word, write_data_dir
from stage import (
    add_digit_range_args,
    add_force_arg,
    add_seed_arg,
    begin,
    done_marker,
    mark_done,
    parse_with_digit_range,
    run_main,
)
from waveform import (
    SAMPLE_RATE,
    background_shape,
    join,
    ms_to_samples,
    noise_floor_db,
    read_pcm16,
    trimmed,
    write_pcm16,
)

DEFAULT_SPEAKERS = "george,jackson,nicolas,theo,yweweler"  # those of the shared offline copy
PAUSE_MS = (50, 300)
EDGE_MS = (100, 300)  # lead and trail
NOISE_BELOW_FLOOR_DB = 3.0


@dataclass(frozen=True)
class Take:
    """A recording ready to paste: trimmed samples (N,) in int16 units, its background level and spectrum."""

    rec: Recording
    samples: np.ndarray
    floor_db: float
    background: np.ndarray


@dataclass(frozen=True)
class SetSpec:
    name: str
    pool: dict[str, dict[int, list[str]]]  # speaker -> digit -> recording ids to draw from
    num_utts: int | None  # None: every recording of the pool once, alone


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="recipe data folder (default: data)")
    parser.add_argument("--fsdd", type=Path, help="FSDD copy (default: the one recorded in <data>/fsdd_path)")
    parser.add_argument(
        "--speakers", default=DEFAULT_SPEAKERS, help=f"FSDD speakers to use, or 'all' (default: {DEFAULT_SPEAKERS})"
    )
    parser.add_argument("--dev-speaker", default="theo", help="speaker held out for dev and dev_single (default: theo)")
    parser.add_argument(
        "--heldout-takes", type=int, default=5, help="takes 0..N-1 of the train speakers go to valid only (default: 5)"
    )
    parser.add_argument("--num-train", type=int, default=6000, help="train utterances (default: 6000)")
    parser.add_argument("--num-valid", type=int, default=300, help="valid utterances (default: 300)")
    parser.add_argument("--num-dev", type=int, default=400, help="dev utterances (default: 400)")
    add_digit_range_args(parser)
    add_seed_arg(parser)
    add_force_arg(parser)
    return parse_with_digit_range(parser, argv)


def select_speakers(recordings: list[Recording], speakers: str, dev_speaker: str) -> tuple[list[str], list[str]]:
    """(train speakers, [dev speaker]) after checking they exist in the copy."""
    available = sorted({r.speaker for r in recordings})
    wanted = available if speakers == "all" else sorted(set(speakers.split(",")))
    missing = [s for s in [*wanted, dev_speaker] if s not in available]
    if missing:
        raise FsddError(f"speaker(s) {', '.join(missing)} not in the FSDD copy (it has {', '.join(available)})")
    train = [s for s in wanted if s != dev_speaker]
    if not train:
        raise FsddError("no training speakers left once the dev speaker is held out")
    return train, [dev_speaker]


def make_pool(
    recordings: list[Recording], speakers: list[str], keep_take: Callable[[int], bool]
) -> dict[str, dict[int, list[str]]]:
    pool: dict[str, dict[int, list[str]]] = {s: defaultdict(list) for s in speakers}
    for rec in recordings:
        if rec.speaker in pool and keep_take(rec.take):
            pool[rec.speaker][rec.digit].append(rec.id)
    for speaker, by_digit in pool.items():
        if len(by_digit) < len(DIGIT_WORDS):
            raise FsddError(f"speaker {speaker} has no usable take of some digit in this set")
    return pool


def set_specs(args: argparse.Namespace, recordings: list[Recording]) -> list[SetSpec]:
    train_spk, dev_spk = select_speakers(recordings, args.speakers, args.dev_speaker)
    heldout = args.heldout_takes
    return [
        SetSpec("train", make_pool(recordings, train_spk, lambda t: t >= heldout), args.num_train),
        SetSpec("valid", make_pool(recordings, train_spk, lambda t: t < heldout), args.num_valid),
        SetSpec("dev", make_pool(recordings, dev_spk, lambda t: True), args.num_dev),
        SetSpec("dev_single", make_pool(recordings, dev_spk, lambda t: True), None),
    ]


def load_takes(recordings: list[Recording], specs: list[SetSpec]) -> dict[str, Take]:
    needed = {rid for spec in specs for by_digit in spec.pool.values() for ids in by_digit.values() for rid in ids}
    takes = {}
    for rec in recordings:
        if rec.id in needed:
            x = read_pcm16(rec.path)
            takes[rec.id] = Take(rec, trimmed(x), noise_floor_db(x), background_shape(x))
    return takes


def draw_sources(spec: SetSpec, args: argparse.Namespace, rng: np.random.Generator) -> list[tuple[str, list[str]]]:
    """(speaker, recording ids) for each utterance of the set."""
    if spec.num_utts is None:
        by_speaker = sorted(spec.pool.items())
        return [(spk, [rid]) for spk, by_digit in by_speaker for d in sorted(by_digit) for rid in sorted(by_digit[d])]
    speakers = sorted(spec.pool)
    plans = []
    for _ in range(spec.num_utts):
        speaker = speakers[rng.integers(len(speakers))]
        length = int(rng.integers(args.min_digits, args.max_digits + 1))
        ids = []
        for digit in rng.integers(len(DIGIT_WORDS), size=length):
            choices = spec.pool[speaker][int(digit)]
            ids.append(choices[rng.integers(len(choices))])
        plans.append((speaker, ids))
    return plans


def render(takes: list[Take], rng: np.random.Generator) -> tuple[np.ndarray, list[Word]]:
    """One utterance: the takes joined with random pauses; returns (N,) samples and digit timings."""
    pauses = [ms_to_samples(rng.uniform(*PAUSE_MS)) for _ in takes[1:]]
    lead, trail = (ms_to_samples(rng.uniform(*EDGE_MS)) for _ in range(2))
    noise_db = min(t.floor_db for t in takes) - NOISE_BELOW_FLOOR_DB
    shape = np.mean([t.background for t in takes], axis=0)
    audio, starts = join([t.samples for t in takes], [lead, *pauses, trail], noise_db, rng, shape)
    words = [Word(t.rec.word, start / SAMPLE_RATE, len(t.samples) / SAMPLE_RATE) for t, start in zip(takes, starts)]
    return audio, words


def make_set(spec: SetSpec, takes: dict[str, Take], args: argparse.Namespace) -> list[Utt]:
    # Each set has its own random stream, so changing one set's size leaves the others as they were.
    rng = np.random.default_rng([args.seed, zlib.crc32(spec.name.encode())])
    wav_dir = (args.data / "wav" / spec.name).resolve()
    wav_dir.mkdir(parents=True, exist_ok=True)
    utts = []
    for index, (speaker, ids) in enumerate(draw_sources(spec, args, rng)):
        utt_id = f"{speaker}-{spec.name}-{index:05d}"
        audio, words = render([takes[i] for i in ids], rng)
        wav = wav_dir / f"{utt_id}.wav"
        write_pcm16(wav, audio)
        text = " ".join(w.word for w in words)
        utts.append(Utt(utt_id, wav, text, speaker, len(audio) / SAMPLE_RATE, tuple(ids), tuple(words)))
    return utts


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    fsdd_root = args.fsdd.resolve() if args.fsdd else read_path_file(args.data)
    recordings = list_recordings(fsdd_root)
    specs = set_specs(args, recordings)
    options = ("speakers", "dev_speaker", "heldout_takes", "min_digits", "max_digits", "seed")
    common = {k: getattr(args, k) for k in options}
    common.update(fsdd=str(fsdd_root), pause_ms=PAUSE_MS, edge_ms=EDGE_MS)
    todo = []
    for spec in specs:
        params = {**common, "set": spec.name, "num_utts": spec.num_utts}
        out_dir = args.data / spec.name
        if begin(done_marker(out_dir), params, args.force, outputs=[out_dir, args.data / "wav" / spec.name]):
            todo.append((spec, params))
    if not todo:
        return
    takes = load_takes(recordings, [spec for spec, _ in todo])
    for spec, params in todo:
        t0 = time.time()
        utts = make_set(spec, takes, args)
        out_dir = args.data / spec.name
        write_data_dir(out_dir, utts)
        mark_done(done_marker(out_dir), params)
        hours = sum(u.duration for u in utts) / 3600
        print(f"{out_dir}: {len(utts)} utterances, {hours:.2f} h, {time.time() - t0:.1f} s")


if __name__ == "__main__":
    sys.exit(run_main(main))
