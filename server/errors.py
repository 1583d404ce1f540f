"""Every error leaves the service as JSON `{"error": {"message", "type", "param", "code"}}`.

This is the shape of OpenAI API errors, so the `openai` client shows our message and gives
`e.type`, `e.param` (the request field at fault, or null) and `e.code` (a stable reason a
program can test, such as `audio_too_short` or `model_not_found`, or null). `type` is the
class of the error: `invalid_request_error` for input a client got wrong (a bad field, bad
audio, an unknown model), else one per status. Bad input is always a 4xx; a 5xx means a bug
(500) or a deliberate refusal under load (503).
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

INVALID_REQUEST = "invalid_request_error"
STATUS_TYPES = {
    400: INVALID_REQUEST,
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
    """A refusal with a status, an error type and a message a client can act on; `param` names
    the request field at fault and `code` is a specific reason, where there is one."""

    def __init__(
        self, status: int, message: str, type: Optional[str] = None, headers: Optional[dict] = None,
        *, param: Optional[str] = None, code: Optional[str] = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or STATUS_TYPES.get(status, "error")
        self.headers = headers
        self.param = param
        self.code = code

    def body(self) -> dict:
        return error_body(self.message, self.type, self.param, self.code)

    def response(self, headers: Optional[dict] = None) -> JSONResponse:
        """This error as a response; `headers` are added to its own."""
        return JSONResponse(self.body(), status_code=self.status, headers={**(self.headers or {}), **(headers or {})})


def error_body(message: str, type: str, param: Optional[str] = None, code: Optional[str] = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(
    status: int, message: str, type: Optional[str] = None, headers: Optional[dict] = None,
    *, param: Optional[str] = None, code: Optional[str] = None,
) -> JSONResponse:
    return ApiError(status, message, type, headers, param=param, code=code).response()


def audio_error_code(exc: AudioError) -> str:
    """`AudioTooLongError` -> "audio_too_long"."""
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def validation_error(exc: RequestValidationError) -> ApiError:
    """One line per problem (`file: Field required; beam_size: Input should be ...`); `param` is
    the first field at fault, as the API names it (`timestamp_granularities`, not `...[]`)."""
    problems = [(where(err), err) for err in exc.errors()]
    message = "; ".join(f"{w}: {e.get('msg', 'invalid')}" if w else e.get("msg", "invalid") for w, e in problems)
    at_fault = [(w, e) for w, e in problems if w]
    if not at_fault:  # e.g. a body that is not multipart
        return ApiError(400, message or "invalid request", INVALID_REQUEST)
    field, err = at_fault[0]
    code = "missing_required_parameter" if err.get("type") == "missing" else "invalid_value"
    return ApiError(400, message, INVALID_REQUEST, param=field.split(".")[0].removesuffix("[]"), code=code)


def where(err: dict) -> str:
    """The field an error of pydantic is about: `beam_size`, `timestamp_granularities[].0`."""
    return ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "form"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(AudioError)
    async def _audio_error(request: Request, exc: AudioError) -> JSONResponse:
        status = 413 if isinstance(exc, AudioTooLongError) else 400
        return error_response(status, str(exc), INVALID_REQUEST, param="file", code=audio_error_code(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc).response()

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; the request was not processed", "internal_error")
