"""Every error leaves the service as JSON `{"error": {"message": ..., "type": ...}}`.

This is the shape of OpenAI API errors, so the `openai` client shows our message. Bad
input is always a 4xx; a 5xx means a bug (500) or a deliberate refusal under load (503).
"""

from __future__ import annotations

import logging
import re
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from asr.audio import AudioError, AudioTooLongError

log = logging.getLogger(__name__)

STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    431: "headers_too_large",
    503: "service_unavailable",
}


class ApiError(Exception):
    """A refusal with a status, an error type and a message a client can act on."""

    def __init__(self, status: int, message: str, type: Optional[str] = None, headers: Optional[dict] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or STATUS_TYPES.get(status, "error")
        self.headers = headers

    def response(self, headers: Optional[dict] = None) -> JSONResponse:
        """This error as a response; `headers` are added to its own."""
        return error_response(self.status, self.message, self.type, {**(self.headers or {}), **(headers or {})})


def error_response(status: int, message: str, type: Optional[str] = None, headers: Optional[dict] = None) -> JSONResponse:
    body = {"error": {"message": message, "type": type or STATUS_TYPES.get(status, "error")}}
    return JSONResponse(body, status_code=status, headers=headers)


def audio_error_type(exc: AudioError) -> str:
    """`AudioTooLongError` -> "audio_too_long"."""
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def describe_validation(exc: RequestValidationError) -> str:
    """One line per problem: `file: Field required; beam_size: Input should be ...`."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "form"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", "invalid"))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(AudioError)
    async def _audio_error(request: Request, exc: AudioError) -> JSONResponse:
        status = 413 if isinstance(exc, AudioTooLongError) else 400
        return error_response(status, str(exc), audio_error_type(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, describe_validation(exc))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; the request was not processed", "internal_error")
