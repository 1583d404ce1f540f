"""Fuzz the upload path: mutated real WAVs and random bytes never get a 5xx, and never take the server down."""

import struct

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsdd_audio import connected_digits, wav_bytes

# (offset, struct format) of the canonical 44-byte WAV header's fields
HEADER_FIELDS = [(4, "<I"), (20, "<H"), (22, "<H"), (24, "<I"), (28, "<I"), (32, "<H"), (34, "<H"), (40, "<I")]


@pytest.fixture(scope="module")
def seed_wav(fsdd_dir) -> bytes:
    return wav_bytes(connected_digits(fsdd_dir, "19", "theo")[0])


@pytest.fixture(scope="module")
def client(live_server):
    with httpx.Client(base_url=live_server.url, timeout=60) as c:
        yield c


class Seed:
    """Real WAV bytes, with a short repr for hypothesis's reports."""

    def __init__(self, data: bytes):
        self.data = data

    def __repr__(self) -> str:
        return f"<{len(self.data)}-byte WAV>"


@st.composite
def mutated(draw, seed: Seed) -> bytes:
    data = bytearray(seed.data)
    for offset, fmt in draw(st.lists(st.sampled_from(HEADER_FIELDS), max_size=3)):
        bits = 8 * struct.calcsize(fmt)
        top = 2**bits - 1
        value = draw(st.integers(0, top) | st.integers(0, min(top, 200_000)))  # small: plausible rates and sizes
        data[offset : offset + bits // 8] = struct.pack(fmt, value)
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=64)) if draw(st.booleans()) else bytes(data)


def uploads(wav: bytes):
    return st.one_of(mutated(Seed(wav)), st.binary(max_size=4096))


def test_no_upload_gets_a_5xx(client, seed_wav):
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        data=uploads(seed_wav),
        path=st.sampled_from(["/transcribe", "/v1/audio/transcriptions"]),
        name=st.sampled_from(["a.wav", "a.mp3", "a.flac", "", "x" * 300]),
    )
    def check(data, path, name):
        response = client.post(path, files={"file": (name, data)}, data={"model": "m"})
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"message", "type"}

    check()
    assert client.get("/ready").status_code == 200
    assert client.post("/transcribe", files={"file": ("a.wav", seed_wav)}).status_code == 200
