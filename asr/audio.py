"""Audio file or bytes -> mono float32 waveform at 16 kHz, with typed errors.

Decoding is done by libsndfile (via soundfile): WAV, FLAC, OGG/Vorbis, Opus and,
with libsndfile >= 1.1, MP3. Integer PCM comes out scaled to [-1, 1]. Any sample
rate and channel count is accepted.

The input is never decoded whole. A few hundred KB of FLAC can declare minutes of
384 kHz x 8 channels, gigabytes once decoded, so `load_audio` streams:

1. Header: the frames, rate and channels the container declares are checked against
   the duration and sample-count limits before any sample is decoded. WAV headers are
   parsed here (fmt and data chunks, every PCM/float flavour) because libsndfile only
   reports the frames actually present; FLAC's STREAMINFO count comes from libsndfile.
   libsndfile never returns more frames than it reports, so the header check bounds
   the work.
2. Blocks of at most `BLOCK_SAMPLES` samples are read as float64, checked (finite,
   within float32 range), averaged over channels and fed to a soxr streaming
   resampler: memory holds the output at the target rate (float64 until the end) plus
   one block, whatever the input's rate and width.
3. The frames decoded are compared with the frames declared, so an upload cut off in
   transit is refused instead of transcribed in part.

The energy of each channel and of their mean, and the peak, are measured along the way.
When averaging cancelled the channels (one wired in anti-phase), or float samples exceed
full scale, a second pass (rare) decodes the loudest channel alone and/or scaled down.

Every failure a user can cause raises a subclass of `AudioError` (a ValueError)
whose message says what is wrong and what to do about it.
"""

from __future__ import annotations

import io
import os
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Optional, Union

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000

# Anything quieter than one 16-bit quantisation step is treated as digital silence.
SILENCE_PEAK = 1.0 / 32768

# Samples per decoded block (all channels): 2 MB as float64.
BLOCK_SAMPLES = 1 << 18

FLOAT32_MAX = float(np.finfo(np.float32).max)

# A downmix keeping less than this fraction of the energy the mean of uncorrelated
# channels would keep has cancelled (channels in anti-phase), not just averaged.
CANCELLATION = 0.25

# libsndfile's frame count for a stream whose header does not give its length.
SF_UNKNOWN_FRAMES = 2**63 - 1

# WAV format tags (fmt chunk), and the container sizes each may use.
WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT, WAVE_FORMAT_EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
WAV_CONTAINER_BITS = {WAVE_FORMAT_PCM: (8, 16, 24, 32), WAVE_FORMAT_IEEE_FLOAT: (32, 64)}

# Chunks walked to find fmt and data: real files have a handful; a crafted one can hold
# millions of empty ones, which libsndfile gives up on quickly and so do we.
WAV_MAX_CHUNKS = 64

AudioSource = Union[str, Path, bytes, BinaryIO]


class AudioError(ValueError):
    """Audio that cannot be used for recognition."""


