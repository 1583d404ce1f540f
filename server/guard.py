"""Refuse requests before their body is read: API key, upload size, readiness and load.

A pure ASGI middleware, so that nothing is parsed or buffered for a request it refuses:
- transcription routes need `Authorization: Bearer <key>` when a key is configured (401);
- a `Content-Length` above the limit is refused at once (413), and a body without one
  (chunked) is counted while it streams in and refused as soon as it passes the limit;
- transcription routes answer 503 while the model loads, and 503 + Retry-After when
  `queue_size` requests are already admitted, instead of queueing without bound.
Refusals carry `Connection: close`, so the server stops reading the rest of the body.
"""

from __future__ import annotations

import hmac
from typing import Optional

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_response
from server.service import ServiceState

TRANSCRIPTION_PATHS = frozenset({"/transcribe", "/v1/audio/transcriptions"})


class BodyTooLarge(Exception):
    """Raised into the app from `receive` when a streamed body passes the limit."""


class RequestGuard:
    def __init__(self, app: ASGIApp, state: ServiceState):
        self.app = app
        self.state = state
        self.settings = state.settings
        self.admitted = 0  # transcription requests being processed (single event loop: no lock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if scope["path"] not in TRANSCRIPTION_PATHS:
            await self.limited(scope, receive, send)
            return
        self.admitted += 1
        try:
            await self.limited(scope, receive, send)
        finally:
            self.admitted -= 1

    def refusal(self, scope: Scope):
        """The response refusing this request from its headers alone, or None to let it in."""
        headers = dict(scope["headers"])
        limit = self.settings.max_upload_bytes
        declared = headers.get(b"content-length", b"").decode("latin-1").strip()
        if declared and (not declared.isdigit() or int(declared) > limit):
            return too_large(limit)
        if scope["path"] not in TRANSCRIPTION_PATHS:
            return None
        close = {"Connection": "close"}
        if not self.authorized(headers.get(b"authorization")):
            return error_response(
                401, "missing or wrong API key: send `Authorization: Bearer <key>`",
                headers={"WWW-Authenticate": "Bearer", **close},
            )
        if self.state.load_error is not None:
            return error_response(503, f"the model failed to load: {self.state.load_error}", "model_error", close)
        retry = {"Retry-After": str(self.settings.retry_after_s), **close}
        if not self.state.ready:
            return error_response(503, "the model is still loading; retry shortly", "model_loading", retry)
        if self.admitted >= self.settings.queue_size:
            return error_response(503, "the server is busy (queue full); retry shortly", "server_busy", retry)
        return None

    def authorized(self, header: Optional[bytes]) -> bool:
        key = self.settings.api_key
        if key is None:
            return True
        expected = b"Bearer " + key.get_secret_value().encode()
        return header is not None and hmac.compare_digest(header.strip(), expected)

    async def limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a body counter; on overflow, replace whatever it answers by 413."""
        limit = self.settings.max_upload_bytes
        received = 0
        overflowed = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                overflowed = True
                raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if overflowed:
                return  # the app is reacting to BodyTooLarge; the 413 below answers instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not overflowed:
                raise
        if overflowed and not started:
            await too_large(limit)(scope, receive, send)


def too_large(limit: int):
    return error_response(
        413, f"upload is larger than the limit of {limit / 2**20:g} MiB", headers={"Connection": "close"}
    )
