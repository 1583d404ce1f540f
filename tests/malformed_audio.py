"""Hostile and malformed audio built from real recordings, for the audio and fuzz tests.

`header_fields` finds the fields of a WAV or FLAC header that say how big the audio is or
how to read it, by walking the file's chunks rather than assuming a 44-byte header, so
they can be changed in extensible, float and RF64 WAVs and in FLAC's bit-packed
STREAMINFO alike.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr


@dataclass(frozen=True)
class Field:
    """An unsigned header field of `bits` bits, `shift` bits up from the low end of the
    big- or little-endian integer of `size` bytes at `offset`."""

    offset: int
    size: int
    bits: int
    shift: int = 0
    byteorder: str = "little"

    def set(self, raw: bytes, value: int) -> bytes:
        """`raw` with this field holding `value` (the stored value, as the file spells it)."""
        data = bytearray(raw)
        word = int.from_bytes(data[self.offset : self.offset + self.size], self.byteorder)
        mask = (2**self.bits - 1) << self.shift
        word = (word & ~mask) | ((value << self.shift) & mask)
        data[self.offset : self.offset + self.size] = word.to_bytes(self.size, self.byteorder)
        return bytes(data)


def _le(offset: int, size: int) -> Field:
    return Field(offset, size, 8 * size)


def _wav_fields(raw: bytes) -> dict[str, Field]:
    fields = {"riff_size": _le(4, 4)}
    pos = 12
    while pos + 8 <= len(raw):
        chunk_id, size = raw[pos : pos + 4], struct.unpack_from("<I", raw, pos + 4)[0]
        body = pos + 8
        if chunk_id == b"fmt ":
            fields.update(
                format_tag=_le(body, 2), channels=_le(body + 2, 2), sample_rate=_le(body + 4, 4),
                byte_rate=_le(body + 8, 4), block_align=_le(body + 12, 2), bits_per_sample=_le(body + 14, 2),
            )
            if size >= 24:  # WAVE_FORMAT_EXTENSIBLE
                fields["valid_bits_per_sample"] = _le(body + 18, 2)
        elif chunk_id == b"ds64":  # RF64: the real sizes, 64-bit
            fields.update(riff_size=_le(body, 8), data_size=_le(body + 8, 8))
        elif chunk_id == b"data":
            fields.setdefault("data_size", _le(pos + 4, 4))
            break
        pos = body + size + (size & 1)
    return fields


# STREAMINFO (the first metadata block, after "fLaC" and a 4-byte block header) packs
# these four into the big-endian 64 bits at byte 18; channels and bits are stored minus one.
_STREAMINFO = {"sample_rate": (20, 44), "channels": (3, 41), "bits_per_sample": (5, 36), "total_samples": (36, 0)}


def header_fields(raw: bytes) -> dict[str, Field]:
    """name -> Field for the size-declaring fields of a WAV (RIFF/RF64) or FLAC file; {} otherwise."""
    if raw[:4] == b"fLaC":
        return {name: Field(18, 8, bits, shift, "big") for name, (bits, shift) in _STREAMINFO.items()}
    if raw[:4] in (b"RIFF", b"RF64") and raw[8:12] == b"WAVE":
        return _wav_fields(raw)
    return {}


def encode(wave: np.ndarray, sample_rate: int, format: str, subtype: str | None = None) -> bytes:
    """`wave` (N,) or (N, C) as the bytes of a `format` file (soundfile's names: WAV, WAVEX, RF64, FLAC, OGG, MP3)."""
    buf = io.BytesIO()
    sf.write(buf, wave, sample_rate, format=format, subtype=subtype)
    return buf.getvalue()


def speech_then_silence_flac(
    target: Union[str, BinaryIO], speech: np.ndarray, speech_rate: int, seconds: float, rate: int, channels: int
) -> None:
    """A FLAC of `seconds` at `rate` x `channels`: `speech` on every channel, then digital silence.

    FLAC stores a silent frame in a few bytes, so minutes at 384 kHz x 8 channels take a
    few hundred KB (a decompression bomb). Written block by block: little memory.
    """
    start = soxr.resample(speech.astype(np.float64), speech_rate, rate)  # (n,)
    block = 1 << 16
    with sf.SoundFile(target, "w", rate, channels, format="FLAC", subtype="PCM_16") as f:
        f.write(np.repeat(start[:, None], channels, axis=1))
        silence = np.zeros((block, channels))
        left = int(seconds * rate) - len(start)
        while left > 0:
            f.write(silence[: min(block, left)])
            left -= block
