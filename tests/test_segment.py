import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.segment import Piece, SegmentConfig, batch_pieces, block_energy_db, split_long_audio

SR = 8000  # FSDD is recorded at 8 kHz


def load_takes(fsdd_dir, count, seed=0):
    files = sorted((fsdd_dir / "recordings").glob("*.wav"))
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(files), size=count, replace=False)
    waves = []
    for i in picked:
        wave, sr = sf.read(files[i], dtype="float32")
        assert sr == SR
        waves.append(wave)
    return waves


def quiet(num_samples, rng):
    return (1e-4 * rng.standard_normal(num_samples)).astype(np.float32)  # about -80 dBFS


def assert_tiles(pieces, num_samples, max_samples):
    assert pieces[0].start == 0 and pieces[-1].end == num_samples
    for left, right in zip(pieces, pieces[1:]):
        assert left.end == right.start
    assert all(0 < p.num_samples <= max_samples for p in pieces)


def test_short_audio_is_one_piece(fsdd_dir):
    wave = np.concatenate(load_takes(fsdd_dir, 5))
    assert split_long_audio(wave, SR) == [Piece(0, len(wave))]


def test_cuts_fall_in_pauses_between_real_takes(fsdd_dir):
    rng = np.random.default_rng(1)
    parts, pauses, position = [], [], 0
    for take in load_takes(fsdd_dir, 110):
        gap = quiet(int(rng.uniform(0.3, 0.6) * SR), rng)
        parts += [take, gap]
        pauses.append((position + len(take), position + len(take) + len(gap)))
        position += len(take) + len(gap)
    wave = np.concatenate(parts)
    assert len(wave) > 3 * 20 * SR  # long enough for several cuts

    pieces = split_long_audio(wave, SR)

    assert_tiles(pieces, len(wave), 20 * SR)
    assert len(pieces) >= 4
    for piece in pieces[1:]:
        assert any(lo <= piece.start <= hi for lo, hi in pauses), f"cut at {piece.start / SR:.2f}s is inside speech"


def test_the_one_real_pause_wins_over_take_boundaries(fsdd_dir):
    rng = np.random.default_rng(2)
    takes = load_takes(fsdd_dir, 80, seed=3)
    speech = np.concatenate(takes)  # back to back: only brief dips between takes
    pause_at = 14 * SR
    pause = quiet(SR // 2, rng)
    wave = np.concatenate([speech[:pause_at], pause, speech[pause_at:]])
    assert len(wave) > 25 * SR

    pieces = split_long_audio(wave, SR)

    assert pause_at <= pieces[1].start <= pause_at + len(pause)


def test_no_quiet_point_still_bounds_piece_length():
    t = np.arange(int(47.3 * SR)) / SR
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    cfg = SegmentConfig(max_seconds=20.0, min_seconds=10.0)

    pieces = split_long_audio(tone, SR, cfg)

    assert_tiles(pieces, len(tone), 20 * SR)
    assert all(p.num_samples >= 10 * SR for p in pieces[:-1])


def test_block_energy_reads_a_known_level():
    wave = np.full(1000, 0.1, dtype=np.float32)  # power 0.01 -> -20 dB
    energy = block_energy_db(wave, 80)  # 12.5 blocks, the last padded with zeros
    assert energy.shape == (13,)
    np.testing.assert_allclose(energy[:12], -20.0, atol=1e-4)
    assert energy[12] < -20.0


def test_bad_config_is_refused():
    with pytest.raises(ValueError):
        split_long_audio(np.zeros(SR * 30, dtype=np.float32), SR, SegmentConfig(max_seconds=5, min_seconds=8))


@settings(max_examples=40, deadline=None)
@given(
    seconds=st.floats(0.05, 90.0),
    max_seconds=st.floats(1.0, 25.0),
    min_fraction=st.floats(0.1, 1.0),
    seed=st.integers(0, 2**16),
)
def test_pieces_always_tile_the_signal(seconds, max_seconds, min_fraction, seed):
    sr = 1000  # a low rate keeps the property test fast; the logic is rate independent
    wave = np.random.default_rng(seed).standard_normal(int(seconds * sr)).astype(np.float32)
    cfg = SegmentConfig(max_seconds=max_seconds, min_seconds=max_seconds * min_fraction)
    pieces = split_long_audio(wave, sr, cfg)
    assert_tiles(pieces, len(wave), int(max_seconds * sr))


def test_batches_bound_padded_size_and_keep_every_item():
    lengths = [5, 100, 40, 41, 7, 100, 300, 60, 3]
    batches = batch_pieces(lengths, max_batch_samples=200, max_batch_size=3)

    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert batches[0] == [6]  # longer than the budget: alone
    for batch in batches:
        assert len(batch) <= 3
        if len(batch) > 1:
            assert len(batch) * max(lengths[i] for i in batch) <= 200
        assert [lengths[i] for i in batch] == sorted((lengths[i] for i in batch), reverse=True)


def test_batching_nothing_gives_no_batches():
    assert batch_pieces([], max_batch_samples=10) == []
