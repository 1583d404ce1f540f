"""Refuse what would tie the service up, before it costs anything: a pure ASGI middleware.

From the headers alone, before any of the body is read:
- request headers above `max_header_kb`: 431 (uvicorn's h11 limit only bounds a head still
  incomplete; one arriving whole in a single read gets here);
- a `Content-Length` above the upload limit: 413;
- on transcription routes and every `/v1/` route: a missing or wrong API key (401);
- on transcription routes: the model not ready (503), or `max_uploads` bodies already
  arriving (503 + Retry-After).
While the body streams in (counted as it comes, never buffered here):
- past the upload limit (chunked bodies have no `Content-Length`): 413;
- not complete `body_timeout_s` after the headers (a stalled or trickling client): 408;
- complete: a transcription request trades its upload place for one of `queue_size` slots,
  held until it is answered; with every slot taken, 503 + Retry-After. So a slow upload
  holds only an upload place, never a slot that a request ready to be transcribed needs.
A refusal found while the body streams in is raised into the app from `receive`; whatever
the app answers then is dropped and the guard answers instead. Refusals carry
`Connection: close`, so the server stops reading the rest of the body.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Callable, Optional

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_response
from server.service import ServiceState

TRANSCRIPTION_PATHS = frozenset({"/transcribe", "/v1/audio/transcriptions", "/v1/audio/translations"})
CLOSE = {"Connection": "close"}


def needs_key(path: str) -> bool:
    """Transcription routes, and the whole OpenAI API (`/v1/`), as OpenAI's needs its key."""
    return path in TRANSCRIPTION_PATHS or path.startswith("/v1/")


class Refused(Exception):
    """Raised into the app from `receive`: the guard answers `response` instead of the app."""

    def __init__(self, response: Response):
        self.response = response


class RequestGuard:
    def __init__(self, app: ASGIApp, state: ServiceState):
        self.app = app
        self.state = state
        self.settings = state.settings
        # transcription requests (single event loop: no lock)
        self.uploading = 0  # whose body is still arriving
        self.admitted = 0  # whose body is in, being decoded or transcribed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if scope["path"] not in TRANSCRIPTION_PATHS:
            await self.guarded(scope, receive, send, on_body=lambda: None)
            return
        admission = Admission(self)
        try:
            await self.guarded(scope, receive, send, on_body=admission.body_received)
        finally:
            admission.release()

    def refusal(self, scope: Scope) -> Optional[Response]:
        """The response refusing this request from its headers alone, or None to let it in."""
        header_bytes = sum(len(name) + len(value) + 4 for name, value in scope["headers"])  # "name: value\r\n"
        if header_bytes > self.settings.max_header_kb * 1024:
            message = f"request headers are larger than the limit of {self.settings.max_header_kb} KiB"
            return error_response(431, message, headers=CLOSE)
        headers = dict(scope["headers"])
        limit = self.settings.max_upload_bytes
        declared = headers.get(b"content-length", b"").decode("latin-1").strip()
        if declared and (not declared.isdigit() or int(declared) > limit):
            return too_large(limit)
        path = scope["path"]
        if needs_key(path) and not self.authorized(headers.get(b"authorization")):
            return error_response(
                401, "missing or wrong API key: send `Authorization: Bearer <key>`",
                headers={"WWW-Authenticate": "Bearer", **CLOSE}, code="invalid_api_key",
            )
        if path not in TRANSCRIPTION_PATHS:
            return None
        unready = self.state.unready()
        if unready is not None:
            return unready.response(CLOSE)
        if self.uploading >= self.settings.max_uploads:
            return busy(self.settings.retry_after_s, "too many uploads in progress")
        return None

    def authorized(self, header: Optional[bytes]) -> bool:
        """`Authorization: Bearer <key>`, the scheme in any letter case (RFC 9110, 11.1)."""
        key = self.settings.api_key
        if key is None:
            return True
        scheme, _, token = (header or b"").strip().partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), key.get_secret_value().encode())

    async def guarded(self, scope: Scope, receive: Receive, send: Send, on_body: Callable[[], None]) -> None:
        """Run the app on a `Body`; if it refuses the request, answer with its refusal instead."""
        body = Body(self.settings.max_upload_bytes, self.settings.body_timeout_s, on_body)
        refused: Optional[Refused] = None
        started = False

        async def guarded_receive() -> Message:
            nonlocal refused
            try:
                return await body.receive(receive)
            except Refused as exc:
                refused = exc
                raise

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused is not None:
                return  # the app is reacting to the refusal; the guard answers below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if refused is None:
                raise
        if refused is not None and not started:
            await refused.response(scope, receive, send)


class Body:
    """A request body as the app reads it: counted, under a deadline, `on_complete()` at its end."""

    def __init__(self, limit: int, timeout_s: float, on_complete: Callable[[], None]):
        self.limit = limit
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.on_complete = on_complete
        self.received = 0
        self.complete = False

    async def receive(self, receive: Receive) -> Message:
        if self.complete:
            return await receive()  # after the body only a disconnect can come: no deadline
        try:
            message = await asyncio.wait_for(receive(), self.deadline - time.monotonic())
        except TimeoutError:
            message = f"the request body did not arrive within {self.timeout_s:g} s; send it faster or a smaller file"
            raise Refused(error_response(408, message, headers=CLOSE)) from None
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            raise Refused(too_large(self.limit))
        if message["type"] == "http.request" and not message.get("more_body", False):
            self.complete = True
            self.on_complete()
        return message


class Admission:
    """One transcription request's place: an upload place from its headers until its body is in,
    then a queue slot until it is answered."""

    def __init__(self, guard: RequestGuard):
        self.guard = guard
        self.place: Optional[str] = "uploading"
        guard.uploading += 1

    def body_received(self) -> None:
        """Trade the upload place for a queue slot; raise `Refused` (503) when none is free."""
        guard = self.guard
        self.release()
        if guard.admitted >= guard.settings.queue_size:
            raise Refused(busy(guard.settings.retry_after_s, "queue full"))
        guard.admitted += 1
        self.place = "admitted"

    def release(self) -> None:
        if self.place == "uploading":
            self.guard.uploading -= 1
        elif self.place == "admitted":
            self.guard.admitted -= 1
        self.place = None


def too_large(limit: int) -> Response:
    return error_response(413, f"upload is larger than the limit of {limit / 2**20:g} MiB", headers=CLOSE)


def busy(retry_after_s: int, why: str) -> Response:
    return error_response(
        503, f"the server is busy ({why}); retry shortly", "server_busy",
        {"Retry-After": str(retry_after_s), **CLOSE},
    )
