"""POST /transcribe: the native API, with every option the model offers."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile, params
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from asr.transcribe import Transcription
from server.formats import text_response
from server.schemas import (
    ERROR_RESPONSES,
    AttentionOut,
    Decoder,
    Format,
    SegmentOut,
    TranscribeOptions,
    TranscriptionOut,
    WordOut,
)
from server.service import chosen_model, transcribe_upload

router = APIRouter()


def option(name: str) -> params.Form:
    """A form field of TranscribeOptions, described in /docs as the option is."""
    return Form(description=TranscribeOptions.model_fields[name].description)


def transcribe_options(
    request: Request,
    model: Annotated[Optional[str], option("model")] = None,
    beam_size: Annotated[Optional[int], option("beam_size")] = None,
    decoder: Annotated[Optional[Decoder], option("decoder")] = None,
    format: Annotated[Optional[Format], option("format")] = None,
    timestamps: Annotated[Optional[bool], option("timestamps")] = None,
    attention: Annotated[Optional[bool], option("attention")] = None,
) -> TranscribeOptions:
    """Options from the form, else from the query string (`?format=srt`), else defaults."""
    given = {k: v for k, v in request.query_params.items() if k in TranscribeOptions.model_fields}
    form = dict(model=model, beam_size=beam_size, decoder=decoder, format=format, timestamps=timestamps, attention=attention)
    given.update({k: v for k, v in form.items() if v is not None})
    try:
        return TranscribeOptions.model_validate(given)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@router.post(
    "/transcribe",
    response_model=TranscriptionOut,
    responses={**ERROR_RESPONSES, 200: {"content": {"text/plain": {}, "text/vtt": {}}}},
    summary="Transcribe an audio file (WAV, FLAC, OGG, MP3)",
    description="Options come as form fields or query parameters (`?format=srt`); `model` picks one of the "
    "models this server runs (GET /v1/models), else the default, and the answer's `model` names the one used.",
)
async def transcribe(
    request: Request,
    file: Annotated[UploadFile, File(description="the audio file")],
    options: Annotated[TranscribeOptions, Depends(transcribe_options)],
):
    transcriber = chosen_model(request, options.model)
    result, seconds = await transcribe_upload(
        request, file, transcriber, options.timestamps, options.decoder, options.beam_size, options.attention
    )
    text = text_response(result.text, result.segments, options.format)
    if text is not None:
        return text
    return transcription_out(result, seconds, transcriber.model_name, options)


def transcription_out(
    result: Transcription, seconds: float, model: str, options: TranscribeOptions
) -> TranscriptionOut:
    attention = None
    if options.attention and result.attention is not None:
        attention = AttentionOut(
            tokens=list(result.tokens),
            weights=[[round(float(w), 4) for w in row] for row in result.attention],
        )
    return TranscriptionOut(
        text=result.text,
        duration=result.duration,
        processing_time=round(seconds, 4),
        model=model,
        confidence=result.confidence,
        segments=[SegmentOut(start=s.start, end=s.end, text=s.text) for s in result.segments],
        words=[WordOut(word=w.word, start=w.start, end=w.end) for w in result.words]
        if options.timestamps
        else None,
        timing_source=result.timing_source if options.timestamps else None,
        attention=attention,
    )
