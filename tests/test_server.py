"""The service end to end: a real uvicorn server, the shipped model, real FSDD speech."""

import concurrent.futures
import re

import httpx
import jiwer
import pytest

from fsdd_audio import connected_digits, digit_strings, expected_text, wav_bytes
from server.schemas import TranscriptionOut

SPEAKER = "jackson"  # takes 0-4 of a training speaker: held out of the recipe's training set


@pytest.fixture(scope="module")
def digits_file(fsdd_dir):
    wave, spans = connected_digits(fsdd_dir, "4071", SPEAKER)
    return wav_bytes(wave), expected_text("4071"), spans, len(wave) / 8000


def post(server, data, params=None, **form):
    return httpx.post(
        server.url + "/transcribe", params=params, data=form, files={"file": ("digits.wav", data, "audio/wav")},
        timeout=60,
    )


def test_health_ready_and_docs(live_server):
    assert httpx.get(live_server.url + "/health").json() == {"status": "ok"}
    ready = httpx.get(live_server.url + "/ready").json()
    assert ready["status"] == "ready" and ready["model"]
    assert "swagger" in httpx.get(live_server.url + "/docs").text.lower()
    paths = httpx.get(live_server.url + "/openapi.json").json()["paths"]
    expected = {"/transcribe", "/v1/audio/transcriptions", "/v1/audio/translations", "/v1/models", "/health", "/ready", "/metrics"}
    assert expected <= set(paths)


def test_transcribes_connected_digits_as_json(live_server, digits_file):
    data, expected, _, duration = digits_file
    body = post(live_server, data).json()
    assert jiwer.wer(expected, body["text"]) <= 0.25, body["text"]
    assert body["duration"] == pytest.approx(duration, abs=1e-3)
    assert body["processing_time"] > 0
    assert body["model"] == httpx.get(live_server.url + "/ready").json()["model"]
    assert 0.0 <= body["confidence"] <= 1.0
    assert body["segments"][0]["start"] == 0.0 and body["segments"][-1]["end"] == pytest.approx(duration, abs=1e-3)
    assert body["words"] is None and body["attention"] is None


def test_confidence_is_always_a_number_in_0_1():
    """JSON has no NaN: a non-finite confidence would be answered as null."""
    fields = dict(text="", duration=1.0, processing_time=0.1, model="m", segments=[])
    for given, answered in [(float("nan"), 0.0), (float("inf"), 0.0), (-0.2, 0.0), (1.5, 1.0), (0.25, 0.25)]:
        assert TranscriptionOut(confidence=given, **fields).model_dump(mode="json")["confidence"] == answered
    schema = TranscriptionOut.model_json_schema()
    assert "confidence" in schema["required"]
    assert schema["properties"]["confidence"] | {"description": ""} == {
        "type": "number", "minimum": 0, "maximum": 1, "title": "Confidence", "description": "",
    }


def test_word_times_are_ordered_inside_the_audio_and_on_their_digit(live_server, digits_file):
    data, expected, spans, duration = digits_file
    body = post(live_server, data, timestamps="true").json()
    words = body["words"]
    assert body["timing_source"] in ("ctc", "attention")
    assert [w["word"] for w in words] == body["text"].split()
    for w in words:
        assert 0.0 <= w["start"] <= w["end"] <= duration + 1e-3
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    assert body["text"] == expected  # the shipped model gets these held-out takes right
    for w, (lo, hi) in zip(words, spans, strict=True):  # word i is digit i: its time must overlap that take
        assert w["start"] < hi + 0.1 and w["end"] > lo - 0.1, (w, lo, hi)


def test_attention_matrix_has_a_row_per_token(live_server, digits_file):
    data, _, _, duration = digits_file
    body = post(live_server, data, params={"attention": "true"}).json()
    att = body["attention"]
    assert len(att["weights"]) == len(att["tokens"]) >= 1
    frames = len(att["weights"][0])
    assert abs(frames * 0.04 - duration) < 0.2  # encoder frames are 40 ms
    for row in att["weights"]:
        assert len(row) == frames and sum(row) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("where", ["form", "query"])
