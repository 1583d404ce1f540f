"""Audio file or bytes -> mono float32 waveform at 16 kHz, with typed errors.

Decoding is done by libsndfile (via soundfile): WAV, FLAC, OGG/Vorbis, Opus and,
with libsndfile >= 1.1, MP3. Integer PCM comes out scaled to [-1, 1]. Any sample
rate and channel count is accepted: channels are averaged, then the signal is
resampled with soxr (through librosa), whose memory stays bounded for any rate ratio.

Every failure a user can cause raises a subclass of `AudioError` (a ValueError)
whose message says what is wrong and what to do about it.
"""

from __future__ import annotations

import io
import os
import struct
import wave
from pathlib import Path
from typing import BinaryIO, Optional, Union

import librosa
import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000

# Anything quieter than one 16-bit quantisation step is treated as digital silence.
SILENCE_PEAK = 1.0 / 32768

AudioSource = Union[str, Path, bytes, BinaryIO]


class AudioError(ValueError):
    """Audio that cannot be used for recognition."""


class AudioDecodeError(AudioError):
    """Not audio, corrupt, or a codec libsndfile cannot read."""


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The audio path does not exist."""


class EmptyAudioError(AudioError):
    """A file of 0 bytes, or a valid header with no samples."""


class SilentAudioError(AudioError):
    """Decoded samples are all (digital) zero."""


class InvalidSamplesError(AudioError):
    """Samples contain NaN or infinity (float formats only)."""


class AudioTooShortError(AudioError):
    """Shorter than the minimum duration."""


class AudioTooLongError(AudioError):
    """Longer than the maximum duration."""


def _describe(src: AudioSource) -> str:
    if isinstance(src, (str, Path)):
        return str(src)
    if isinstance(src, (bytes, bytearray)):
        return f"<{len(src)} bytes>"
    return f"<{getattr(src, 'name', 'file object')}>"


def _as_sndfile_input(src: AudioSource, name: str) -> Union[str, BinaryIO]:
    """Path, bytes or file object -> something soundfile can open; raise on 0 bytes."""
    if isinstance(src, (str, Path)):
        path = str(src)
        if not os.path.isfile(path):
            raise AudioFileNotFoundError(f"audio file not found: {path}")
        if os.path.getsize(path) == 0:
            raise EmptyAudioError(f"{name}: file is empty (0 bytes)")
        return path
    if isinstance(src, (bytes, bytearray)):
        src = io.BytesIO(src)
    elif not src.seekable():  # libsndfile needs to seek in most formats
        src = io.BytesIO(src.read())
    start = src.tell()
    size = src.seek(0, io.SEEK_END) - start
    src.seek(start)
    if size == 0:
        raise EmptyAudioError(f"{name}: no audio data (0 bytes)")
    return src


def _declared_wav_frames(source: Union[str, BinaryIO]) -> Optional[int]:
    """Frames the header of a PCM WAV declares, or None for other formats.

    libsndfile reports only the frames actually present, so a header claiming hours
    over a second of data (or a file cut off in transit) looks fine to it.
    """
    start = None if isinstance(source, str) else source.tell()
    try:
        with wave.open(source, "rb") as w:
            return w.getnframes()
    except (wave.Error, EOFError, OSError, struct.error):
        return None
    finally:
        if start is not None:
            source.seek(start)


def _open(src: AudioSource, name: str) -> tuple[sf.SoundFile, Optional[int]]:
    """(open sound file, frames its WAV header declares or None)."""
    source = _as_sndfile_input(src, name)
    declared = _declared_wav_frames(source)
    try:
        # libsndfile also refuses headers with 0 channels or a 0 Hz sample rate.
        return sf.SoundFile(source), declared
    except sf.SoundFileError as e:
        reason = getattr(e, "error_string", str(e))  # libsndfile's own words, without the object repr
        raise AudioDecodeError(f"{name}: cannot decode audio ({reason}); send WAV, FLAC, OGG or MP3") from None


def audio_duration(src: AudioSource) -> float:
    """Duration in seconds from the header only (the samples are not read)."""
    f, declared = _open(src, _describe(src))
    with f:
        return max(f.frames, declared or 0) / f.samplerate


def _check_duration(seconds: float, name: str, min_seconds: float, max_seconds: Optional[float]) -> None:
    if max_seconds is not None and seconds > max_seconds:
        raise AudioTooLongError(
            f"{name}: audio is {seconds:.1f} s long, the limit is {max_seconds:g} s; "
            "split it into shorter files"
        )
    if seconds < min_seconds:
        raise AudioTooShortError(
            f"{name}: audio is {seconds:.3f} s long, at least {min_seconds:g} s is needed"
        )


def _check_samples(frames: int, rate: int, channels: int, name: str, max_samples: Optional[int]) -> None:
    """Refuse a header whose channels x frames exceed `max_samples` (a decompression bomb:
    a few hundred KB of FLAC can declare minutes of 384 kHz x 8 channels)."""
    if max_samples is not None and frames * channels > max_samples:
        raise AudioTooLongError(
            f"{name}: audio is {frames / rate:.1f} s at {rate} Hz x {channels} channels = "
            f"{frames * channels} samples, the limit is {max_samples}; "
            "send mono audio at 16 kHz (or 48 kHz at most) or a shorter file"
        )


def load_audio(
    src: AudioSource,
    sample_rate: int = SAMPLE_RATE,
    max_seconds: Optional[float] = None,
    min_seconds: float = 0.1,
    *,
    max_samples: Optional[int] = None,
) -> np.ndarray:
    """Decode `src` to a mono float32 waveform (N,) at `sample_rate`.

    With `max_seconds` and `max_samples` (channels x frames at the file's own rate), the
    header is checked before any sample is decoded, so a multi-hour upload or a
    decompression bomb is refused without reading it.
    """
    name = _describe(src)
    f, declared = _open(src, name)
    with f:
        frames = max(f.frames, declared or 0)
        _check_duration(frames / f.samplerate, name, 0.0, max_seconds)
        _check_samples(frames, f.samplerate, f.channels, name, max_samples)
        orig_rate = f.samplerate
        wave = f.read(dtype="float32", always_2d=True)  # (N, C)
    if wave.shape[0] == 0:
        raise EmptyAudioError(f"{name}: the file holds no samples (empty recording or truncated file)")
    if declared is not None and declared > wave.shape[0]:
        raise AudioDecodeError(
            f"{name}: truncated WAV: the header declares {declared / orig_rate:.2f} s of audio "
            f"but the file holds {wave.shape[0] / orig_rate:.2f} s; upload the whole file"
        )
    if not np.isfinite(wave).all():
        raise InvalidSamplesError(f"{name}: samples contain NaN or infinity; re-export the audio")
    wave = wave.mean(axis=1)  # (N,)
    _check_duration(len(wave) / orig_rate, name, min_seconds, max_seconds)
    if np.abs(wave).max() < SILENCE_PEAK:
        raise SilentAudioError(f"{name}: audio is silent (all samples are zero); check the microphone")
    if orig_rate != sample_rate:
        # soxr (through librosa), not torchaudio: torchaudio's polyphase kernel grows with
        # the reduced rate ratio, so an odd rate like 44101 Hz would need gigabytes.
        wave = librosa.resample(wave, orig_sr=orig_rate, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(wave, dtype=np.float32)
