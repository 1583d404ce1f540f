"""Uploads that try to tie the service up: slow or stalled bodies, idle connections, huge
headers, decompression bombs. Each must cost little, and never lock out other clients.
All clients are bounded in time and on loopback (tests/hostile_clients.py).
"""

import concurrent.futures
import time

import httpx
import pytest

from fsdd_audio import connected_digits, wav_bytes
from hostile_clients import answer_within, bomb_flac, closed_within, connect, open_upload, status_of, trickle
from live_server import LiveServer

BODY_TIMEOUT_S = 4
HEADER_TIMEOUT_S = 2
QUEUE_SIZE = 2
MAX_UPLOADS = 6


@pytest.fixture(scope="module")
def tight_server():
    env = {
        "ASR_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "ASR_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "ASR_QUEUE_SIZE": str(QUEUE_SIZE),
        "ASR_MAX_UPLOADS": str(MAX_UPLOADS),
        "ASR_MAX_HEADER_KB": "8",
    }
    with LiveServer(env) as server:
        yield server


@pytest.fixture(scope="module")
def speech(fsdd_dir) -> bytes:
    return wav_bytes(connected_digits(fsdd_dir, "59", "george")[0])


def post(server, data):
    return httpx.post(server.url + "/transcribe", files={"file": ("a.wav", data)}, timeout=60)


def test_slow_uploads_take_no_queue_slot_and_get_408_at_the_body_deadline(tight_server, speech):
    slow = [open_upload(tight_server.url) for _ in range(2 * QUEUE_SIZE)]  # more than the queue holds
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(slow)) as pool:
        answers = [pool.submit(trickle, sock, seconds=BODY_TIMEOUT_S + 4, interval=0.5) for sock in slow]
        time.sleep(0.5)
        statuses = [post(tight_server, speech).status_code for _ in range(3)]
        served_while_trickling = time.monotonic() - start < BODY_TIMEOUT_S
        answers = [a.result() for a in answers]
    waited = time.monotonic() - start
    assert statuses == [200, 200, 200] and served_while_trickling
    assert [status_of(a) for a in answers] == [408] * len(slow), answers
    assert waited < BODY_TIMEOUT_S + 2
    assert all(b"connection: close" in a.lower() for a in answers)
    for sock in slow:  # and the server closed each of them
        assert closed_within(sock, 2)
        sock.close()


def test_uploads_in_progress_are_capped_with_503_and_a_stalled_one_gets_408(tight_server, speech):
    stalled = [open_upload(tight_server.url) for _ in range(MAX_UPLOADS)]  # headers, then nothing
    time.sleep(0.3)
    try:
        refused = post(tight_server, speech)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["type"] == "server_busy"
        assert httpx.get(tight_server.url + "/ready").status_code == 200
        start = time.monotonic()
        answers = [answer_within(sock, BODY_TIMEOUT_S + 2) for sock in stalled]
        assert [status_of(a) for a in answers] == [408] * MAX_UPLOADS, answers
        assert time.monotonic() - start < BODY_TIMEOUT_S + 1
    finally:
        for sock in stalled:
            sock.close()
    assert post(tight_server, speech).status_code == 200  # the places are free again


@pytest.mark.parametrize("sent", [b"", b"GET /health HTTP/1.1\r\nHo"], ids=["nothing", "half a head"])
def test_a_connection_without_a_complete_request_head_is_closed(tight_server, sent):
    sock = connect(tight_server.url)
    sock.sendall(sent)
    start = time.monotonic()
    assert answer_within(sock, HEADER_TIMEOUT_S + 3) == b""
    assert time.monotonic() - start < HEADER_TIMEOUT_S + 1
    sock.close()


def test_a_kept_alive_connection_that_stalls_in_its_next_head_is_closed(tight_server):
    sock = connect(tight_server.url)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = answer_within(sock, 5)
    while not answer.endswith(b'"ok"}'):  # the whole response, head and body
        answer += answer_within(sock, 5)
    assert status_of(answer) == 200
    sock.sendall(b"GET /hea")  # keeps the connection out of its keep-alive timeout
    start = time.monotonic()
    assert answer_within(sock, HEADER_TIMEOUT_S + 3) == b""
    assert time.monotonic() - start < HEADER_TIMEOUT_S + 1
    sock.close()


def test_request_headers_over_the_limit_are_refused_and_ordinary_ones_served(tight_server):
    assert httpx.get(tight_server.url + "/health", headers={"X-Big": "a" * 7_000}).status_code == 200
    refused = httpx.get(tight_server.url + "/health", headers={"X-Big": "a" * 9_000})  # arrives whole: the guard
    assert refused.status_code == 431 and refused.json()["error"]["type"] == "headers_too_large"
    assert refused.headers["connection"] == "close"
    try:
        status = httpx.get(tight_server.url + "/health", headers={"X-Big": "a" * 2_000_000}, timeout=30).status_code
    except httpx.TransportError:  # closed (and reset) while the client was still sending
        status = None
    assert status in (None, 400, 431)
    assert httpx.get(tight_server.url + "/ready").status_code == 200


BOMBS = 16


@pytest.fixture(scope="module")
def bomb():
    return bomb_flac(seconds=30)  # 30 s at 384 kHz x 8 channels: 92 M samples in 0.3 MB


def test_decompression_bombs_arriving_together_are_refused_in_bounded_memory(live_server, bomb):
    idle = live_server.rss_mib()
    with concurrent.futures.ThreadPoolExecutor(BOMBS) as pool:
        responses = list(pool.map(lambda _: post(live_server, bomb), range(BOMBS)))
    peak = live_server.peak_rss_mib()  # VmHWM: the highest RSS the server has had
    assert [r.status_code for r in responses] == [413] * BOMBS, responses[0].text
    assert {r.json()["error"]["code"] for r in responses} == {"audio_too_long"}
    assert "samples" in responses[0].json()["error"]["message"]
    assert peak < idle + 500, (idle, peak)
    assert httpx.get(live_server.url + "/ready").status_code == 200
