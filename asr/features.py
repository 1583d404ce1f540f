"""Waveform -> log-mel filterbank features; CMVN statistics; training augmentation.

Features are Kaldi-compatible fbank (25 ms Povey window, 10 ms shift, no dither),
returned un-normalised: global CMVN is applied inside the model (GlobalCMVN),
using the statistics `compute_cmvn` gathers here.

Augmentation is for training only and always draws from an explicit
torch.Generator, so an item is reproducible from its seed.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF
from torch import Tensor

from asr.config import AugmentConfig, FeatureConfig
from asr.segment import block_energy_db

# kaldi.fbank works on the int16 scale; our waveforms are in [-1, 1].
INT16_SCALE = 32768.0
# VTLN warp: frequencies below VTLN_LOW_HZ and above VTLN_HIGH_RATIO * the top filter edge
# are mapped with the gentler end segments of the piecewise-linear warp.
VTLN_LOW_HZ = 100.0
VTLN_HIGH_RATIO = 0.9


def _window_and_shift(cfg: FeatureConfig) -> tuple[int, int]:
    window = int(cfg.sample_rate * cfg.frame_length_ms / 1000)
    shift = int(cfg.sample_rate * cfg.frame_shift_ms / 1000)
    return window, shift


def num_frames(num_samples: int, cfg: FeatureConfig) -> int:
    """Frames `fbank` yields for `num_samples` samples: 1 + (N - window) // shift (0 if N < window)."""
    window, shift = _window_and_shift(cfg)
    return 0 if num_samples < window else 1 + (num_samples - window) // shift


def fbank(wave: Tensor, cfg: FeatureConfig, warp: float = 1.0) -> Tensor:
    """wave: (N,) float in [-1, 1] at cfg.sample_rate -> log-mel feats: (T, n_mels).

    warp: VTLN frequency warp factor of the mel filters (Kaldi's piecewise-linear warp,
    fixed below VTLN_LOW_HZ and near the top edge); 1 = none. Training draws it at random
    (VTLP, Jaitly & Hinton 2013) to imitate other vocal tract lengths.
    """
    if num_frames(wave.numel(), cfg) == 0:
        return wave.new_zeros(0, cfg.num_mel_bins)
    top = cfg.high_freq if cfg.high_freq > 0 else cfg.sample_rate / 2 + cfg.high_freq
    return kaldi.fbank(
        wave.float().unsqueeze(0) * INT16_SCALE,
        num_mel_bins=cfg.num_mel_bins,
        frame_length=cfg.frame_length_ms,
        frame_shift=cfg.frame_shift_ms,
        sample_frequency=cfg.sample_rate,
        low_freq=cfg.low_freq,
        high_freq=cfg.high_freq,
        dither=0.0,
        vtln_warp=warp,
        vtln_low=VTLN_LOW_HZ,
        vtln_high=VTLN_HIGH_RATIO * top,
    )


def compute_cmvn(feature_iter: Iterable[Tensor], min_std: float = 1e-2) -> tuple[Tensor, Tensor]:
    """Global mean and std per bin over every frame of every (T, F) tensor.

    Streams: only running sums are kept (float64). std = sqrt(E[x^2] - E[x]^2),
    floored at `min_std` so a near-constant bin is not blown up by normalisation.
    Returns (mean (F,), std (F,)) as float32.
    """
    count, total, total_sq = 0, None, None
    for feats in feature_iter:
        x = feats.double()
        if total is None:
            total, total_sq = x.new_zeros(x.shape[1]), x.new_zeros(x.shape[1])
        total += x.sum(0)
        total_sq += (x * x).sum(0)
        count += x.shape[0]
    if count == 0:
        raise ValueError("compute_cmvn: no feature frames given")
    mean = total / count
    var = (total_sq / count - mean * mean).clamp(min=0.0)
    return mean.float(), var.sqrt().clamp(min=min_std).float()


def speed_perturb(wave: Tensor, factor: float, sample_rate: int) -> Tensor:
    """Play `wave` (N,) `factor` times faster (pitch shifts too): -> (~N / factor,).

    The signal is read as if sampled at sample_rate * factor and resampled to
    sample_rate (what Kaldi/sox `speed` do). torchaudio reduces the rate pair by
    their gcd, so the usual factors (0.9, 1.1 at 16 kHz -> 9:10, 11:10) are cheap.
    """
    if factor == 1.0:
        return wave
    return AF.resample(wave, round(sample_rate * factor), sample_rate)


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def random_gain(wave: Tensor, gain_db: tuple[float, float], generator: torch.Generator) -> Tensor:
    """Scale wave by a gain drawn uniformly in gain_db (dB)."""
    return wave * 10.0 ** (_uniform(*gain_db, generator) / 20.0)