def test_subtitle_and_text_formats(live_server, digits_file, where):
    data = digits_file[0]

    def as_format(fmt):
        response = post(live_server, data, params={"format": fmt}) if where == "query" else post(live_server, data, format=fmt)
        assert response.status_code == 200
        return response

    text = as_format("text")
    assert text.headers["content-type"].startswith("text/plain") and text.text.strip()
    srt = as_format("srt").text
    assert re.match(r"1\n00:00:00,000 --> 00:00:0\d,\d{3}\n\w", srt), srt
    vtt = as_format("vtt")
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert re.match(r"WEBVTT\n\n00:00:00\.000 --> 00:00:0\d\.\d{3}\n\w", vtt.text), vtt.text


@pytest.mark.parametrize("decoder", ["greedy", "ctc"])
def test_other_decoders(live_server, digits_file, decoder):
    data, expected, _, _ = digits_file
    body = post(live_server, data, decoder=decoder, beam_size="1").json()
    assert jiwer.wer(expected, body["text"]) <= 0.25, body["text"]


def test_long_audio_is_cut_and_transcribed_in_order(live_server, fsdd_dir):
    digits = "".join(digit_strings(12, seed=5, min_len=5, max_len=5))  # 60 digits, about 40 s
    wave, _ = connected_digits(fsdd_dir, digits, SPEAKER)
    body = post(live_server, wav_bytes(wave)).json()
    assert len(body["segments"]) >= 4
    ends = [s["end"] for s in body["segments"]]
    assert ends == sorted(ends) and ends[-1] == pytest.approx(len(wave) / 8000, abs=1e-3)
    assert jiwer.wer(expected_text(digits), body["text"]) <= 0.25


def test_concurrent_burst_gets_every_answer_back_to_its_own_file(live_server, fsdd_dir):
    strings = digit_strings(12, seed=1)
    files = [wav_bytes(connected_digits(fsdd_dir, s, SPEAKER, seed=i)[0]) for i, s in enumerate(strings)]
    batches_before = batch_counts(live_server)
    with concurrent.futures.ThreadPoolExecutor(len(files)) as pool:
        bodies = list(pool.map(lambda data: post(live_server, data).json(), files))
    for own, body in zip(strings, bodies):
        distances = {s: jiwer.wer(expected_text(s), body["text"]) for s in strings}
        assert min(distances, key=distances.get) == own, (own, body["text"])
    count, total = (after - before for after, before in zip(batch_counts(live_server), batches_before))
    assert total == len(files) and count < total  # some requests shared an inference call


def batch_counts(server) -> tuple[float, float]:
    """(inference calls, requests in them) so far, from /metrics."""
    text = httpx.get(server.url + "/metrics").text
    return metric(text, "asr_batch_size_count"), metric(text, "asr_batch_size_sum")


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def test_metrics_count_requests_latency_audio_and_queue(live_server, digits_file):
    post(live_server, digits_file[0])
    post(live_server, b"")
    text = httpx.get(live_server.url + "/metrics").text
    assert metric(text, 'asr_requests_total{endpoint="/transcribe",model="digits",status="200"}') >= 1
    assert metric(text, 'asr_requests_total{endpoint="/transcribe",model="digits",status="400"}') >= 1
    assert metric(text, 'asr_request_latency_seconds_count{endpoint="/transcribe",model="digits"}') >= 2
    assert metric(text, "asr_audio_seconds_total") >= digits_file[3]
    assert metric(text, "asr_queue_depth") == 0


def test_health_answers_at_once_while_long_audio_is_transcribed(live_server, fsdd_dir):
    wave, _ = connected_digits(fsdd_dir, "".join(digit_strings(16, seed=9, min_len=6, max_len=6)), SPEAKER)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        long_request = pool.submit(post, live_server, wav_bytes(wave))
        latencies = []
        while not long_request.done():
            response = httpx.get(live_server.url + "/health")
            assert response.status_code == 200
            latencies.append(response.elapsed.total_seconds())
        assert long_request.result().status_code == 200
    assert len(latencies) >= 3 and max(latencies) < 0.5  # inference does not block the event loop
