"""Request size limits: headers larger than ``ApiSettings.max_header_bytes`` are refused.

Two layers, because the HTTP parser buffers a request's headers before the app sees them:

* the server runs uvicorn's ``h11`` parser with ``h11_max_incomplete_event_size`` set to twice
  the limit, so a connection that sends more request line and headers than that is answered
  ``400`` and closed before more is buffered (the ``httptools`` parser has no such bound, so it
  is not used);
* :class:`HeaderLimitMiddleware` answers ``431 Request Header Fields Too Large`` with the JSON
  error body to a request whose headers, parsed, exceed the limit itself (any ASGI server).
"""

from __future__ import annotations

from typing import Any

from provenir.api.errors import ASGIApp, Receive, Scope, Send, error_response
from provenir.api.settings import ApiSettings

#: Bytes per header line beyond its name and value (``": "`` and CRLF), as sent on the wire.
_LINE_OVERHEAD = 4


def header_bytes(scope: Scope) -> int:
    """Size of a request's headers as they were sent (names, values, separators)."""
    return sum(len(name) + len(value) + _LINE_OVERHEAD for name, value in scope.get("headers", ()))


class HeaderLimitMiddleware:
    """Answers 431 to a request whose headers exceed ``max_bytes``; the app never runs for it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and header_bytes(scope) > self.max_bytes:
            response = error_response(
                431,
                "headers_too_large",
                f"request headers exceed {self.max_bytes} bytes",
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def uvicorn_limits(settings: ApiSettings) -> dict[str, Any]:
    """uvicorn ``Config`` options that bound what one request may make the server buffer."""
    return {"http": "h11", "h11_max_incomplete_event_size": 2 * settings.max_header_bytes}
