"""The OpenAI API (/v1) through the official `openai` client, against the real server: streaming,
models, every verbose_json field, and refusals the client can read (`e.code`, `e.param`)."""

import math
import zlib

import httpx
import jiwer
import numpy as np
import openai
import pytest

from asr.model import PRETRAINED_DIR
from asr.tokenizer import Tokenizer
from fsdd_audio import SAMPLE_RATE, connected_digits, expected_text, wav_bytes

SPEAKER = "jackson"  # takes 0-4 of a training speaker: held out of the recipe's training set
LONG_DIGITS = "40719623851746208395"  # about 13 s: three pieces of at most 6 s for the shipped model


@pytest.fixture(scope="module")
def client(live_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_server.url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def short_file(fsdd_dir) -> tuple[bytes, float]:
    wave, _ = connected_digits(fsdd_dir, "4071", SPEAKER)
    return wav_bytes(wave), len(wave) / SAMPLE_RATE


@pytest.fixture(scope="module")
def long_file(fsdd_dir) -> tuple[bytes, float]:
    wave, _ = connected_digits(fsdd_dir, LONG_DIGITS, SPEAKER)
    return wav_bytes(wave), len(wave) / SAMPLE_RATE


@pytest.fixture(scope="module")
def long_verbose(client, long_file):
    return client.audio.transcriptions.create(
        model="whisper-1", file=("long.wav", long_file[0]), response_format="verbose_json"
    )


def test_openai_client_works_unchanged(client, short_file):
    data, duration = short_file
    plain = client.audio.transcriptions.create(model="whisper-1", file=("d.wav", data), language="en")
    assert jiwer.wer(expected_text("4071"), plain.text) <= 0.25
    assert plain.usage.type == "duration" and plain.usage.seconds == pytest.approx(duration, abs=1e-3)
    name = client.models.list().data[0].id  # the loaded model's own name
    verbose = client.audio.transcriptions.create(
        model=name, file=("d.wav", data), response_format="verbose_json",
        timestamp_granularities=["word", "segment"], language="english", temperature=0.0,
    )
    assert verbose.text == plain.text and verbose.duration == pytest.approx(duration, abs=1e-3)
    assert [w.word for w in verbose.words] == verbose.text.split()
    assert verbose.segments[0].start == 0.0
    srt = client.audio.transcriptions.create(model="whisper-1", file=("d.wav", data), response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> ")
    text = client.audio.transcriptions.create(model="whisper-1", file=("d.wav", data), response_format="text")
    assert text.strip() == plain.text


def test_stream_sends_each_piece_as_it_is_decoded_then_the_whole_text(client, long_file, long_verbose):
    data, duration = long_file
    assert duration > 2 * 6.0  # the shipped model's longest piece: at least three pieces
    events = list(client.audio.transcriptions.create(model="whisper-1", file=("long.wav", data), stream=True))
    *deltas, done = events
    assert [e.type for e in deltas] == ["transcript.text.delta"] * len(deltas) and done.type == "transcript.text.done"
    assert len(deltas) >= 2
    assert "".join(e.delta for e in deltas) == done.text
    assert [e.delta.strip() for e in deltas] == [s.text for s in long_verbose.segments if s.text]  # one per piece
    assert done.text == long_verbose.text
    assert jiwer.wer(expected_text(LONG_DIGITS), done.text) <= 0.25


def test_stream_with_text_format_and_a_short_file_is_one_delta(client, short_file):
    events = list(client.audio.transcriptions.create(
        model="whisper-1", file=("d.wav", short_file[0]), stream=True, response_format="text",
    ))
    assert [e.type for e in events] == ["transcript.text.delta", "transcript.text.done"]
    assert events[0].delta == events[1].text and events[1].text


def test_verbose_json_segments_carry_the_decoders_own_values(long_verbose, long_file):
    tokenizer = Tokenizer.load(PRETRAINED_DIR)
    segments = long_verbose.segments
    assert len(segments) >= 3
    assert long_verbose.usage.seconds == pytest.approx(long_file[1], abs=1e-3) == long_verbose.duration
    for s in segments:
        assert s.tokens and s.tokens == tokenizer.encode(s.text), s
        assert s.seek == round(s.start * 100)
        assert math.isfinite(s.avg_logprob) and -20.0 <= s.avg_logprob < 0.0
        text = s.text.encode()
        assert s.compression_ratio == pytest.approx(len(text) / len(zlib.compress(text)))
        assert 0.0 <= s.no_speech_prob < 0.5  # speech
        assert s.temperature == 0.0
    assert [s.seek for s in segments] == sorted(s.seek for s in segments) and segments[1].seek > 0
    assert len({s.avg_logprob for s in segments}) == len(segments)  # each piece's own, not one for all


def test_no_speech_prob_comes_from_the_no_speech_head(client):
    noise = 0.03 * np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE)  # -30 dBFS: loud enough to be judged
    verbose = client.audio.transcriptions.create(
        model="whisper-1", file=("noise.wav", wav_bytes(noise.astype(np.float32))), response_format="verbose_json"
    )
    assert verbose.text == ""
    assert [s.no_speech_prob > 0.5 for s in verbose.segments] == [True]
    assert verbose.segments[0].tokens == []


def test_word_granularity_without_brackets_gives_words_only(live_server, short_file):
    response = httpx.post(
        live_server.url + "/v1/audio/transcriptions", files={"file": ("d.wav", short_file[0])},
        data={"response_format": "verbose_json", "timestamp_granularities": "word"}, timeout=60,
    )
    body = response.json()
    assert response.status_code == 200, body
    assert [w["word"] for w in body["words"]] == body["text"].split() and body["words"]
    assert body["segments"] is None  # only words were asked for


def test_translation_of_english_speech_is_its_transcript(client, short_file):
    data = short_file[0]
    translated = client.audio.translations.create(model="whisper-1", file=("d.wav", data), response_format="verbose_json")
    transcribed = client.audio.transcriptions.create(model="whisper-1", file=("d.wav", data))
    assert translated.text == transcribed.text and translated.text
    assert translated.model_extra["task"] == "translate"
    with pytest.raises(openai.BadRequestError) as refused:
        client.audio.translations.create(model="whisper-1", file=("d.wav", data), extra_body={"language": "en"})
    assert (refused.value.code, refused.value.param) == ("unknown_parameter", "language")


def test_models_list_and_retrieve(client, live_server):
    name = httpx.get(live_server.url + "/ready").json()["model"]
    created = int((PRETRAINED_DIR / "model.safetensors").stat().st_mtime)
    models = client.models.list().data
    assert [(m.id, m.object, m.created, m.owned_by) for m in models] == [(name, "model", created, "asr")]
    assert client.models.retrieve(name).id == name
    assert client.models.retrieve("whisper-1").id == name  # an alias of the loaded model
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("nonexistent-model")
    assert (missing.value.code, missing.value.param, missing.value.type) == ("model_not_found", "model", "invalid_request_error")


@pytest.mark.parametrize(
    "fields, code, param",
    [
        ({"model": "nonexistent-model"}, "model_not_found", "model"),
        ({"language": "fr"}, "unsupported_language", "language"),
        ({"temperature": 0.7}, "unsupported_value", "temperature"),
        ({"prompt": "zero one"}, "unsupported_parameter", "prompt"),
        ({"include": ["logprobs"]}, "unsupported_parameter", "include"),
        ({"timestamp_granularities": ["word"]}, "unsupported_value", "timestamp_granularities"),  # json: no room
        ({"response_format": "srt", "stream": True}, "unsupported_value", "stream"),
        ({"extra_body": {"response_format": "pdf"}}, "invalid_value", "response_format"),
        ({"extra_body": {"known_speaker_names": ["a"]}}, "unknown_parameter", "known_speaker_names"),
    ],
)
def test_what_cannot_be_honoured_is_refused_naming_its_param(client, short_file, fields, code, param):
    fields = {"model": "whisper-1", **fields}
    expected = openai.NotFoundError if code == "model_not_found" else openai.BadRequestError
    with pytest.raises(expected) as refused:
        client.audio.transcriptions.create(file=("d.wav", short_file[0]), **fields)
    assert (refused.value.code, refused.value.param) == (code, param)
    assert refused.value.type == "invalid_request_error" and param in refused.value.message


def test_bad_audio_error_has_code_and_param(client):
    with pytest.raises(openai.BadRequestError, match="cannot decode audio") as refused:
        client.audio.transcriptions.create(model="whisper-1", file=("x.wav", b"not audio at all" * 20))
    assert (refused.value.code, refused.value.param) == ("audio_decode", "file")