def add_noise(wave: Tensor, snr_db: tuple[float, float], generator: torch.Generator) -> Tensor:
    """Add white Gaussian noise at an SNR drawn uniformly in snr_db (dB).

    noise power = signal power / 10^(snr / 10).
    """
    snr = _uniform(*snr_db, generator)
    noise_power = wave.pow(2).mean() / 10.0 ** (snr / 10.0)
    noise = torch.randn(wave.shape, generator=generator, dtype=wave.dtype)
    return wave + noise * noise_power.sqrt()


def peak_level(wave: Tensor, sample_rate: int) -> float:
    """RMS of the loudest 10 ms block of wave (N,)."""
    return 10.0 ** (block_energy_db(wave.numpy(), max(1, sample_rate // 100)).max() / 20.0)


def pad_with_background(
    wave: Tensor, max_seconds: float, floor_db: tuple[float, float], sample_rate: int, generator: torch.Generator
) -> tuple[Tensor, int]:
    """Add 0..max_seconds of background noise before and after the speech.

    The noise is Gaussian, `floor_db` (drawn uniformly) below the loudest 10 ms of the
    recording: the leading silence, trailing silence and noise floor that a user's
    recording has and tightly cut training utterances lack.
    wave (N,) -> (lead + N + trail,), lead (samples).
    """
    lead, trail = (round(_uniform(0.0, max_seconds, generator) * sample_rate) for _ in range(2))
    level = peak_level(wave, sample_rate) * 10.0 ** (-_uniform(*floor_db, generator) / 20.0)
    noise = torch.randn(lead + trail, generator=generator, dtype=wave.dtype) * level
    return torch.cat([noise[:lead], wave, noise[lead:]]), lead


def augment_wave(
    wave: Tensor, cfg: AugmentConfig, sample_rate: int, generator: torch.Generator
) -> tuple[Tensor, tuple[int, int]]:
    """Training wave augmentation: random speed factor, background padding (with cfg.pad_prob),
    gain, then noise (with cfg.noise_prob).

    wave (N,) -> (augmented (N',), (start, end)): the samples [start, end) of the result hold
    the original recording (all of it, speed-changed), the rest is added padding.
    """
    pick = torch.randint(len(cfg.speed_factors), (), generator=generator).item()
    wave = speed_perturb(wave, cfg.speed_factors[pick], sample_rate)
    start, length = 0, wave.numel()
    if torch.rand((), generator=generator).item() < cfg.pad_prob:
        wave, start = pad_with_background(wave, cfg.pad_seconds, cfg.pad_floor_db, sample_rate, generator)
    wave = random_gain(wave, cfg.gain_db, generator)
    if torch.rand((), generator=generator).item() < cfg.noise_prob:
        wave = add_noise(wave, cfg.noise_snr_db, generator)
    return wave, (start, start + length)


def vtlp_factor(cfg: AugmentConfig, generator: torch.Generator) -> float:
    """A VTLP warp factor drawn uniformly in cfg.vtlp_warp (always 1 for the range (1, 1))."""
    low, high = cfg.vtlp_warp
    return 1.0 if low == high == 1.0 else _uniform(low, high, generator)


def _mask_along(feats: Tensor, dim: int, max_width: int, fill: float, generator: torch.Generator) -> None:
    """Set one random band of width in [0, max_width] along `dim` of feats (T, F) to `fill`."""
    size = feats.shape[dim]
    width = torch.randint(min(max_width, size) + 1, (), generator=generator).item()
    start = torch.randint(size - width + 1, (), generator=generator).item()
    feats.narrow(dim, start, width).fill_(fill)


def spec_augment(feats: Tensor, cfg: AugmentConfig, generator: torch.Generator) -> Tensor:
    """SpecAugment (no time warp): feats (T, F) -> masked copy (T, F).

    cfg.freq_masks bands of up to cfg.freq_mask_width bins and cfg.time_masks bands
    of up to cfg.time_mask_ratio * T frames. Masks are filled with the utterance mean,
    not 0: the features are un-normalised log-mels, and the mean is what global
    CMVN maps close to 0, the value SpecAugment intends. Positions are drawn from
    `generator` (torchaudio's FrequencyMasking/TimeMasking draw from the global RNG
    and cannot be seeded per item).
    """
    out = feats.clone()
    if out.numel() == 0:
        return out
    fill = out.mean().item()
    for _ in range(cfg.freq_masks):
        _mask_along(out, 1, cfg.freq_mask_width, fill, generator)
    max_time_width = math.floor(cfg.time_mask_ratio * out.shape[0])
    for _ in range(cfg.time_masks):
        _mask_along(out, 0, max_time_width, fill, generator)
    return out
