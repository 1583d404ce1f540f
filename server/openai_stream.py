"""`stream=true`: the transcript as server-sent events, one piece of the audio at a time.

The decoded waveform is cut where the Transcriber cuts long audio (asr/segment.py), and each
piece is its own job in the inference pool, submitted when the one before it is answered: so
pieces share batches with other requests, obey the pool's limits, and fail alone. The text of
each piece goes out as a `transcript.text.delta` event as soon as it is decoded (pieces with no
words send none); then `transcript.text.done` carries the whole text, the deltas joined. The
event shapes are the openai package's (openai/types/audio/transcription_stream_event.py).

Everything that can refuse the request does so before the first byte of the stream: a full
queue (503, server/guard.py, which holds the request's slot until the stream ends) and bad
audio (4xx; the upload is decoded before the response starts). A piece whose inference fails
ends the stream with an `{"error": ...}` event, which the openai client raises as an APIError.
"""

from __future__ import annotations

import json
from typing import AsyncIterator

import numpy as np
from fastapi import Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from asr.segment import split_long_audio
from asr.transcribe import Transcriber
from server.errors import error_body
from server.schemas import TranscriptTextDelta, TranscriptTextDone
from server.service import ServiceState, decode, refuse_repeated_fields, service_state


async def stream_transcript(request: Request, upload: UploadFile, transcriber: Transcriber) -> StreamingResponse:
    """Decode the upload, then answer with its transcript by `transcriber` as a stream of events."""
    refuse_repeated_fields(await request.form())
    state = service_state(request)
    wave = await decode(state, await upload.read(), transcriber.sample_rate)  # (N,) float32 at the model's rate
    pieces = [wave[p.start : p.end] for p in split_long_audio(wave, transcriber.sample_rate, transcriber.segment_cfg)]
    return StreamingResponse(
        transcript_events(state, transcriber, pieces), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def transcript_events(state: ServiceState, transcriber: Transcriber, pieces: list[np.ndarray]) -> AsyncIterator[str]:
    opts = transcriber.options()
    texts: list[str] = []
    for piece in pieces:
        try:
            result = await state.pool.transcribe(transcriber, piece, opts, timestamps=False)
        except Exception:  # logged by the pool; the client has a 200 already and learns it here
            yield event(error_body("inference failed on a piece of the audio; the transcript is incomplete",
                                   "internal_error"))
            return
        state.metrics.audio_seconds.inc(result.duration)
        if result.text:
            yield event(TranscriptTextDelta(delta=(" " if texts else "") + result.text))
            texts.append(result.text)
    yield event(TranscriptTextDone(text=" ".join(texts)))


def event(data: BaseModel | dict) -> str:
    """One server-sent event carrying `data` as JSON."""
    body = data.model_dump_json() if isinstance(data, BaseModel) else json.dumps(data)
    return f"data: {body}\n\n"
