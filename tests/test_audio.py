import io
import struct
import time
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from asr.audio import (
    SAMPLE_RATE,
    AudioDecodeError,
    AudioError,
    AudioFileNotFoundError,
    AudioTooLongError,
    AudioTooShortError,
    EmptyAudioError,
    InvalidSamplesError,
    SilentAudioError,
    audio_duration,
    load_audio,
)
from fsdd_audio import connected_digits, wav_bytes
from malformed_audio import encode, header_fields, speech_then_silence_flac


@pytest.fixture
def pcm(wav_path):
    """The raw int16 samples of the FSDD file (8 kHz)."""
    samples, rate = sf.read(wav_path, dtype="int16")
    assert rate == 8000
    return samples


def test_resamples_8k_to_16k_with_double_length(wav_path, pcm):
    wave = load_audio(wav_path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == 2 * len(pcm)


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_audio_at_any_rate_comes_out_at_sample_rate_with_its_duration_and_pitch(tmp_path, rate):
    seconds, hz = 0.5, 440.0
    t = np.arange(int(seconds * rate)) / rate
    path = tmp_path / "tone.wav"
    sf.write(path, 0.5 * np.sin(2 * np.pi * hz * t), rate, subtype="PCM_16")
    wave = load_audio(path)
    assert len(wave) == seconds * SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.fft.rfftfreq(len(wave), 1 / SAMPLE_RATE)[spectrum.argmax()] == pytest.approx(hz, abs=2.5)


def test_int16_is_scaled_to_unit_range(wav_path, pcm):
    wave = load_audio(wav_path, sample_rate=8000)
    np.testing.assert_allclose(wave, pcm / 32768.0, atol=1e-7)
    assert np.abs(wave).max() <= 1.0


def test_stereo_is_averaged_to_mono(tmp_path, wav_path, pcm):
    left = pcm / 32768.0
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, 0.5 * left], axis=1), 8000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, sample_rate=8000), 0.75 * left, atol=1e-6)


def test_bytes_file_object_and_path_agree(wav_path):
    from_path = load_audio(wav_path)
    data = wav_path.read_bytes()
    np.testing.assert_array_equal(load_audio(data), from_path)
    with open(wav_path, "rb") as f:
        np.testing.assert_array_equal(load_audio(f), from_path)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def test_flac_decodes_losslessly(wav_path, pcm):
    buf = io.BytesIO()
    sf.write(buf, pcm, 8000, format="FLAC")
    np.testing.assert_array_equal(load_audio(buf.getvalue()), load_audio(wav_path))


@pytest.mark.parametrize("fmt", ["OGG", "MP3"])
def test_lossy_formats_decode(fmt, wav_path, pcm):
    buf = io.BytesIO()
    sf.write(buf, pcm, 8000, format=fmt)
    wave, reference = load_audio(buf.getvalue()), load_audio(wav_path)
    # Lossy codecs may pad a few ms (MP3 encoder delay); length and loudness must still match.
    assert abs(len(wave) - len(reference)) < 0.06 * SAMPLE_RATE
    assert 0.7 < _rms(wave) / _rms(reference) < 1.3


def test_audio_duration_reads_header(wav_path, pcm):
    assert audio_duration(wav_path) == pytest.approx(len(pcm) / 8000)
    assert audio_duration(wav_path.read_bytes()) == pytest.approx(len(pcm) / 8000)


def _sparse_wav(path, seconds, rate=16000):
    """A valid 16-bit WAV of `seconds` of zeros, stored sparsely (no disk blocks for the data)."""
    n_bytes = int(seconds * rate) * 2
    header = (
        b"RIFF" + struct.pack("<I", 36 + n_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, 2 * rate, 2, 16)
        + b"data" + struct.pack("<I", n_bytes)
    )
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + n_bytes)


def test_two_hour_file_is_refused_from_its_header(tmp_path):
    path = tmp_path / "long.wav"
    _sparse_wav(path, 2 * 3600)
    start = time.perf_counter()
    assert audio_duration(path) == pytest.approx(7200)
    with pytest.raises(AudioTooLongError, match="7200"):
        load_audio(path, max_seconds=60)
    # Decoding and resampling 2 h would take many seconds; the header check is instant.
    assert time.perf_counter() - start < 0.5


