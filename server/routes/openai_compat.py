"""The OpenAI audio API, for existing clients: transcriptions (also streamed), translations, models.

What each form field does, and why some are refused, is in server/openai_form.py. Translation
into English of the English speech these models hear is its transcript, as Whisper gives for
English audio, so /v1/audio/translations transcribes (`task` "translate" in verbose_json).
"""

from __future__ import annotations

import math
import zlib
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, File, Form, Request, UploadFile

from asr.transcribe import Segment, Transcriber
from server.formats import text_response
from server.openai_form import (
    check_deterministic,
    check_granularities,
    check_language,
    check_stream,
    refuse_include,
    refuse_unknown_fields,
)
from server.openai_stream import stream_transcript
from server.schemas import (
    ERROR_RESPONSES,
    DurationUsage,
    OpenAIFormat,
    OpenAIModel,
    OpenAIModelList,
    OpenAISegment,
    OpenAITranscription,
    OpenAIVerboseTranscription,
    WordOut,
    finite_confidence,
)
from server.service import ServedModel, ServiceState, chosen_model, service_state, transcribe_upload

router = APIRouter(prefix="/v1")

Granularity = Literal["word", "segment"]
MODEL_FIELD = "the name of a model this server runs (GET /v1/models); `whisper-1` or absent: the default"
TRANSCRIPTION_FIELDS = frozenset({
    "file", "model", "language", "prompt", "temperature", "response_format", "timestamp_granularities[]",
    "timestamp_granularities", "include[]", "stream", "chunking_strategy",
})
TRANSLATION_FIELDS = frozenset({"file", "model", "prompt", "response_format", "temperature"})
MIN_AVG_LOGPROB = -20.0  # avg_logprob of a segment whose confidence is 0 (nothing found, or scores not finite)
OWNER = "asr"  # `owned_by` of the models: this service
TEXT_RESPONSES = {**ERROR_RESPONSES, 200: {"content": {"text/plain": {}, "text/vtt": {}}}}
STREAM_RESPONSES = {**ERROR_RESPONSES, 200: {"content": {"text/plain": {}, "text/vtt": {}, "text/event-stream": {}}}}


@router.post(
    "/audio/transcriptions",
    response_model=OpenAIVerboseTranscription | OpenAITranscription,
    responses=STREAM_RESPONSES,
    summary="OpenAI-compatible transcription (stream=true: server-sent events)",
)
async def create_transcription(
    request: Request,
    file: Annotated[UploadFile, File(description="the audio file")],
    model: Annotated[Optional[str], Form(description=MODEL_FIELD)] = None,
    language: Annotated[Optional[str], Form(description="`en` or absent")] = None,
    prompt: Annotated[Optional[str], Form(description="empty or absent")] = None,
    temperature: Annotated[Optional[float], Form(description="0 or absent")] = None,
    response_format: Annotated[OpenAIFormat, Form()] = "json",
    granularities: Annotated[list[Granularity], Form(alias="timestamp_granularities[]")] = [],
    granularities_unbracketed: Annotated[list[Granularity], Form(alias="timestamp_granularities")] = [],
    include: Annotated[list[str], Form(alias="include[]", description="not offered")] = [],
    stream: Annotated[bool, Form(description="server-sent `transcript.text.*` events")] = False,
    chunking_strategy: Annotated[Optional[Literal["auto"]], Form(description="`auto` or absent")] = None,
):
    refuse_unknown_fields((await request.form()).keys(), TRANSCRIPTION_FIELDS)
    transcriber = chosen_model(request, model)
    check_language(language)
    check_deterministic(temperature, prompt)
    refuse_include(include)
    granularities = [*granularities, *granularities_unbracketed]
    check_granularities(granularities, response_format)
    check_stream(stream, response_format)
    if stream:
        return await stream_transcript(request, file, transcriber)
    words = "word" in granularities
    segments = not granularities or "segment" in granularities
    return await answer(request, file, transcriber, response_format, "transcribe", words, segments)


@router.post(
    "/audio/translations",
    response_model=OpenAIVerboseTranscription | OpenAITranscription,
    responses=TEXT_RESPONSES,
    summary="OpenAI-compatible translation into English: the transcript, the speech being English",
)
async def create_translation(
    request: Request,
    file: Annotated[UploadFile, File(description="the audio file")],
    model: Annotated[Optional[str], Form(description=MODEL_FIELD)] = None,
    prompt: Annotated[Optional[str], Form(description="empty or absent")] = None,
    temperature: Annotated[Optional[float], Form(description="0 or absent")] = None,
    response_format: Annotated[OpenAIFormat, Form()] = "json",
):
    refuse_unknown_fields((await request.form()).keys(), TRANSLATION_FIELDS)
    transcriber = chosen_model(request, model)
    check_deterministic(temperature, prompt)
    return await answer(request, file, transcriber, response_format, "translate", words=False, segments=True)


async def answer(
    request: Request, file: UploadFile, transcriber: Transcriber, response_format: str,
    task: Literal["transcribe", "translate"], words: bool, segments: bool,
):
    result, _ = await transcribe_upload(request, file, transcriber, timestamps=words)
    text = text_response(result.text, result.segments, response_format)
    if text is not None:
        return text
    usage = DurationUsage(seconds=result.duration)
    if response_format == "json":
        return OpenAITranscription(text=result.text, usage=usage)
    return OpenAIVerboseTranscription(
        task=task,
        language="english",
        duration=result.duration,
        text=result.text,
        segments=[openai_segment(i, s) for i, s in enumerate(result.segments)] if segments else None,
        words=[WordOut(word=w.word, start=w.start, end=w.end) for w in result.words] if words else None,
        usage=usage,
    )


def openai_segment(i: int, segment: Segment) -> OpenAISegment:
    confidence = finite_confidence(segment.confidence)
    return OpenAISegment(
        id=i,
        seek=round(segment.start * 100),
        start=segment.start,
        end=segment.end,
        text=segment.text,
        tokens=segment.token_ids,
        avg_logprob=max(math.log(confidence), MIN_AVG_LOGPROB) if confidence > 0 else MIN_AVG_LOGPROB,
        compression_ratio=compression_ratio(segment.text),
        no_speech_prob=segment.no_speech_prob,
    )


def compression_ratio(text: str) -> float:
    """Whisper's check for a decoder stuck in a loop: UTF-8 bytes over zlib-compressed bytes
    (above 2.4 it takes the text for a repetition)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


@router.get(
    "/models", response_model=OpenAIModelList, responses=ERROR_RESPONSES,
    summary="The models this server runs, the default first",
)
async def list_models(request: Request) -> OpenAIModelList:
    state = ready_state(request)
    return OpenAIModelList(data=[model_card(served) for served in state.models.values()])


@router.get("/models/{model_id:path}", response_model=OpenAIModel, responses=ERROR_RESPONSES, summary="One model")
async def retrieve_model(request: Request, model_id: str) -> OpenAIModel:
    """A model this server runs, by its name; `whisper-1`: the default; any other name is a 404."""
    state = ready_state(request)
    return model_card(state.model(model_id))


def ready_state(request: Request) -> ServiceState:
    """The service's state once it is ready (`created` is known once a model is loaded), else its 503."""
    state = service_state(request)
    unready = state.unready()
    if unready is not None:
        raise unready
    return state


def model_card(served: ServedModel) -> OpenAIModel:
    return OpenAIModel(id=served.name, created=served.created, owned_by=OWNER)
