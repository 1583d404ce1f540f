"""The FastAPI app: `create_app(settings)` builds it, `serve(...)` runs it with uvicorn.

The models (`ASR_MODELS`) load in the background when the app starts, so /health answers at
once and /ready turns 200 once every model is loaded and has transcribed a warm-up clip.
Run it with `asr serve` (`serve` below), which sets uvicorn's connection limits
(server/connections.py). Under `uvicorn server.app:create_app --factory` give them as flags:
`--http server.connections:HeaderTimeoutProtocol --h11-max-incomplete-event-size 65536
--timeout-keep-alive 5 --limit-concurrency 256` (uvicorn's default parser, httptools, buffers
headers of any size, and uvicorn alone has no deadline for a request head: a connection may
stay open without ever sending one). The header deadline is then 10 s whatever
ASR_HEADER_TIMEOUT_S says.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from asr.transcribe import Transcriber
from server.connections import uvicorn_config
from server.errors import install_error_handlers
from server.guard import RequestGuard
from server.metrics import Metrics, MetricsMiddleware
from server.pool import InferencePool
from server.routes import openai_compat, ops, transcribe, web
from server.service import ServedModel, ServiceState
from server.settings import Settings, load_settings

log = logging.getLogger(__name__)


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()
    pool = InferencePool(
        workers=settings.workers,
        max_batch_size=settings.max_batch_size,
        batch_wait_s=settings.batch_wait_ms / 1000,
        metrics=metrics,
    )
    metrics.queue_depth.set_function(lambda: pool.depth)
    decoders = ThreadPoolExecutor(settings.decode_workers, thread_name_prefix="asr-decode")
    state = ServiceState(settings=settings, metrics=metrics, pool=pool, decoders=decoders)

    app = FastAPI(
        title="asr",
        summary="Transformer encoder-decoder speech recognition",
        lifespan=lifespan,
        redirect_slashes=False,  # a redirect would be built from the client's Host header
    )
    app.state.service = state
    install_error_handlers(app)
    for router in (transcribe.router, openai_compat.router, ops.router, web.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    app.add_middleware(RequestGuard, state=state)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts refusals too
    return app


@asynccontextmanager
async def lifespan(app: FastAPI):
    state: ServiceState = app.state.service
    state.pool.start()
    loading = asyncio.create_task(load_models(state))
    yield
    loading.cancel()
    await state.pool.stop()
    state.decoders.shutdown(wait=False, cancel_futures=True)


async def load_models(state: ServiceState) -> None:
    """Load and warm up each model in turn; the first that fails leaves the service unready."""
    for served in state.models.values():
        try:
            await asyncio.to_thread(load_model, served, state.settings)
        except Exception:  # keep serving /health; the reason goes to the log, not to clients
            log.exception("could not load the model %s from %s", served.name, served.path)
            state.load_failed = True
            return
        log.info("model %s ready", served.name)


def load_model(served: ServedModel, settings: Settings) -> None:
    transcriber = load_and_warm_up(served.path, settings)
    served.created = weights_written(served.path)
    served.transcriber = transcriber  # last: the model is served from here on


def load_and_warm_up(model_dir: Path, settings: Settings) -> Transcriber:
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    transcriber = Transcriber.load(model_dir, device=settings.device, vtln_warps=settings.vtln_warps)
    clip = 0.01 * np.random.default_rng(0).standard_normal(transcriber.sample_rate)  # 1 s of noise
    transcriber.transcribe(clip.astype(np.float32))
    return transcriber


def weights_written(model_dir: Path) -> int:
    """When the weights of the model in `model_dir` were written (Unix seconds): `created` in /v1/models."""
    return int((model_dir / "model.safetensors").stat().st_mtime)


def serve(host: str = "127.0.0.1", port: int = 8000, models: Optional[Sequence[str]] = None) -> None:
    """Run the service with uvicorn; `models` (names or directories, the first the default)
    instead of `ASR_MODELS`; `ASR_*` environment variables set the rest (server/settings.py)."""
    overrides = {} if not models else {"models": tuple(models)}
    uvicorn_server(load_settings(**overrides), host=host, port=port).run()


def uvicorn_server(settings: Settings, **options) -> uvicorn.Server:
    """The service under uvicorn with the connection limits of `settings`; `options` (host, port,
    log_level, ...) go to uvicorn.Config. `serve` and the tests' live server run this."""
    return uvicorn.Server(uvicorn_config(create_app(settings), settings, **options))
