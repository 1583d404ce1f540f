"""What both transcription APIs share: the service's state, and upload -> Transcription."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Optional

import numpy as np
from fastapi import Request, UploadFile

from asr.audio import load_audio
from asr.transcribe import Transcriber, Transcription
from server.errors import ApiError
from server.metrics import Metrics
from server.pool import InferencePool
from server.schemas import Decoder
from server.settings import Settings


@dataclass
class ServiceState:
    settings: Settings
    metrics: Metrics
    pool: InferencePool
    decoders: ThreadPoolExecutor  # `decode_workers` threads: uploads -> waveforms, a bounded few at a time
    transcriber: Optional[Transcriber] = None  # set once loaded and warmed up
    model_created: int = 0  # when the loaded model's weights were written (Unix seconds), for /v1/models
    load_failed: bool = False  # the reason is in the server log, not in answers to clients

    def unready(self) -> Optional[ApiError]:
        """Why the service cannot transcribe now (the answer of /ready and of the guard), or None."""
        if self.load_failed:
            return ApiError(503, "the model failed to load; see the server log", "model_error")
        if self.transcriber is None:
            retry = {"Retry-After": str(self.settings.retry_after_s)}
            return ApiError(503, "the model is still loading; retry shortly", "model_loading", retry)
        return None


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
    as a 4xx by server/errors.py); the header's duration and sample count are checked against
    the limits before any sample is decoded.
    """
    refuse_repeated_fields(await request.form())  # parsed already: FastAPI keeps it on the request
    state = service_state(request)
    transcriber = state.transcriber
    try:
        opts = transcriber.options(decoder, beam_size)
    except ValueError as exc:  # e.g. decoder=ctc for a model without a CTC head
        raise ApiError(400, str(exc), param="decoder", code="unsupported_value") from None
    data = await upload.read()
    start = time.perf_counter()
    wave = await decode(state, data)
    result = await state.pool.transcribe(wave, opts, timestamps, attention)
    state.metrics.audio_seconds.inc(result.duration)
    return result, time.perf_counter() - start


async def decode(state: ServiceState, data: bytes) -> np.ndarray:
    """Upload bytes -> (N,) float32 at the model's rate, in one of the `decode_workers` threads."""
    settings = state.settings
    job = partial(
        load_audio, data, state.transcriber.sample_rate, settings.max_audio_seconds,
        max_samples=settings.max_decoded_samples,
    )
    return await asyncio.get_running_loop().run_in_executor(state.decoders, job)


def refuse_repeated_fields(form) -> None:
    """A form field given twice is refused: silently keeping one of them would answer for a file
    (or an option) the client may not mean. Names ending in `[]` are lists by convention."""
    counts = Counter(name for name, _ in form.multi_items() if not name.endswith("[]"))
    repeated = sorted(name for name, n in counts.items() if n > 1)
    if repeated:
        fields = ", ".join(f"`{name}` ({counts[name]} times)" for name in repeated)
        message = f"form field given more than once: {fields}; send each once"
        raise ApiError(400, message, param=repeated[0], code="duplicate_parameter")
