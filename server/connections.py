"""How uvicorn runs the service: limits on what one connection may hold.

uvicorn (0.54) on its own keeps a connection open for as long as the client likes before
its request head is complete (its keep-alive timer starts only after a first response),
and its default parser, httptools, accepts request headers of any size. `uvicorn_config`
runs the app on h11, whose incomplete-event limit bounds the request head, and with
`HeaderTimeoutProtocol`, which closes a connection that has not sent a complete request
head within `header_timeout_s` of opening or of its last response. The body then has its
own deadline (server/guard.py).
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.settings import Settings


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that do not send a request head in time."""

    header_timeout_s: float = Settings.model_fields["header_timeout_s"].default  # see `with_header_timeout`

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: Optional[asyncio.TimerHandle] = None
        self._wait_for_header()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._wait_for_header()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def _wait_for_header(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._close_if_no_request)

    def _close_if_no_request(self) -> None:
        """Time is up: close unless a request arrived meanwhile (it is then in the app's hands)."""
        waiting = self.cycle is None or self.cycle.response_complete
        if waiting and not self.transport.is_closing():
            self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    return type(HeaderTimeoutProtocol.__name__, (HeaderTimeoutProtocol,), {"header_timeout_s": seconds})


def uvicorn_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for `app` with the connection limits of `settings`;
    `options` (host, port, log_level, ...) go to uvicorn.Config as they are."""
    return uvicorn.Config(
        app,
        http=with_header_timeout(settings.header_timeout_s),
        h11_max_incomplete_event_size=settings.max_header_kb * 1024,
        timeout_keep_alive=settings.keep_alive_s,
        limit_concurrency=settings.max_connections,
        **options,
    )
