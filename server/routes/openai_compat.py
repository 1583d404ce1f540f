"""POST /v1/audio/transcriptions: the OpenAI audio transcription API, for existing clients.

`model`, `language`, `prompt` and `temperature` are accepted and ignored: this server runs
one model, the one it was started with.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, File, Form, Request, UploadFile

from server.formats import text_response
from server.schemas import (
    ERROR_RESPONSES,
    OpenAIFormat,
    OpenAISegment,
    OpenAITranscription,
    OpenAIVerboseTranscription,
    WordOut,
    finite_confidence,
)
from server.service import transcribe_upload

router = APIRouter(prefix="/v1")


@router.post(
    "/audio/transcriptions",
    response_model=OpenAIVerboseTranscription | OpenAITranscription,
    responses=ERROR_RESPONSES,
    summary="OpenAI-compatible transcription",
)
async def create_transcription(
    request: Request,
    file: Annotated[UploadFile, File(description="the audio file")],
    model: Annotated[Optional[str], Form(description="accepted, ignored")] = None,
    language: Annotated[Optional[str], Form(description="accepted, ignored")] = None,
    prompt: Annotated[Optional[str], Form(description="accepted, ignored")] = None,
    temperature: Annotated[Optional[float], Form(description="accepted, ignored")] = None,
    response_format: Annotated[OpenAIFormat, Form()] = "json",
    timestamp_granularities: Annotated[
        list[Literal["word", "segment"]], Form(alias="timestamp_granularities[]")
    ] = [],
):
    want_words = "word" in timestamp_granularities
    result, _ = await transcribe_upload(request, file, timestamps=want_words)
    text = text_response(result.text, result.segments, response_format)
    if text is not None:
        return text
    if response_format == "json":
        return OpenAITranscription(text=result.text)
    avg_logprob = math.log(max(finite_confidence(result.confidence), 1e-6))
    return OpenAIVerboseTranscription(
        language="english",
        duration=result.duration,
        text=result.text,
        segments=[
            OpenAISegment(id=i, start=s.start, end=s.end, text=s.text, avg_logprob=avg_logprob)
            for i, s in enumerate(result.segments)
        ],
        words=[WordOut(word=w.word, start=w.start, end=w.end) for w in result.words] if want_words else None,
    )
