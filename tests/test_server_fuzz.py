"""Fuzz the upload path: mutated real recordings in every container, and random bytes, never
get a 5xx and never take the server down.

Mutations set the header fields that declare sizes or say how to read the samples (WAV
RIFF/data sizes, channels, rate, block align, bits per sample; FLAC STREAMINFO rate,
channels, bits and total samples), flip bytes, and cut the file short.
"""

import httpx
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsdd_audio import SAMPLE_RATE, connected_digits
from malformed_audio import Field, encode, header_fields

# container -> (soundfile format, subtype); OGG is Vorbis
CONTAINERS = {
    "wav": ("WAV", "PCM_16"),
    "wav_float": ("WAV", "FLOAT"),
    "wavex": ("WAVEX", "PCM_24"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}


@pytest.fixture(scope="module")
def speech(fsdd_dir):
    return connected_digits(fsdd_dir, "19", "theo")[0]


@pytest.fixture(scope="module")
def client(live_server):
    with httpx.Client(base_url=live_server.url, timeout=60) as c:
        yield c


class Seed:
    """A real recording's bytes and its header fields, with a short repr for hypothesis's reports."""

    def __init__(self, container: str, data: bytes):
        self.container, self.data = container, data
        self.fields: dict[str, Field] = header_fields(data)

    def __repr__(self) -> str:
        return f"<{len(self.data)}-byte {self.container}>"


@st.composite
def mutated(draw, seed: Seed) -> bytes:
    data = seed.data
    names = draw(st.lists(st.sampled_from(sorted(seed.fields)), max_size=3)) if seed.fields else []
    for name in names:
        field = seed.fields[name]
        top = 2**field.bits - 1
        value = draw(st.integers(0, top) | st.integers(0, min(top, 200_000)))  # small: plausible rates and sizes
        data = field.set(data, value)
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=64)) if draw(st.booleans()) else bytes(data)


@pytest.mark.parametrize("container", CONTAINERS)
def test_no_upload_gets_a_5xx(container, client, speech):
    fmt, subtype = CONTAINERS[container]
    if fmt not in sf.available_formats():
        pytest.fail(f"this libsndfile ({sf.__libsndfile_version__}) cannot write {fmt}: reinstall soundfile "
                    "(its wheels bundle libsndfile with FLAC, OGG and MP3)", pytrace=False)
    seed = Seed(container, encode(speech, SAMPLE_RATE, fmt, subtype))
    assert seed.fields or fmt in ("OGG", "MP3"), "the header fields of this container were not found"

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        data=st.one_of(mutated(seed), st.binary(max_size=4096)),
        path=st.sampled_from(["/transcribe", "/v1/audio/transcriptions"]),
        name=st.sampled_from(["a.wav", "a.mp3", "a.flac", "", "x" * 300]),
    )
    def check(data, path, name):
        response = client.post(path, files={"file": (name, data)}, data={"model": "whisper-1"})
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}

    check()
    assert client.get("/ready").status_code == 200
    assert client.post("/transcribe", files={"file": (f"a.{container}", seed.data)}).status_code == 200
