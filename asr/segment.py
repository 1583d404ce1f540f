"""Split long audio into pieces the model can decode, and group pieces into batches.

The model is trained on short utterances, so a long recording is cut into
contiguous pieces of at most `max_seconds`. Each cut is placed at the quietest
moment of the allowed window, so that it falls in a pause between words rather
than through one. Pieces cover the whole signal with no gap and no overlap:
a time `t` inside piece `p` is at `p.start / sample_rate + t` in the recording.

Energy is measured on 10 ms blocks and smoothed over `smooth_seconds`, which makes
a cut prefer a real pause over the brief closure of a stop consonant. Everything
here is numpy on one pass over the signal: memory and time are linear in its length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK_SECONDS = 0.01  # energy is measured on 10 ms blocks


@dataclass(frozen=True)
class Piece:
    """A span of samples `[start, end)` of a longer signal."""

    start: int
    end: int

    @property
    def num_samples(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class SegmentConfig:
    max_seconds: float = 20.0  # no piece is longer than this
    min_seconds: float = 10.0  # a cut is searched for in [min_seconds, max_seconds] of a piece
    smooth_seconds: float = 0.2  # moving-average window of the block energy


def block_energy_db(wave: np.ndarray, block: int) -> np.ndarray:
    """Mean power (dB) of consecutive `block`-sample blocks; the last partial block is padded.

    wave: (N,) float -> (ceil(N / block),)
    """
    num_blocks = -(-len(wave) // block)
    padded = np.zeros(num_blocks * block, dtype=np.float64)
    padded[: len(wave)] = wave
    power = np.square(padded).reshape(num_blocks, block).mean(axis=1)
    return 10.0 * np.log10(power + 1e-12)


def peak_level_db(wave: np.ndarray, sample_rate: int) -> float:
    """Power (dB re full scale) of the loudest 10 ms block of wave (N,), its mean removed (a DC offset is not sound)."""
    if len(wave) == 0:
        return -120.0
    return float(block_energy_db(wave - wave.mean(), max(1, round(BLOCK_SECONDS * sample_rate))).max())


def split_long_audio(
    wave: np.ndarray, sample_rate: int, cfg: SegmentConfig = SegmentConfig()
) -> list[Piece]:
    """Cut `wave: (N,)` into contiguous pieces of at most `cfg.max_seconds`, at low-energy points.

    The cut ending a piece that starts at `s` is the start of the quietest (smoothed) 10 ms
    block in `[s + min_seconds, s + max_seconds]`; among equally quiet blocks the latest is taken, so
    pieces are as long as allowed. A signal no longer than `max_seconds` is one piece.
    """
    if cfg.max_seconds <= 0 or not 0 < cfg.min_seconds <= cfg.max_seconds:
        raise ValueError(f"need 0 < min_seconds <= max_seconds, got {cfg}")
    num_samples = len(wave)
    block = max(1, round(BLOCK_SECONDS * sample_rate))
    max_blocks = max(1, int(cfg.max_seconds * sample_rate) // block)
    min_blocks = max(1, int(cfg.min_seconds * sample_rate) // block)
    if num_samples <= max_blocks * block:
        return [Piece(0, num_samples)]

    energy = block_energy_db(wave, block)
    width = max(1, round(cfg.smooth_seconds / BLOCK_SECONDS))
    # Centred moving average; edge padding keeps the ends from looking loud or quiet.
    padded = np.pad(energy, (width // 2, width - 1 - width // 2), mode="edge")
    smooth = np.convolve(padded, np.ones(width) / width, mode="valid")  # (num_blocks,)

    pieces = []
    start = 0  # in blocks
    while num_samples - start * block > max_blocks * block:
        # Cutting at block k ends the piece before block k: k - start <= max_blocks.
        window = smooth[start + min_blocks : start + max_blocks + 1]
        latest_quietest = len(window) - 1 - int(np.argmin(window[::-1]))
        cut = start + min_blocks + latest_quietest
        pieces.append(Piece(start * block, cut * block))
        start = cut
    pieces.append(Piece(start * block, num_samples))
    return pieces


def batch_pieces(
    lengths: list[int], max_batch_samples: int, max_batch_size: int = 16
) -> list[list[int]]:
    """Group item indices into batches, longest first, bounding padded size.

    A batch of items padded to its longest one costs `len(batch) * max(length)` samples;
    this stays <= `max_batch_samples` (an item longer than that is a batch of its own),
    and a batch holds at most `max_batch_size` items. Every index appears exactly once.
    """
    if max_batch_samples <= 0 or max_batch_size <= 0:
        raise ValueError("max_batch_samples and max_batch_size must be positive")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    for i in order:
        if batches:
            current = batches[-1]
            longest = lengths[current[0]]  # sorted: the first item is the longest
            if len(current) < max_batch_size and (len(current) + 1) * longest <= max_batch_samples:
                current.append(i)
                continue
        batches.append([i])
    return batches
