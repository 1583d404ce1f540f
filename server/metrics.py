"""Prometheus metrics, in a registry of the app's own (two apps in one process do not clash)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ENDPOINTS = frozenset({
    "/", "/transcribe", "/v1/audio/transcriptions", "/v1/audio/translations", "/v1/models", "/health", "/ready",
    "/metrics", "/docs", "/openapi.json",
})


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "asr_requests", "HTTP requests by endpoint, status code and model (empty: none chosen)",
            ["endpoint", "status", "model"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "asr_request_latency_seconds", "Time from request to the end of the response", ["endpoint", "model"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "asr_audio_seconds", "Seconds of audio transcribed", registry=self.registry
        )
        self.queue_depth = Gauge(
            "asr_queue_depth", "Transcriptions waiting for an inference worker", registry=self.registry
        )
        self.batch_size = Histogram(
            "asr_batch_size", "Requests decoded together in one inference call",
            buckets=(1, 2, 4, 8, 16, 32), registry=self.registry,
        )


def label_with_model(request: Request, name: str) -> None:
    """Count and time this request under the model `name` answers it with: a served model's name,
    never a client's raw field, so that the label has a few values only."""
    request.state.metrics_model = name  # request.state lives in the ASGI scope the middleware holds


class MetricsMiddleware:
    """Counts every response by endpoint, status and model (refusals included) and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
        status = 500  # if the app dies before answering
        start = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            model = scope.get("state", {}).get("metrics_model", "")  # see label_with_model
            self.metrics.requests.labels(endpoint, str(status), model).inc()
            self.metrics.latency.labels(endpoint, model).observe(time.perf_counter() - start)