def _header_with(raw: bytes, offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(raw)
    data[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(data)


def _bad_inputs(raw: bytes, pcm: np.ndarray) -> dict:
    def float_wav(samples):
        buf = io.BytesIO()
        sf.write(buf, samples.astype(np.float32), 8000, format="WAV", subtype="FLOAT")
        return buf.getvalue()

    nan = (pcm / 32768.0).astype(np.float32)
    nan[100] = np.nan
    inf = (pcm / 32768.0).astype(np.float32)
    inf[5] = np.inf
    return {
        "zero_bytes": (b"", EmptyAudioError),
        "random_bytes": (np.random.default_rng(0).bytes(2000), AudioDecodeError),
        "text_file": (b"hello, this is not audio\n" * 10, AudioDecodeError),
        "truncated_header": (raw[:20], AudioDecodeError),
        "header_only": (raw[:44], EmptyAudioError),
        "zero_channels": (_header_with(raw, 22, "<H", 0), AudioDecodeError),
        "zero_hz": (_header_with(raw, 24, "<I", 0), AudioDecodeError),
        "nan_samples": (float_wav(nan), InvalidSamplesError),
        "inf_samples": (float_wav(inf), InvalidSamplesError),
        "all_zero": (float_wav(np.zeros(8000)), SilentAudioError),
        "too_short": (float_wav(pcm[:400] / 32768.0), AudioTooShortError),
    }


@pytest.mark.parametrize(
    "case",
    ["zero_bytes", "random_bytes", "text_file", "truncated_header", "header_only", "zero_channels",
     "zero_hz", "nan_samples", "inf_samples", "all_zero", "too_short"],
)
def test_bad_input_raises_its_error_class(case, tmp_path, wav_path, pcm):
    data, error = _bad_inputs(wav_path.read_bytes(), pcm)[case]
    path = tmp_path / f"{case}.wav"
    path.write_bytes(data)
    for src in (path, data):
        with pytest.raises(error) as info:
            load_audio(src)
        assert isinstance(info.value, AudioError) and isinstance(info.value, ValueError)
    assert str(path) in str(info.value) or "bytes" in str(info.value)


def test_truncated_data_is_refused(wav_path, pcm):
    raw = wav_path.read_bytes()
    with pytest.raises(AudioDecodeError, match="truncated"):
        load_audio(raw[: 44 + len(pcm)], sample_rate=8000)  # half the 16-bit samples


def test_header_claiming_hours_over_a_second_of_data_is_too_long(wav_path, pcm):
    raw = bytearray(wav_path.read_bytes())
    raw[40:44] = struct.pack("<I", 10 * 3600 * 8000 * 2)  # data chunk: 10 hours at 8 kHz
    assert audio_duration(bytes(raw)) == pytest.approx(36000)
    with pytest.raises(AudioTooLongError, match="36000"):
        load_audio(bytes(raw), max_seconds=900)


def test_odd_sample_rate_resamples_in_bounded_time(pcm):
    buf = io.BytesIO()
    sf.write(buf, np.resize(pcm, 8000) / 32768.0, 44101, format="WAV", subtype="PCM_16")
    start = time.perf_counter()
    wave = load_audio(buf.getvalue())
    assert len(wave) == pytest.approx(8000 * 16000 / 44101, abs=2)
    assert time.perf_counter() - start < 2.0


def test_too_long_is_checked_against_max_seconds(wav_path):
    with pytest.raises(AudioTooLongError, match="split"):
        load_audio(wav_path, max_seconds=0.1)
    assert len(load_audio(wav_path, max_seconds=1.0)) > 0


def test_missing_file_is_an_audio_error_and_file_not_found(tmp_path):
    with pytest.raises(AudioFileNotFoundError) as info:
        load_audio(tmp_path / "nope.wav")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, AudioError)


def test_too_many_samples_are_refused_from_the_header(pcm):
    """A small file declaring many channels at a high rate is refused before decoding."""
    buf = io.BytesIO()
    speech = np.resize(pcm, 384000 // 5)  # 0.2 s at 384 kHz
    sf.write(buf, np.tile(speech[:, None], (1, 8)), 384000, format="FLAC")  # x 8 channels
    declared = len(speech) * 8
    with pytest.raises(AudioTooLongError, match="384000 Hz x 8 channels"):
        load_audio(buf.getvalue(), max_samples=declared - 1)
    assert len(load_audio(buf.getvalue(), max_samples=declared)) > 0


@pytest.fixture(scope="module")
def speech(fsdd_dir) -> np.ndarray:
    """Real connected-digit speech, float32 (N,) at 8 kHz, peak below 1."""
    return connected_digits(fsdd_dir, "19", "theo")[0]


def test_decoding_streams_in_bounded_memory(speech):
    """10 s at 96 kHz x 8 channels is 31 MB as float32; decoding holds one block and the 16 kHz output."""
    buf = io.BytesIO()
    speech_then_silence_flac(buf, speech, 8000, seconds=10, rate=96000, channels=8)
    data = buf.getvalue()
    tracemalloc.start()
    try:
        wave = load_audio(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(wave) == 10 * SAMPLE_RATE
    assert peak < 8e6, f"decoding took {peak / 1e6:.1f} MB"
    reference = load_audio(wav_bytes(speech))
    np.testing.assert_allclose(wave[: len(reference)], reference, atol=2e-3)  # int16 at 96 kHz and back


@pytest.mark.parametrize("cut", ["half", "after_44_bytes", "declares_twice_its_samples"])
def test_truncated_flac_is_refused(cut, speech):
    flac = encode(speech, 8000, "FLAC")
    data = {
        "half": flac[: len(flac) // 2],
        "after_44_bytes": flac[:44],
        "declares_twice_its_samples": header_fields(flac)["total_samples"].set(flac, 2 * len(speech)),
    }[cut]
    with pytest.raises(AudioDecodeError, match="truncated"):
        load_audio(data)


def test_flac_without_a_length_is_refused(speech):
    """STREAMINFO total samples = 0 (an encoder writing to a pipe) made libsndfile report 2**63 frames."""
    flac = encode(speech, 8000, "FLAC")
    data = header_fields(flac)["total_samples"].set(flac, 0)
    for call in (load_audio, audio_duration):
        with pytest.raises(AudioDecodeError, match="does not say how long"):
            call(data)


@pytest.mark.parametrize(
    "fmt, subtype",
    [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("WAV", "DOUBLE"), ("WAVEX", "PCM_16"), ("WAVEX", "PCM_24"),
     ("WAVEX", "FLOAT"), ("RF64", "PCM_16")],
)
def test_every_wav_flavour_refuses_truncation(fmt, subtype, speech):
    data = encode(speech, 8000, fmt, subtype)
    assert len(load_audio(data)) == 2 * len(speech)
    with pytest.raises(AudioDecodeError, match=f"truncated {fmt}"):
        load_audio(data[: len(data) // 2])


@pytest.mark.parametrize(
    "subtype, fmt, field, value",
    [("PCM_U8", "WAV", "bits_per_sample", 7), ("PCM_16", "WAV", "bits_per_sample", 13),
     ("PCM_16", "WAV", "bits_per_sample", 0), ("FLOAT", "WAV", "bits_per_sample", 16),
     ("PCM_16", "WAVEX", "valid_bits_per_sample", 17)],
)
def test_nonsense_bits_per_sample_is_refused(subtype, fmt, field, value, speech):
    data = encode(speech, 8000, fmt, subtype)
    with pytest.raises(AudioDecodeError, match=f"{field.replace('_', ' ')} = {value}"):
        load_audio(header_fields(data)[field].set(data, value))


@pytest.mark.parametrize("right_gain", [-1.0, -0.8])
def test_anti_phase_stereo_decodes_the_loudest_channel(right_gain, speech):
    stereo = encode(np.stack([speech, right_gain * speech], axis=1), 8000, "WAV", "PCM_16")
    np.testing.assert_allclose(load_audio(stereo), load_audio(wav_bytes(speech)), atol=1e-6)


def test_uncorrelated_stereo_is_still_averaged(fsdd_dir, speech):
    other = connected_digits(fsdd_dir, "19", "george")[0][: len(speech)]
    other = np.pad(other, (0, len(speech) - len(other)))
    stereo = np.stack([speech, other], axis=1)
    wave = load_audio(encode(stereo, 8000, "WAV", "FLOAT"), sample_rate=8000)
    np.testing.assert_allclose(wave, stereo.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("scale, channels", [(32768.0, 1), (1e17, 1), (np.finfo(np.float32).max, 8)])
def test_float_audio_beyond_full_scale_is_scaled_down(scale, channels, speech):
    """int16 values stored as float, absurd levels, and 8 channels at float32's maximum (whose sum overflows float32)."""
    loud = np.repeat((speech / np.abs(speech).max() * scale).astype(np.float32)[:, None], channels, axis=1)
    assert np.isfinite(loud).all()
    wave = load_audio(encode(loud, 8000, "WAV", "FLOAT"))
    expected = load_audio(wav_bytes(speech, subtype="FLOAT")) / np.abs(speech).max()
    np.testing.assert_allclose(wave, expected, atol=1e-5)


def test_samples_beyond_float32_range_are_invalid(speech):
    data = encode(speech.astype(np.float64) * 1e300, 8000, "WAV", "DOUBLE")
    with pytest.raises(InvalidSamplesError, match="float32 range"):
        load_audio(data)


def test_wav_streamed_without_sizes_decodes(speech):
    """A writer that cannot seek back (ffmpeg into a pipe) leaves RIFF and data sizes at 0xFFFFFFFF."""
    raw = wav_bytes(speech)
    fields = header_fields(raw)
    streamed = fields["data_size"].set(fields["riff_size"].set(raw, 0xFFFFFFFF), 0xFFFFFFFF)
    np.testing.assert_array_equal(load_audio(streamed), load_audio(raw))


def test_wav_of_a_million_empty_chunks_is_refused_quickly(speech):
    raw = wav_bytes(speech)
    junk = raw[:12] + b"JUNK\0\0\0\0" * 1_000_000 + raw[12:]
    start = time.perf_counter()
    with pytest.raises(AudioDecodeError):
        load_audio(junk)
    assert time.perf_counter() - start < 0.5
