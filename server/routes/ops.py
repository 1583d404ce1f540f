"""Operations: liveness, readiness (model loaded and warmed up), Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.errors import ApiError
from server.schemas import ERROR_RESPONSES, StatusOut
from server.service import service_state

router = APIRouter()


@router.get("/health", response_model=StatusOut, response_model_exclude_none=True, summary="The process is alive")
async def health() -> StatusOut:
    return StatusOut(status="ok")


@router.get("/ready", response_model=StatusOut, responses={503: ERROR_RESPONSES[503]}, summary="Ready to transcribe")
async def ready(request: Request) -> StatusOut:
    state = service_state(request)
    if state.load_error is not None:
        raise ApiError(503, f"the model failed to load: {state.load_error}", "model_error")
    if not state.ready:
        raise ApiError(503, "the model is still loading", "model_loading", {"Retry-After": "5"})
    return StatusOut(status="ready", model=state.transcriber.model_name)


@router.get("/metrics", summary="Prometheus metrics (text format)")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(service_state(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
