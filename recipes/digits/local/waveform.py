"""16-bit waveforms: reading, writing, trimming silence, joining with pauses.

The digits recipe works at 8 kHz (SAMPLE_RATE); a function that depends on the
rate also takes `sample_rate` (the English recipe's synthetic voices are 16 kHz).
Samples stay in int16 units (float64 arrays while being processed), so a
recording copied into a generated utterance keeps its exact sample values.
Levels are in dBFS: 10*log10(mean((x / 32768)^2)).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from stage import StageError

SAMPLE_RATE = 8000
FRAME = SAMPLE_RATE // 100  # 10 ms energy frames
FULL_SCALE = 32768.0
FADE_MS = 5  # fades where a recording was cut

# Trimming (see trim_bounds): gentle, it only removes clear near-silence.
MIN_DYNAMIC_DB = 20.0
ABOVE_FLOOR_DB = 3.0
BELOW_PEAK_DB = 50.0
TRIM_MARGIN_MS = 50

# Background noise spectrum (see background_shape).
SPECTRUM_FFT = 256
SPECTRUM_BINS = SPECTRUM_FFT // 2 + 1
QUIET_PERCENTILE = 25


def ms_to_samples(ms: float, sample_rate: int = SAMPLE_RATE) -> int:
    return int(round(ms * sample_rate / 1000))


def read_pcm16(path: Path) -> np.ndarray:
    """x: (N,) float64 in int16 units; StageError unless 8 kHz mono."""
    x, sr = sf.read(path, dtype="int16", always_2d=True)
    if sr != SAMPLE_RATE or x.shape[1] != 1:
        raise StageError(f"{path}: expected {SAMPLE_RATE} Hz mono, got {sr} Hz with {x.shape[1]} channel(s)")
    return x[:, 0].astype(np.float64)


def write_pcm16(path: Path, x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Round x (N,) in int16 units, clip to int16 and write a 16-bit WAV."""
    pcm = np.clip(np.round(x), -FULL_SCALE, FULL_SCALE - 1).astype(np.int16)
    sf.write(path, pcm, sample_rate, subtype="PCM_16")


def frame_db(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(N,) -> (N // frame,) energy of each 10 ms frame in dBFS (a short tail is ignored)."""
    frame = sample_rate // 100
    n = len(x) // frame
    frames = x[: n * frame].reshape(n, frame) / FULL_SCALE
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-10)


def noise_floor_db(x: np.ndarray) -> float:
    """Background level of a recording: the 10th percentile of its frame energies."""
    db = frame_db(x)
    return float(np.percentile(db, 10)) if len(db) else -100.0


def trim_bounds(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[int, int]:
    """[start, end) of x without leading/trailing near-silence.

    floor = noise_floor_db(x), peak = loudest frame. When peak - floor < 20 dB
    the recording has no clear silence and is kept whole. Otherwise frames
    above max(floor + 3 dB, peak - 50 dB) count as speech, and the span from the
    first to the last of them is kept, widened by 50 ms on each side.
    """
    db = frame_db(x, sample_rate)
    if len(db) == 0:
        return 0, len(x)
    floor, peak = float(np.percentile(db, 10)), float(db.max())
    if peak - floor < MIN_DYNAMIC_DB:
        return 0, len(x)
    active = np.flatnonzero(db > max(floor + ABOVE_FLOOR_DB, peak - BELOW_PEAK_DB))
    frame, margin = sample_rate // 100, ms_to_samples(TRIM_MARGIN_MS, sample_rate)
    start = max(int(active[0]) * frame - margin, 0)
    end = min((int(active[-1]) + 1) * frame + margin, len(x))
    return start, end


def fade_edges(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """x with 5 ms raised-cosine fade-in and fade-out (no clicks where a cut meets a pause)."""
    n = min(ms_to_samples(FADE_MS, sample_rate), len(x) // 2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
    y = x.copy()
    y[:n] *= ramp
    y[len(y) - n :] *= ramp[::-1]
    return y


def trimmed(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The speech part of a recording as it is pasted into an utterance: trimmed, edges faded."""
    start, end = trim_bounds(x, sample_rate)
    return fade_edges(x[start:end], sample_rate)


def background_shape(x: np.ndarray) -> np.ndarray:
    """(N,) -> (SPECTRUM_BINS,) power spectrum of the quietest 32 ms frames of x, mean 1.

    Pauses filled with noise of this shape sound (and look) like the room the
    recording was made in, not like a hiss that marks where words were pasted.
    """
    if len(x) < SPECTRUM_FFT:
        return np.ones(SPECTRUM_BINS)
    hop = SPECTRUM_FFT // 2
    starts = np.arange(0, len(x) - SPECTRUM_FFT + 1, hop)
    frames = np.stack([x[s : s + SPECTRUM_FFT] for s in starts]) * np.hanning(SPECTRUM_FFT)
    energy = np.sum(frames**2, axis=1)
    quiet = frames[energy <= np.percentile(energy, QUIET_PERCENTILE)]
    power = np.mean(np.abs(np.fft.rfft(quiet, axis=1)) ** 2, axis=0) + 1e-12
    return power / power.mean()


def noise(num_samples: int, level_db: float, rng: np.random.Generator, shape: np.ndarray | None = None) -> np.ndarray:
    """Gaussian noise at `level_db` dBFS, (num_samples,) in int16 units.

    White, or with the power spectrum `shape` (SPECTRUM_BINS,) from background_shape.
    """
    white = rng.standard_normal(num_samples)
    if shape is None or num_samples < 2:
        coloured = white
    else:
        bins = np.fft.rfftfreq(num_samples)  # 0 .. 0.5 cycles/sample
        gain = np.sqrt(np.interp(bins, np.fft.rfftfreq(SPECTRUM_FFT), shape))
        coloured = np.fft.irfft(np.fft.rfft(white) * gain, n=num_samples)
    rms = np.sqrt(np.mean(coloured**2)) if num_samples else 1.0
    return coloured / max(rms, 1e-12) * FULL_SCALE * 10.0 ** (level_db / 20.0)


def join(
    parts: list[np.ndarray],
    gaps: list[int],
    noise_db: float,
    rng: np.random.Generator,
    noise_shape: np.ndarray | None = None,
) -> tuple[np.ndarray, list[int]]:
    """Lay parts end to end with low-level noise (see `noise`) in the gaps.

    gaps[0] samples lead, gaps[i] separate parts[i-1] and parts[i], gaps[-1]
    trail (len(gaps) == len(parts) + 1). Returns the waveform, (N,) with
    N = sum(gaps) + sum(len(part)), and the start sample of each part.
    """
    if len(gaps) != len(parts) + 1:
        raise ValueError(f"{len(parts)} parts need {len(parts) + 1} gaps, got {len(gaps)}")
    pieces, starts, pos = [], [], 0
    for gap, part in zip(gaps, [*parts, None]):
        pieces.append(noise(gap, noise_db, rng, noise_shape))
        pos += gap
        if part is not None:
            starts.append(pos)
            pieces.append(part)
            pos += len(part)
    return np.concatenate(pieces), starts
