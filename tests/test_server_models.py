"""One service, several models (ASR_MODELS): each API picks a model by name, the first is the
default, an unknown name is a 404. The live server runs the shipped digits model and a copy of
it named `digits-copy` (tests/conftest.py): the two transcribe alike, so the answer's `model`
field, or the `model` label of /metrics where the OpenAI answer has no such field, tells which
one served a request."""

import concurrent.futures
import time

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from asr.model import PRETRAINED_DIR
from fsdd_audio import connected_digits, digit_strings, expected_text, wav_bytes

SPEAKER = "jackson"  # takes 0-4 of a training speaker: held out of the recipe's training set
MODELS = ["digits", "digits-copy"]


@pytest.fixture(scope="module")
def server(two_model_server):
    return two_model_server


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def digits_file(fsdd_dir) -> bytes:
    return wav_bytes(connected_digits(fsdd_dir, "4071", SPEAKER)[0])


def post(server, data, params=None, **form) -> httpx.Response:
    return httpx.post(
        server.url + "/transcribe", params=params, data=form, files={"file": ("d.wav", data, "audio/wav")}, timeout=60
    )


def answered_by_model(server, endpoint: str) -> dict[str, float]:
    """model label -> 200 answers of `endpoint` so far, from /metrics."""
    counts = {}
    for family in text_string_to_metric_families(httpx.get(server.url + "/metrics").text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "asr_requests_total" and (labels["endpoint"], labels["status"]) == (endpoint, "200"):
                counts[labels["model"]] = sample.value
    return counts


def served_by(server, endpoint: str, request) -> str:
    """Run `request()`, then name the model whose count of 200s on `endpoint` it raised. The
    count is taken once the response is sent, so it may lag the client a moment."""
    before = answered_by_model(server, endpoint)
    request()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        raised = [m for m, n in answered_by_model(server, endpoint).items() if n > before.get(m, 0)]
        if raised:
            assert len(raised) == 1, raised
            return raised[0]
        time.sleep(0.05)
    raise AssertionError(f"no 200 of {endpoint} was counted")


def test_ready_names_the_default_and_every_model(server):
    assert httpx.get(server.url + "/ready").json() == {"status": "ready", "model": "digits", "models": MODELS}


@pytest.mark.parametrize(
    "form, params, expected",
    [
        ({}, None, "digits"),  # none named: the default, the first of ASR_MODELS
        ({"model": "digits"}, None, "digits"),
        ({"model": "digits-copy"}, None, "digits-copy"),
        ({"model": "whisper-1"}, None, "digits"),  # the name OpenAI clients send: the default, on both APIs
        ({}, {"model": "digits-copy"}, "digits-copy"),  # a query parameter, like the other options
        ({"model": "digits"}, {"model": "digits-copy"}, "digits"),  # the form wins, as for the other options
    ],
)
def test_transcribe_answers_with_the_model_asked_for(server, digits_file, form, params, expected):
    responses = []
    assert served_by(server, "/transcribe", lambda: responses.append(post(server, digits_file, params, **form))) == expected
    body = responses[0].json()
    assert body["model"] == expected and body["text"] == expected_text("4071")


@pytest.mark.parametrize("where", ["form", "query"])
def test_an_unknown_model_is_404_naming_the_served_ones(server, digits_file, where):
    response = post(server, digits_file, **({"params": {"model": "nope"}} if where == "query" else {"model": "nope"}))
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "model", "model_not_found")
    assert "`nope`" in error["message"] and "`digits`, `digits-copy`" in error["message"]


def test_a_burst_for_both_models_gets_each_answer_from_its_own_model(server, fsdd_dir):
    strings = digit_strings(8, seed=3)
    asked = [MODELS[i % 2] for i in range(len(strings))]
    files = [wav_bytes(connected_digits(fsdd_dir, s, SPEAKER, seed=i)[0]) for i, s in enumerate(strings)]
    with concurrent.futures.ThreadPoolExecutor(len(files)) as pool:
        bodies = list(pool.map(lambda i: post(server, files[i], model=asked[i]).json(), range(len(files))))
    assert [b["model"] for b in bodies] == asked
    assert [b["text"] for b in bodies] == [expected_text(s) for s in strings]


@pytest.mark.parametrize(
    "model, expected", [("digits-copy", "digits-copy"), ("digits", "digits"), ("whisper-1", "digits"), (None, "digits")]
)
def test_openai_transcription_and_translation_honour_model(server, client, digits_file, model, expected):
    fields = {"file": ("d.wav", digits_file)} | ({"model": model} if model else {"model": openai.NOT_GIVEN})
    transcribe = lambda: client.audio.transcriptions.create(**fields)  # noqa: E731
    assert served_by(server, "/v1/audio/transcriptions", transcribe) == expected
    translate = lambda: client.audio.translations.create(**fields)  # noqa: E731
    assert served_by(server, "/v1/audio/translations", translate) == expected
    stream = lambda: list(client.audio.transcriptions.create(stream=True, **fields))  # noqa: E731
    assert served_by(server, "/v1/audio/transcriptions", stream) == expected


def test_openai_unknown_model_is_404(client, digits_file):
    with pytest.raises(openai.NotFoundError) as missing:
        client.audio.transcriptions.create(model="nope", file=("d.wav", digits_file))
    assert (missing.value.code, missing.value.param, missing.value.type) == ("model_not_found", "model", "invalid_request_error")


def test_models_lists_and_retrieves_each_model(server, client):
    created = int((PRETRAINED_DIR / "model.safetensors").stat().st_mtime)  # copytree keeps the time
    assert [(m.id, m.created, m.owned_by) for m in client.models.list().data] == [(n, created, "asr") for n in MODELS]
    for name in MODELS:
        assert client.models.retrieve(name).id == name
    assert client.models.retrieve("whisper-1").id == "digits"  # the alias: the default
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("nope")
    assert (missing.value.code, missing.value.param) == ("model_not_found", "model")


def test_model_not_found_is_in_the_openapi_description(server):
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    for path in ("/transcribe", "/v1/audio/transcriptions", "/v1/models/{model_id}"):
        assert "404" in next(iter(paths[path].values()))["responses"], path
