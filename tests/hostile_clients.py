"""Uploads and clients that try to hurt the service: decompression bombs, huge float samples,
slow (trickling) and stalled uploads, oversized headers. Used by the service tests and
benchmarks/soak.py; every client here is bounded in time and talks to loopback only.
"""

from __future__ import annotations

import io
import socket
import time
from typing import Optional
from urllib.parse import urlsplit

import numpy as np
import soundfile as sf

BOUNDARY = b"hostile"
PART_HEAD = (
    b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="slow.wav"\r\n'
    b"Content-Type: audio/wav\r\n\r\n"
)


def bomb_flac(seconds: int = 120, rate: int = 384_000, channels: int = 8) -> bytes:
    """A FLAC of `seconds` at `rate` x `channels` (16-bit) that compresses to about 10 KB per second:
    a 1 Hz square wave 2 LSB high, so FLAC stores nearly every block as a constant. 120 s at
    384 kHz x 8 channels: 1.2 MB holding 369 M samples, 1.4 GB as float32. About 5 s to write."""
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, channels, format="FLAC", subtype="PCM_16") as f:
        half = np.full((rate // 2, channels), 2 / 32768, np.float32)
        for _ in range(seconds):
            f.write(half)
            f.write(-half)
    return buf.getvalue()


def huge_float_wav(seconds: float = 1.0, level: float = 1e17, rate: int = 16000, seed: int = 0) -> bytes:
    """Float WAV of noise whose samples are finite but about `level`: NaN inside the model if fed as is."""
    wave = level * np.random.default_rng(seed).standard_normal(int(seconds * rate))
    buf = io.BytesIO()
    sf.write(buf, wave.astype(np.float32), rate, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", "hostile clients talk to loopback only"
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def open_upload(url: str, path: str = "/transcribe", declared: int = 100_000) -> socket.socket:
    """A connection that has sent the head of a multipart upload declaring `declared` bytes, and no body."""
    sock = connect(url)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {declared}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=" + BOUNDARY + b"\r\n\r\n"
    )
    return sock


def trickle(sock: socket.socket, seconds: float, interval: float = 1.0) -> Optional[bytes]:
    """Send a valid multipart body one byte per `interval` for up to `seconds`. Returns the start of
    what the server answered (b"" if it closed the connection), or None if it was still listening."""
    body = PART_HEAD + b"x" * int(seconds / interval + 1)
    deadline = time.monotonic() + seconds
    for byte in body:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return b""  # the server closed the connection (and reset it)
        answer = answer_within(sock, min(interval, deadline - time.monotonic()))
        if answer is not None or time.monotonic() >= deadline:
            return answer
    return None


def answer_within(sock: socket.socket, seconds: float) -> Optional[bytes]:
    """Wait up to `seconds` for the server to say something: the start of its answer, b"" if it
    closed the connection, None if it did neither."""
    sock.settimeout(max(seconds, 0.001))
    try:
        return sock.recv(4096)
    except socket.timeout:
        return None
    except ConnectionResetError:
        return b""


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Read whatever the server still sends; True once it closes the connection within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = answer_within(sock, deadline - time.monotonic())
        if data == b"":
            return True
        if data is None:
            return False
    return False


def status_of(answer: Optional[bytes]) -> Optional[int]:
    """b"HTTP/1.1 408 Request Timeout..." -> 408; None when there is no status line."""
    if not answer or not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer.split()[1])
