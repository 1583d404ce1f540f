"""What both transcription APIs share: the service's state (the models it runs), and upload -> Transcription."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Optional

import numpy as np
from fastapi import Request, UploadFile

from asr.audio import load_audio
from asr.transcribe import Transcriber, Transcription
from server.errors import INVALID_REQUEST, ApiError
from server.metrics import Metrics, label_with_model
from server.pool import InferencePool
from server.schemas import Decoder
from server.settings import Settings

ALIASES = ("whisper-1",)  # names that mean the default model: OpenAI clients send `whisper-1` by default


@dataclass
class ServedModel:
    """One of the models the service runs, under the name requests give (asr.model.model_name)."""

    name: str
    path: Path  # its directory
    transcriber: Optional[Transcriber] = None  # set once loaded and warmed up
    created: int = 0  # when its weights were written (Unix seconds), for /v1/models


@dataclass
class ServiceState:
    settings: Settings
    metrics: Metrics
    pool: InferencePool  # one for every model: a batch holds one model's requests (server/pool.py)
    decoders: ThreadPoolExecutor  # `decode_workers` threads: uploads -> waveforms, a bounded few at a time
    load_failed: bool = False  # the reason is in the server log, not in answers to clients
    models: dict[str, ServedModel] = field(init=False)  # by name, in the order of `settings.models`

    def __post_init__(self) -> None:
        self.models = {name: ServedModel(name, path) for name, path in self.settings.model_dirs.items()}

    def unready(self) -> Optional[ApiError]:
        """Why the service cannot transcribe now (the answer of /ready and of the guard), or None.
        It transcribes once every model is loaded and warmed up."""
        if self.load_failed:
            return ApiError(503, "a model failed to load; see the server log", "model_error")
        if any(served.transcriber is None for served in self.models.values()):
            retry = {"Retry-After": str(self.settings.retry_after_s)}
            return ApiError(503, "the models are still loading; retry shortly", "model_loading", retry)
        return None

    @property
    def default_model(self) -> ServedModel:
        """The first of `settings.models`: what a request that names no model gets."""
        return next(iter(self.models.values()))

    def model(self, name: Optional[str]) -> ServedModel:
        """The model named `name`; the default for None or one of ALIASES (unless a model bears
        that name); 404 `model_not_found` for any other name."""
        if name is None or (name in ALIASES and name not in self.models):
            return self.default_model
        if name not in self.models:
            names = ", ".join(f"`{n}`" for n in self.models)
            raise ApiError(
                404, f"model `{name}` not found: this server runs {names} (the first is the default, "
                f"also named {', '.join(f'`{a}`' for a in ALIASES)})",
                INVALID_REQUEST, param="model", code="model_not_found",
            )
        return self.models[name]


def service_state(request: Request) -> ServiceState:
    return request.app.state.service


def chosen_model(request: Request, name: Optional[str]) -> Transcriber:
    """The transcriber of the model named `name` (ServiceState.model: None or `whisper-1` is the
    default), which then labels this request's metrics."""
    served = service_state(request).model(name)
    label_with_model(request, served.name)
    return served.transcriber


async def transcribe_upload(
    request: Request,
    upload: UploadFile,
    transcriber: Transcriber,
    timestamps: bool,
    decoder: Optional[Decoder] = None,
    beam_size: Optional[int] = None,
    attention: bool = False,
) -> tuple[Transcription, float]:
    """Decode the upload and transcribe it with `transcriber` in the pool -> (transcription, seconds it took).

    `decoder` and `beam_size` override the model's default search (None keeps it); `attention`
    asks for the cross-attention matrix. Audio a user got wrong raises `AudioError` (answered
    as a 4xx by server/errors.py); the header's duration and sample count are checked against
    the limits before any sample is decoded.
    """
    refuse_repeated_fields(await request.form())  # parsed already: FastAPI keeps it on the request
    state = service_state(request)
    try:
        opts = transcriber.options(decoder, beam_size)
    except ValueError as exc:  # e.g. decoder=ctc for a model without a CTC head
        raise ApiError(400, str(exc), param="decoder", code="unsupported_value") from None
    data = await upload.read()
    start = time.perf_counter()
    wave = await decode(state, data, transcriber.sample_rate)
    result = await state.pool.transcribe(transcriber, wave, opts, timestamps, attention)
    state.metrics.audio_seconds.inc(result.duration)
    return result, time.perf_counter() - start


async def decode(state: ServiceState, data: bytes, sample_rate: int) -> np.ndarray:
    """Upload bytes -> (N,) float32 at `sample_rate` (the model's), in one of the `decode_workers` threads."""
    settings = state.settings
    job = partial(
        load_audio, data, sample_rate, settings.max_audio_seconds,
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
