import math

import pytest
import torch

from asr.audio import load_audio
from asr.config import AugmentConfig, FeatureConfig
from asr.features import (
    add_noise,
    augment_wave,
    compute_cmvn,
    fbank,
    num_frames,
    pad_with_background,
    peak_level,
    random_gain,
    spec_augment,
    speed_perturb,
    vtlp_factor,
)

CFG = FeatureConfig()


@pytest.fixture(scope="module")
def wave(fsdd_dir):
    """A real utterance at 16 kHz: (N,)."""
    return torch.from_numpy(load_audio(fsdd_dir / "recordings" / "7_jackson_12.wav"))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_fbank_shape_follows_kaldi_framing(wave):
    feats = fbank(wave, CFG)
    n = wave.numel()
    assert feats.shape == (1 + (n - 400) // 160, 80)
    assert feats.shape[0] == num_frames(n, CFG)
    assert torch.isfinite(feats).all()


def test_fbank_works_on_int16_scale(wave):
    # kaldi.fbank expects int16-range samples: speech log-mels then peak well above 10.
    # Forgetting the 32768 scaling lowers every value by 2*ln(32768) ~= 20.8.
    assert fbank(wave, CFG).max() > 10


def test_fbank_of_too_short_wave_is_empty():
    assert num_frames(399, CFG) == 0 and num_frames(400, CFG) == 1
    assert fbank(torch.zeros(399), CFG).shape == (0, 80)


def test_cmvn_streaming_matches_global_stats(wave):
    feats = fbank(wave, CFG)
    chunks = [feats[:7], feats[7:20], feats[20:]]
    mean, std = compute_cmvn(iter(chunks))
    assert mean.shape == std.shape == (80,)
    torch.testing.assert_close(mean, feats.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(std, feats.std(0, unbiased=False), rtol=1e-4, atol=1e-4)


def test_cmvn_floors_std_of_constant_bins():
    _, std = compute_cmvn([torch.ones(10, 4)], min_std=0.05)
    assert torch.equal(std, torch.full((4,), 0.05))
    with pytest.raises(ValueError):
        compute_cmvn([])


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturb_changes_length_by_factor(wave, factor):
    out = speed_perturb(wave, factor, 16000)
    assert abs(out.numel() - wave.numel() / factor) <= 1


def test_speed_perturb_scales_frequency():
    # Faster playback raises pitch: a 500 Hz tone at speed 1.1 becomes 550 Hz.
    t = torch.arange(16000) / 16000
    out = speed_perturb(torch.sin(2 * math.pi * 500 * t), 1.1, 16000)
    peak_hz = torch.fft.rfft(out).abs().argmax().item() * 16000 / out.numel()
    assert peak_hz == pytest.approx(550, abs=2)
    assert speed_perturb(t, 1.0, 16000) is t


def test_random_gain_within_range_and_reproducible(wave):
    out = random_gain(wave, (-6.0, 6.0), gen(1))
    ratio_db = 20 * math.log10((out.abs().max() / wave.abs().max()).item())
    assert -6.0 <= ratio_db <= 6.0 and abs(ratio_db) > 1e-3
    torch.testing.assert_close(out, random_gain(wave, (-6.0, 6.0), gen(1)))


def test_add_noise_hits_requested_snr(wave):
    out = add_noise(wave, (10.0, 10.0), gen(0))
    noise = out - wave
    snr = 10 * math.log10((wave.pow(2).mean() / noise.pow(2).mean()).item())
    assert snr == pytest.approx(10.0, abs=0.3)


def test_augment_wave_is_reproducible_per_generator(wave):
    cfg = AugmentConfig(speed_factors=(0.9, 1.1), noise_prob=1.0, gain_db=(-3.0, 3.0), pad_prob=0.5)
    (a, span_a), (b, span_b) = augment_wave(wave, cfg, 16000, gen(5)), augment_wave(wave, cfg, 16000, gen(5))
    torch.testing.assert_close(a, b)
    assert span_a == span_b
    assert a.numel() != wave.numel()  # a speed factor other than 1 was applied


def test_pad_with_background_keeps_the_recording_between_faint_noise(wave):
    out, lead = pad_with_background(wave, 1.0, (30.0, 40.0), 16000, gen(2))
    trail = out.numel() - lead - wave.numel()
    assert 0 < lead <= 16000 and 0 < trail <= 16000
    assert torch.equal(out[lead : lead + wave.numel()], wave)
    padding = torch.cat([out[:lead], out[lead + wave.numel() :]])
    below_peak_db = 20 * math.log10(peak_level(wave, 16000) / padding.pow(2).mean().sqrt().item())
    assert 29.5 < below_peak_db < 40.5


def test_augment_wave_span_locates_the_recording(wave):
    cfg = AugmentConfig(speed_factors=(1.0,), pad_prob=1.0, pad_seconds=0.5)
    out, (start, end) = augment_wave(wave, cfg, 16000, gen(0))
    assert end - start == wave.numel() and out.numel() > wave.numel()
    assert torch.equal(out[start:end], wave)  # no gain or noise asked for
    unpadded, span = augment_wave(wave, AugmentConfig(speed_factors=(1.1,)), 16000, gen(0))
    assert span == (0, unpadded.numel())


def test_spec_augment_masks_but_keeps_shape(wave):
    feats = fbank(wave, CFG)
    before = feats.clone()
    cfg = AugmentConfig(freq_masks=2, freq_mask_width=20, time_masks=2, time_mask_ratio=0.2)
    out = spec_augment(feats, cfg, gen(3))
    assert out.shape == feats.shape
    assert torch.equal(feats, before)  # the input is not modified
    changed = out != feats
    assert changed.any()
    assert torch.all(out[changed] == feats.mean())  # masks hold the utterance mean
    torch.testing.assert_close(out, spec_augment(feats, cfg, gen(3)))
    assert not torch.equal(out, spec_augment(feats, cfg, gen(4)))


def test_spec_augment_without_masks_is_identity(wave):
    feats = fbank(wave, CFG)
    cfg = AugmentConfig(freq_masks=0, time_masks=0)
    assert torch.equal(spec_augment(feats, cfg, gen(0)), feats)


def test_vtlp_warp_moves_a_tone_across_the_mel_filters():
    t = torch.arange(16000) / 16000
    tone = 0.3 * torch.sin(2 * math.pi * 1000 * t)  # 1 kHz, inside the warped range
    cfg = FeatureConfig(high_freq=3800.0)
    peak = {w: fbank(tone, cfg, warp=w).mean(0).argmax().item() for w in (0.85, 1.0, 1.15)}
    assert peak[0.85] != peak[1.0] != peak[1.15] and len(set(peak.values())) == 3
    assert torch.equal(fbank(tone, cfg, warp=1.0), fbank(tone, cfg))
    draws = {vtlp_factor(AugmentConfig(vtlp_warp=(0.9, 1.1)), gen(s)) for s in range(5)}
    assert len(draws) == 5 and all(0.9 <= d <= 1.1 for d in draws)
    assert vtlp_factor(AugmentConfig(), gen(0)) == 1.0
