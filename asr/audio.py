"""Audio file or bytes -> mono float32 waveform at 16 kHz, with typed errors.

Decoding is done by libsndfile (via soundfile): WAV, FLAC, OGG/Vorbis, Opus and,
with libsndfile >= 1.1, MP3. Integer PCM comes out scaled to [-1, 1]. Any sample
rate and channel count is accepted: channels are averaged, then the signal is
resampled with torchaudio.

Every failure a user can cause raises a subclass of `AudioError` (a ValueError)
whose message says what is wrong and what to do about it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

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


def _open(src: AudioSource, name: str) -> sf.SoundFile:
    try:
        # libsndfile also refuses headers with 0 channels or a 0 Hz sample rate.
        return sf.SoundFile(_as_sndfile_input(src, name))
    except sf.SoundFileError as e:
        reason = getattr(e, "error_string", str(e))  # libsndfile's own words, without the object repr
        raise AudioDecodeError(f"{name}: cannot decode audio ({reason}); send WAV, FLAC, OGG or MP3") from None


def audio_duration(src: AudioSource) -> float:
    """Duration in seconds from the header only (the samples are not read)."""
    with _open(src, _describe(src)) as f:
        return f.frames / f.samplerate


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


def load_audio(
    src: AudioSource,
    sample_rate: int = SAMPLE_RATE,
    max_seconds: Optional[float] = None,
    min_seconds: float = 0.1,
) -> np.ndarray:
    """Decode `src` to a mono float32 waveform (N,) at `sample_rate`.

    With `max_seconds`, the duration in the header is checked before any sample is
    decoded, so a multi-hour upload is refused without reading it.
    """
    name = _describe(src)
    with _open(src, name) as f:
        _check_duration(f.frames / f.samplerate, name, 0.0, max_seconds)
        orig_rate = f.samplerate
        wave = f.read(dtype="float32", always_2d=True)  # (N, C)
    if wave.shape[0] == 0:
        raise EmptyAudioError(f"{name}: the file holds no samples (empty recording or truncated file)")
    if not np.isfinite(wave).all():
        raise InvalidSamplesError(f"{name}: samples contain NaN or infinity; re-export the audio")
    wave = wave.mean(axis=1)  # (N,)
    _check_duration(len(wave) / orig_rate, name, min_seconds, max_seconds)
    if np.abs(wave).max() < SILENCE_PEAK:
        raise SilentAudioError(f"{name}: audio is silent (all samples are zero); check the microphone")
    if orig_rate != sample_rate:
        wave = AF.resample(torch.from_numpy(wave), orig_rate, sample_rate).numpy()
    return np.ascontiguousarray(wave, dtype=np.float32)
