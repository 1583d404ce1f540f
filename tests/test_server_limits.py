"""Limits set by environment variables: API key, upload size, audio duration, queue size."""

import concurrent.futures
import time

import httpx
import openai
import pytest

from fsdd_audio import connected_digits, digit_strings, wav_bytes
from live_server import LiveServer

KEY = "test-key-123"


@pytest.fixture(scope="module")
def strict_server():
    env = {
        "ASR_API_KEY": KEY,
        "ASR_QUEUE_SIZE": "1",
        "ASR_MAX_AUDIO_SECONDS": "5",
        "ASR_MAX_UPLOAD_MB": "0.5",
    }
    with LiveServer(env) as server:
        yield server


@pytest.fixture(scope="module")
def speech(fsdd_dir) -> bytes:
    return wav_bytes(connected_digits(fsdd_dir, "8362", "yweweler")[0])  # about 3 s


def post(server, data, key=KEY, scheme="Bearer"):
    headers = {"Authorization": f"{scheme} {key}"} if key else {}
    return httpx.post(server.url + "/transcribe", files={"file": ("a.wav", data)}, headers=headers, timeout=60)


def test_api_key_is_required_on_transcription_routes_and_the_openai_api(strict_server, speech):
    for key in (None, "wrong"):
        refused = post(strict_server, speech, key=key)
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
        assert refused.json()["error"]["code"] == "invalid_api_key"
        assert refused.headers["www-authenticate"] == "Bearer"
    assert post(strict_server, speech).status_code == 200
    assert httpx.get(strict_server.url + "/v1/models").status_code == 401
    assert httpx.get(strict_server.url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    for path in ("/health", "/ready", "/metrics", "/", "/docs"):
        assert httpx.get(strict_server.url + path).status_code == 200, path


def test_the_bearer_scheme_is_case_insensitive(strict_server, speech):
    for scheme in ("bearer", "BEARER", "BeArEr"):
        assert post(strict_server, speech, scheme=scheme).status_code == 200, scheme
    assert post(strict_server, speech, scheme="Basic").status_code == 401


def test_openai_client_uses_the_key(strict_server, speech):
    good = openai.OpenAI(base_url=strict_server.url + "/v1", api_key=KEY)
    assert good.audio.transcriptions.create(model="whisper-1", file=("a.wav", speech)).text
    bad = openai.OpenAI(base_url=strict_server.url + "/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        bad.audio.transcriptions.create(model="whisper-1", file=("a.wav", speech))
    assert refused.value.code == "invalid_api_key"


def test_audio_longer_than_the_limit_gets_413(strict_server, fsdd_dir):
    wave, _ = connected_digits(fsdd_dir, "1234567", "yweweler", pause_s=0.5)
    assert 5 < len(wave) / 8000 and len(wav_bytes(wave)) < 0.5 * 2**20
    response = post(strict_server, wav_bytes(wave))
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "audio_too_long" and "limit is 5 s" in error["message"]


def test_upload_larger_than_the_limit_gets_413(strict_server):
    response = post(strict_server, bytes(2**20))
    assert response.status_code == 413 and response.json()["error"]["type"] == "payload_too_large"


def test_full_queue_answers_503_with_retry_after_then_recovers(strict_server, fsdd_dir):
    files = [wav_bytes(connected_digits(fsdd_dir, s, "yweweler")[0]) for s in digit_strings(8, seed=3, min_len=6, max_len=7)]
    with concurrent.futures.ThreadPoolExecutor(len(files)) as pool:
        responses = list(pool.map(lambda data: post(strict_server, data), files))
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 503}, statuses
    for busy in (r for r in responses if r.status_code == 503):
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["error"]["type"] == "server_busy"
    assert post(strict_server, files[0]).status_code == 200


def test_full_queue_refuses_a_stream_with_503_before_it_starts(strict_server, fsdd_dir):
    client = openai.OpenAI(base_url=strict_server.url + "/v1", api_key=KEY, max_retries=0)
    files = [wav_bytes(connected_digits(fsdd_dir, s, "yweweler")[0]) for s in digit_strings(8, seed=4, min_len=6, max_len=7)]

    def stream(data):
        try:
            return [e.type for e in client.audio.transcriptions.create(model="whisper-1", file=("a.wav", data), stream=True)]
        except openai.APIStatusError as refused:
            return refused.status_code

    with concurrent.futures.ThreadPoolExecutor(len(files)) as pool:
        outcomes = list(pool.map(stream, files))
    assert 503 in outcomes, outcomes
    streamed = [o for o in outcomes if o != 503]
    assert streamed and all(o[-1] == "transcript.text.done" and len(o) >= 2 for o in streamed), outcomes


def test_a_model_that_cannot_load_keeps_the_server_alive_and_logs_why_without_telling_clients(tmp_path, speech):
    model_dir = tmp_path / "secret-model-dir"
    model_dir.mkdir()
    log = tmp_path / "server.log"
    with LiveServer({"ASR_MODELS": str(model_dir)}, wait_for="/health", log=log) as server:
        ready = httpx.get(server.url + "/ready")
        while ready.json()["error"]["type"] == "model_loading":
            time.sleep(0.1)
            ready = httpx.get(server.url + "/ready")
        response = httpx.post(server.url + "/transcribe", files={"file": ("a.wav", speech)})
        assert httpx.get(server.url + "/health").status_code == 200
    for refused in (ready, response):  # /ready and the guard give the same generic reason
        assert refused.status_code == 503
        assert refused.json()["error"] == {
            "message": "a model failed to load; see the server log", "type": "model_error", "param": None, "code": None,
        }
    assert "secret-model-dir" in log.read_text() and "model.safetensors" in log.read_text()
