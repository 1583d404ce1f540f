"""What both transcription APIs share: the service's state, and upload -> Transcription."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Optional

from fastapi import Request, UploadFile
from starlette.concurrency import run_in_threadpool

from asr.audio import load_audio
from asr.transcribe import Transcriber, Transcription
from server.errors import ApiError
from server.metrics import Metrics
from server.pool import InferencePool
from server.schemas import Decoder
from server.settings import Settings

METHODS = {"beam": "beam", "greedy": "greedy", "ctc": "ctc_greedy"}


@dataclass
class ServiceState:
    settings: Settings
    metrics: Metrics
    pool: InferencePool
    transcriber: Optional[Transcriber] = None  # set once loaded and warmed up
    load_error: Optional[str] = None

    @property
    def ready(self) -> bool:
        return self.transcriber is not None


def service_state(request: Request) -> ServiceState:
    return request.app.state.service


async def transcribe_upload(
    request: Request,
    upload: UploadFile,
    timestamps: bool,
    decoder: Optional[Decoder] = None,
    beam_size: Optional[int] = None,
    attention: bool = False,
) -> tuple[Transcription, float]:
    """Decode the upload and transcribe it in the pool -> (transcription, seconds it took).

    `decoder` and `beam_size` override the model's default search (None keeps it); `attention`
    asks for the cross-attention matrix. Audio a user got wrong raises `AudioError` (answered
    as a 4xx by server/errors.py); the header's duration is checked against the limit before
    any sample is decoded.
    """
    state = service_state(request)
    transcriber = state.transcriber
    opts = transcriber.default_options
    if decoder is not None:
        if decoder == "ctc" and not transcriber.model.has_ctc:
            raise ApiError(400, f"model {transcriber.model_name} has no CTC head; use decoder=beam or greedy")
        opts = replace(opts, method=METHODS[decoder])
    if beam_size is not None:
        opts = replace(opts, beam_size=beam_size)
    data = await upload.read()
    start = time.perf_counter()
    wave = await run_in_threadpool(
        load_audio, data, transcriber.sample_rate, state.settings.max_audio_seconds
    )  # (N,) float32
    result = await state.pool.transcribe(wave, opts, timestamps, attention)
    state.metrics.audio_seconds.inc(result.duration)
    return result, time.perf_counter() - start