class AudioDecodeError(AudioError):
    """Not audio, corrupt, truncated, or a codec libsndfile cannot read."""


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The audio path does not exist."""


class EmptyAudioError(AudioError):
    """A file of 0 bytes, or a valid header with no samples."""


class SilentAudioError(AudioError):
    """Decoded samples are all (digital) zero."""


class InvalidSamplesError(AudioError):
    """Samples contain NaN or infinity, or exceed float32 range (float formats only)."""


class AudioTooShortError(AudioError):
    """Shorter than the minimum duration."""


class AudioTooLongError(AudioError):
    """Longer than the maximum duration, or more samples than the limit."""


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


@contextmanager
def _peek(source: Union[str, BinaryIO]) -> Iterator[BinaryIO]:
    """A binary stream over `source`; a file object is put back where it was."""
    if isinstance(source, str):
        with open(source, "rb") as stream:
            yield stream
        return
    start = source.tell()
    try:
        yield source
    finally:
        source.seek(start)


def _wav_chunks(stream: BinaryIO) -> Optional[tuple[bytes, Optional[int]]]:
    """(fmt chunk body, data chunk size in bytes or None if unknown) of a RIFF or RF64 WAVE stream.

    None when it is not a WAV, or too damaged to find both chunks among the first
    WAV_MAX_CHUNKS (libsndfile then decodes or refuses it). RF64 keeps the real data size
    in its ds64 chunk; a RIFF data size of 0xFFFFFFFF comes from a writer that could not
    seek back (a pipe), so the length is unknown.
    """
    riff = stream.read(12)
    if len(riff) < 12 or riff[:4] not in (b"RIFF", b"RF64") or riff[8:] != b"WAVE":
        return None
    fmt, ds64_data_size = None, None
    for _ in range(WAV_MAX_CHUNKS):
        head = stream.read(8)
        if len(head) < 8:
            return None
        chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
        if chunk_id == b"data":
            if size == 0xFFFFFFFF:
                size = ds64_data_size
            return (fmt, size) if fmt is not None else None
        body = stream.tell()
        if chunk_id == b"fmt ":
            fmt = stream.read(min(size, 40))
        elif chunk_id == b"ds64" and size >= 16:
            ds64_data_size = struct.unpack("<Q", stream.read(16)[8:])[0]
        stream.seek(body + size + (size & 1))  # chunks are padded to an even size
    return None


def _wav_frame_bytes(fmt: bytes, name: str) -> Optional[int]:
    """Bytes per frame of a PCM or IEEE-float WAV (plain or extensible), after checking
    the fmt fields that say how to read the samples.

    libsndfile decodes a header declaring 7- or 13-bit samples as if it said 8 or 16, so
    such nonsense is refused here, naming the field. None for compressed WAVs (ADPCM,
    GSM, ...) whose frames are not a fixed number of bytes.
    """
    if len(fmt) < 16:
        return None
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    if channels == 0 or rate == 0:
        field = "channels" if channels == 0 else "sample rate"
        raise AudioDecodeError(f"{name}: the WAV header declares {field} = 0; re-export the audio")
    valid_bits = bits
    if tag == WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
        valid_bits, tag = struct.unpack("<H", fmt[18:20])[0], struct.unpack("<H", fmt[24:26])[0]
    if tag not in WAV_CONTAINER_BITS:
        return None
    allowed = WAV_CONTAINER_BITS[tag]
    if bits not in allowed or valid_bits > bits:
        kind = "PCM" if tag == WAVE_FORMAT_PCM else "float"
        field = f"bits per sample = {bits}" if bits not in allowed else f"valid bits per sample = {valid_bits}"
        raise AudioDecodeError(
            f"{name}: the WAV header declares {field}, but {kind} samples are "
            f"{', '.join(map(str, allowed))} bits wide; the file is corrupt, re-export it"
        )
    return channels * bits // 8


def _declared_wav_frames(source: Union[str, BinaryIO], name: str) -> Optional[int]:
    """Frames the header of a PCM or float WAV declares (data chunk size / frame size),
    or None for other formats."""
    with _peek(source) as stream:
        chunks = _wav_chunks(stream)
    if chunks is None:
        return None
    fmt, data_size = chunks
    frame_bytes = _wav_frame_bytes(fmt, name)
    return None if frame_bytes is None or data_size is None else data_size // frame_bytes


def _libsndfile_reason(error: sf.SoundFileError) -> str:
    return getattr(error, "error_string", str(error))  # libsndfile's own words, without the object repr


def _open(src: AudioSource, name: str) -> tuple[sf.SoundFile, Optional[int]]:
    """(open sound file, frames its header declares), the frames from the WAV data chunk
    or the FLAC STREAMINFO, or None for formats that declare no exact count."""
    source = _as_sndfile_input(src, name)
    declared = _declared_wav_frames(source, name)
    try:
        # libsndfile also refuses headers with 0 channels or a 0 Hz sample rate.
        f = sf.SoundFile(source)
    except sf.SoundFileError as e:
        raise AudioDecodeError(
            f"{name}: cannot decode audio ({_libsndfile_reason(e)}); send WAV, FLAC, OGG or MP3"
        ) from None
    if f.frames == SF_UNKNOWN_FRAMES:  # e.g. FLAC with STREAMINFO total samples = 0
        f.close()
        raise AudioDecodeError(
            f"{name}: the {f.format} header does not say how long the audio is "
            "(written as a stream); save it as a regular file and upload that"
        )
    if declared is None and f.format == "FLAC":
        declared = f.frames  # STREAMINFO's total samples
    return f, declared


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


def _check_sample_count(frames: int, rate: int, channels: int, name: str, max_samples: Optional[int]) -> None:
    """Refuse a header whose channels x frames exceed `max_samples` (a decompression bomb:
    a few hundred KB of FLAC can declare minutes of 384 kHz x 8 channels)."""
    if max_samples is not None and frames * channels > max_samples:
        raise AudioTooLongError(
            f"{name}: audio is {frames / rate:.1f} s at {rate} Hz x {channels} channels = "
            f"{frames * channels} samples, the limit is {max_samples}; "
            "send mono audio at 16 kHz (or 48 kHz at most) or a shorter file"
        )


def _blocks(f: sf.SoundFile, name: str) -> Iterator[np.ndarray]:
    """The whole of `f` from its start, as (n, C) float64 blocks of at most
    BLOCK_SAMPLES samples (one buffer, reused); libsndfile errors -> AudioDecodeError."""
    buffer = np.empty((max(1, BLOCK_SAMPLES // f.channels), f.channels))
    try:
        f.seek(0)
        while len(block := f.read(out=buffer)):
            yield block
    except sf.SoundFileError as e:  # e.g. a FLAC cut mid-frame: "flac decoder lost sync"
        raise AudioDecodeError(
            f"{name}: the audio is truncated or corrupt ({_libsndfile_reason(e)}); upload the whole file"
        ) from None


def _peak(block: np.ndarray, name: str) -> float:
    """Largest |sample| of `block`; refuse NaN, infinity, and values a float32 waveform cannot hold."""
    peak = np.maximum(block.max(), -block.min())  # NaN propagates
    if not peak <= FLOAT32_MAX:
        raise InvalidSamplesError(
            f"{name}: samples contain NaN, infinity or values beyond float32 range; re-export the audio"
        )
    return float(peak)


@dataclass
class _Levels:
    """Running measures of one decoding pass, to choose the downmix and check the result."""

    channel_energy: np.ndarray  # (C,) sum of squares of each input channel
    mono_energy: float = 0.0  # sum of squares of the mean of the channels
    peak: float = 0.0  # largest |sample| of any channel
    frames: int = 0

    def add(self, block: np.ndarray, mean: np.ndarray, peak: float) -> None:
        """block: (n, C) float64, mean: (n,). Samples are within float32 range, so their
        squares cannot overflow float64."""
        self.channel_energy += np.einsum("nc,nc->c", block, block)
        self.mono_energy += float(np.einsum("n,n->", mean, mean))
        self.peak = max(self.peak, peak)
        self.frames += len(block)

    def cancelling_channel(self) -> Optional[int]:
        """The loudest channel if averaging cancelled the channels (one in anti-phase), else None.

        The mean of C uncorrelated channels keeps 1/C of their mean energy; cancelled
        channels leave much less than that.
        """
        if self.mono_energy * len(self.channel_energy) < CANCELLATION * self.channel_energy.mean():
            return int(self.channel_energy.argmax())
        return None


def _decode(
    f: sf.SoundFile, name: str, sample_rate: int, channel: Optional[int] = None, gain: float = 1.0
) -> tuple[list[np.ndarray], _Levels]:
    """One streaming pass over `f` -> (mono float64 pieces at `sample_rate`, levels of the input).

    The mean of the channels is taken, or with `channel` that channel alone. Float64
    throughout: full-scale float32 samples cannot overflow the sum. `gain` scales the
    signal before the resampler, which computes in float32 inside and would overflow
    on huge samples.
    """
    resampler = soxr.ResampleStream(f.samplerate, sample_rate, 1, dtype="float64", quality="HQ")
    levels = _Levels(channel_energy=np.zeros(f.channels))
    pieces = []
    for block in _blocks(f, name):  # (n, C)
        peak = _peak(block, name)
        mean = np.einsum("nc->n", block) / f.channels  # (n,); einsum: several times faster than .mean(axis=1)
        levels.add(block, mean, peak)
        mono = mean if channel is None else block[:, channel]
        pieces.append(resampler.resample_chunk(mono * gain))
    pieces.append(resampler.resample_chunk(np.zeros(0), last=True))
    return pieces, levels


def _check_decoded(levels: _Levels, f: sf.SoundFile, declared: Optional[int], name: str, min_seconds: float) -> None:
    """Refuse a file that held fewer frames than its header declares, none, or too few."""
    if levels.frames == 0:
        raise EmptyAudioError(f"{name}: the file holds no samples (empty recording or truncated file)")
    if declared is not None and declared > levels.frames:
        raise AudioDecodeError(
            f"{name}: truncated {f.format} file: the header declares {declared / f.samplerate:.2f} s of "
            f"audio but the file holds {levels.frames / f.samplerate:.2f} s; upload the whole file"
        )
    _check_duration(levels.frames / f.samplerate, name, min_seconds, None)


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
    decompression bomb is refused without decoding it.

    Audio whose samples exceed 1.0 (float formats; lossy decoders may overshoot a little)
    is scaled down so that its largest sample is 1.0, rather than refused: it is almost
    always audio written at the wrong scale (int16 values stored as float), perfectly
    recognisable once rescaled, and a level above full scale carries no other meaning. The peak is known only once the file is decoded,
    and the resampler cannot take huge samples unscaled, so such a file (rare) is
    decoded twice.
    """
    name = _describe(src)
    f, declared = _open(src, name)
    with f:
        frames = max(f.frames, declared or 0)
        _check_duration(frames / f.samplerate, name, 0.0, max_seconds)
        _check_sample_count(frames, f.samplerate, f.channels, name, max_samples)
        pieces, levels = _decode(f, name, sample_rate)
        _check_decoded(levels, f, declared, name, min_seconds)
        if levels.peak < SILENCE_PEAK:
            raise SilentAudioError(f"{name}: audio is silent (all samples are zero); check the microphone")
        channel = levels.cancelling_channel()
        if channel is not None or levels.peak > 1.0:  # rare: decode again, one channel and/or scaled down
            del pieces  # the first pass's output, before the second one's
            pieces, _ = _decode(f, name, sample_rate, channel, gain=1.0 / max(levels.peak, 1.0))
    return np.concatenate(pieces, dtype=np.float32)  # (N,), joined straight into float32
