"""Connected-digit recordings built from real FSDD takes, for service tests and benchmarks.

Takes of one speaker are joined by short pauses of faint noise (about -60 dBFS), the way
the digits recipe builds its utterances; takes 0-4 are the ones the recipe holds out of
training. Output is 16-bit WAV bytes at FSDD's 8 kHz (the service resamples).
`spoken_extents` says where each digit's speech lies in such a recording, the reference for
word timestamps, and `overlap` scores a word's span against it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.segment import block_energy_db

SAMPLE_RATE = 8000
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPEAKERS = ("george", "jackson", "nicolas", "theo", "yweweler")


def expected_text(digits: str) -> str:
    """"314" -> "three one four"."""
    return " ".join(DIGIT_WORDS[int(d)] for d in digits)


def connected_digits(
    fsdd_dir: Path, digits: str, speaker: str = "george", pause_s: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The spoken `digits` ("314") -> (float32 waveform (N,) at 8 kHz, (start, end) seconds of each digit)."""
    rng = np.random.default_rng(seed)

    def pause(seconds: float) -> np.ndarray:
        return (1e-3 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)

    parts, spans, position = [pause(0.15)], [], int(0.15 * SAMPLE_RATE)
    for i, digit in enumerate(digits):
        take = (seed + i) % 5
        wave, sr = sf.read(fsdd_dir / "recordings" / f"{digit}_{speaker}_{take}.wav", dtype="float32")
        assert sr == SAMPLE_RATE
        gap = pause(pause_s if i < len(digits) - 1 else 0.15)
        parts += [wave, gap]
        spans.append((position / SAMPLE_RATE, (position + len(wave)) / SAMPLE_RATE))
        position += len(wave) + len(gap)
    return np.concatenate(parts), spans


def wav_bytes(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, sample_rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def digit_strings(count: int, seed: int = 0, min_len: int = 2, max_len: int = 6) -> list[str]:
    """`count` different random digit strings."""
    rng = np.random.default_rng(seed)
    found: list[str] = []
    while len(found) < count:
        s = "".join(str(d) for d in rng.integers(0, 10, rng.integers(min_len, max_len + 1)))
        if s not in found:
            found.append(s)
    return found


def spoken_extents(
    wave: np.ndarray, spans: list[tuple[float, float]], range_db: float = 35.0
) -> list[tuple[float, float]]:
    """Each recording's span (seconds) in wave (N,) at 8 kHz, trimmed to its speech: from the first
    to the last 10 ms block within range_db of the recording's loudest block (its mean removed)."""
    block = SAMPLE_RATE // 100
    extents = []
    for start, end in spans:
        take = wave[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]
        energy = block_energy_db(take - take.mean(), block)  # (blocks,) dB
        loud = np.flatnonzero(energy >= energy.max() - range_db)
        extents.append((start + loud[0] / 100, min(end, start + (loud[-1] + 1) / 100)))  # last block: partial
    return extents


def overlap(hyp: tuple[float, float], ref: tuple[float, float]) -> tuple[float, float]:
    """(coverage, IoU) of span hyp against span ref: |hyp ∩ ref| / |ref| and |hyp ∩ ref| / |hyp ∪ ref|."""
    common = max(0.0, min(hyp[1], ref[1]) - max(hyp[0], ref[0]))
    union = (hyp[1] - hyp[0]) + (ref[1] - ref[0]) - common
    return common / (ref[1] - ref[0]), common / union
