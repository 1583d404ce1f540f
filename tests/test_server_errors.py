"""Bad requests get a 4xx JSON error that says what is wrong, and the server keeps serving."""

import io
import struct
import time

import httpx
import numpy as np
import pytest
import soundfile as sf

from fsdd_audio import connected_digits, wav_bytes

GIB = 2**30
MODEL = {"model": "whisper-1"}  # what OpenAI clients send: the default model, on both routes


def wav_header(channels=1, rate=16000, bits=16, fmt=1, data_bytes=32000) -> bytes:
    block = channels * bits // 8
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, fmt, channels, rate, rate * block, block, bits)
        + b"data" + struct.pack("<I", data_bytes)
    )


def pcm(seconds=1.0, rate=16000) -> bytes:
    return np.random.default_rng(0).integers(-3000, 3000, int(seconds * rate)).astype("<i2").tobytes()


def float_wav(samples) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.asarray(samples, dtype=np.float32), 16000, format="WAV", subtype="FLOAT")
    return buf.getvalue()


@pytest.fixture(scope="module")
def real_wav(fsdd_dir) -> bytes:
    return wav_bytes(connected_digits(fsdd_dir, "52", "nicolas")[0])


def bad_uploads(real_wav: bytes) -> dict:
    """name -> (file bytes, expected status, expected error code)."""
    nan = np.sin(np.arange(16000) / 5.0)
    nan[100] = np.nan
    ten_hours = 10 * 3600
    return {
        "empty file": (b"", 400, "empty_audio"),
        "random bytes named .wav": (np.random.default_rng(1).bytes(5000), 400, "audio_decode"),
        "truncated header": (real_wav[:30], 400, "audio_decode"),
        "header only": (real_wav[:44], 400, "empty_audio"),
        # 36,000 samples at 1 Hz: 10 hours by its header, refused before decoding
        "header claiming 10 hours": (wav_header(rate=1, data_bytes=2 * ten_hours) + pcm(ten_hours, 1), 413, "audio_too_long"),
        # a 16 kHz header declaring 10 hours over 1 s of samples
        "10-hour header over 1 s of data": (wav_header(data_bytes=2 * 16000 * ten_hours) + pcm(), 413, "audio_too_long"),
        "truncated WAV (data cut off)": (real_wav[: len(real_wav) // 2], 400, "audio_decode"),
        "0 channels": (wav_header(channels=0) + pcm(), 400, "audio_decode"),
        "0 Hz": (wav_header(rate=0) + pcm(), 400, "audio_decode"),
        "NaN samples": (float_wav(nan), 400, "invalid_samples"),
        "unsupported codec": (wav_header(fmt=0x1234) + pcm(), 400, "audio_decode"),
        "all zeros": (wav_header() + bytes(32000), 400, "silent_audio"),
        "too short": (wav_header(data_bytes=200) + pcm()[:200], 400, "audio_too_short"),
    }


@pytest.mark.parametrize("path", ["/transcribe", "/v1/audio/transcriptions"])
def test_every_bad_upload_gets_its_4xx_and_the_server_keeps_serving(live_server, real_wav, path):
    for name, (data, status, kind) in bad_uploads(real_wav).items():
        response = httpx.post(live_server.url + path, files={"file": ("a.wav", data)}, data=MODEL, timeout=30)
        assert response.status_code == status, (name, response.text)
        error = response.json()["error"]
        assert error["code"] == kind and len(error["message"]) > 10, (name, error)
        assert error["type"] == "invalid_request_error" and error["param"] == "file", (name, error)
    assert httpx.post(live_server.url + path, files={"file": ("a.wav", real_wav)}, data=MODEL, timeout=30).status_code == 200


@pytest.mark.parametrize("rate", [44101, 22051, 96001])
def test_an_odd_sample_rate_is_resampled_in_bounded_memory(live_server, rate):
    """A rate sharing no factor with 16 kHz must not make the resampler build a huge kernel."""
    samples = np.sin(2 * np.pi * 440 * np.arange(rate) / rate) * 8000
    data = wav_header(rate=rate, data_bytes=2 * rate) + samples.astype("<i2").tobytes()
    response = httpx.post(live_server.url + "/transcribe", files={"file": ("odd.wav", data)}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["duration"] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    "request_kwargs, fragment, param",
    [
        ({}, "file: Field required", "file"),  # empty body
        ({"data": {"beam_size": "3"}}, "file: Field required", "file"),  # a form without the file
        ({"data": {"file": "not a file"}}, "file", "file"),
        ({"content": b"garbage", "headers": {"content-type": "multipart/form-data; boundary=x"}}, "multipart", None),
        ({"files": {"file": ("a.wav", b"x")}, "params": {"beam_size": "0"}}, "beam_size", "beam_size"),
        ({"files": {"file": ("a.wav", b"x")}, "data": {"decoder": "magic"}}, "decoder", "decoder"),
        ({"files": {"file": ("a.wav", b"x")}, "data": {"format": "pdf"}}, "format", "format"),
        ({"files": {"file": ("a.wav", b"x")}, "params": {"timestamps": "maybe"}}, "timestamps", "timestamps"),
    ],
)
def test_malformed_requests_get_400_saying_what_is_wrong(live_server, request_kwargs, fragment, param):
    response = httpx.post(live_server.url + "/transcribe", timeout=30, **request_kwargs)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert fragment.lower() in error["message"].lower()
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert error["code"] == ("missing_required_parameter" if "required" in fragment else "invalid_value" if param else None)


def test_unknown_route_and_method_are_json_errors(live_server):
    missing = httpx.get(live_server.url + "/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    wrong = httpx.get(live_server.url + "/transcribe")
    assert wrong.status_code == 405 and "error" in wrong.json()


class Streamed:
    """A 2 GiB multipart body produced lazily (one reused 1 MiB block): counts what was sent."""

    def __init__(self, total=2 * GIB, block=2**20):
        self.total, self.block, self.sent = total, bytes(block), 0

    def __iter__(self):
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        while self.sent < self.total:
            self.sent += len(self.block)
            yield self.block


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_2gb_upload_is_refused_with_413_before_it_is_read(live_server, declared):
    body = Streamed()
    headers = {"content-type": "multipart/form-data; boundary=b"}
    if declared:
        headers["content-length"] = str(2 * GIB + 100)
    start = time.monotonic()
    response = httpx.post(live_server.url + "/transcribe", content=body, headers=headers, timeout=60)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"
    assert body.sent < 256 * 2**20  # refused long before 2 GiB went over the wire
    assert time.monotonic() - start < 20
    assert httpx.get(live_server.url + "/ready").status_code == 200


@pytest.mark.parametrize("path", ["/health", "/ready", "/"])
def test_head_is_answered_like_get_without_a_body(live_server, path):
    """Load balancers probe with HEAD."""
    head = httpx.head(live_server.url + path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == httpx.get(live_server.url + path).headers["content-type"]


def test_a_trailing_slash_is_not_redirected_to_the_host_the_client_named(live_server, real_wav):
    response = httpx.post(
        live_server.url + "/transcribe/", files={"file": ("a.wav", real_wav)}, headers={"Host": "evil.example"}
    )
    assert response.status_code == 404 and "location" not in response.headers
    assert response.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize("path", ["/transcribe", "/v1/audio/transcriptions"])
def test_a_form_field_given_twice_is_refused_naming_it(live_server, real_wav, path):
    files = [("file", ("a.wav", real_wav)), ("file", ("b.wav", real_wav))]
    response = httpx.post(live_server.url + path, files=files, data=MODEL, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "`file` (2 times)" in error["message"]
    assert (error["param"], error["code"]) == ("file", "duplicate_parameter")
    lists = {"timestamp_granularities[]": ["word", "segment"], "response_format": "verbose_json", **MODEL}  # `name[]` fields are lists
    assert httpx.post(live_server.url + path, files={"file": ("a.wav", real_wav)}, data=lists, timeout=30).status_code == 200
