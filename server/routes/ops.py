"""Operations: liveness, readiness (every model loaded and warmed up), Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.schemas import ERROR_RESPONSES, StatusOut
from server.service import service_state

router = APIRouter()


# HEAD too: load balancers probe with it (uvicorn sends no body); kept out of /docs as a repeat of GET
@router.get("/health", response_model=StatusOut, response_model_exclude_none=True, summary="The process is alive")
@router.head("/health", response_model=StatusOut, response_model_exclude_none=True, include_in_schema=False)
async def health() -> StatusOut:
    return StatusOut(status="ok")


@router.get("/ready", response_model=StatusOut, responses={503: ERROR_RESPONSES[503]}, summary="Ready to transcribe")
@router.head("/ready", response_model=StatusOut, include_in_schema=False)
async def ready(request: Request) -> StatusOut:
    state = service_state(request)
    unready = state.unready()
    if unready is not None:
        raise unready
    return StatusOut(status="ready", model=state.default_model.name, models=list(state.models))


@router.get("/metrics", summary="Prometheus metrics (text format)")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(service_state(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
