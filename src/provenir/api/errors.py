"""Errors as JSON: every failure the API returns is ``{"error": <code>, "detail": <message>}``.

Provenir errors map to 4xx by type; request validation to 422; anything unexpected to a generic
500 whose cause is logged server-side only (no stack trace, path or secret reaches the client).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from provenir.core.errors import (
    AuditTamperedError,
    ManifestError,
    ManifestTamperedError,
    ProvenirError,
)

logger = logging.getLogger("provenir.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_request",
}
INTERNAL_ERROR_DETAIL = "internal server error; the cause was logged on the server"


class ApiError(Exception):
    """An error the API answers on purpose, with its HTTP status and error code."""

    def __init__(self, status_code: int, error: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.headers = headers


def error_response(
    status_code: int, error: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one error body shape."""
    return JSONResponse({"error": error, "detail": detail}, status_code=status_code, headers=headers)


def _provenir_status(exc: ProvenirError) -> tuple[int, str]:
    # Stored data found damaged is a conflict with the server's state, not a bad request.
    if isinstance(exc, ManifestTamperedError | AuditTamperedError):
        return 409, "tampered"
    if isinstance(exc, ManifestError):
        return 404, "not_found"
    return 400, "bad_request"


def install_error_handlers(app: FastAPI, artifacts_root: Path) -> None:
    """Register the handlers that turn every error into the JSON error body."""
    roots = sorted({str(artifacts_root), str(artifacts_root.resolve())}, key=len, reverse=True)

    def scrub(message: str) -> str:
        # Messages from the library name files by their server path; clients see it relative.
        for root in roots:
            message = message.replace(root, "<artifacts>")
        return " ".join(message.split())

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status_code, exc.error, exc.detail, exc.headers)

    async def on_provenir_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProvenirError)
        status, code = _provenir_status(exc)
        return error_response(status, code, scrub(str(exc)))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # Name the parameter and the rule; the rejected value is not echoed (it may be anything).
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code < 500 else "internal_error")
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        # Keep headers such as Allow (405) and WWW-Authenticate.
        return error_response(exc.status_code, code, detail, dict(exc.headers or {}))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(ProvenirError, on_provenir_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


class GuardMiddleware:
    """Outermost layer: a generic JSON 500 for unexpected exceptions, and safe response headers.

    Starlette's own last-resort handler re-raises after answering; catching here instead keeps
    the one server-side log line ours (method and path only: never headers, so never the token).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"cache-control" not in names:
                    # Responses may carry audit data behind a token: no shared cache keeps them.
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("unhandled error serving %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # too late to answer cleanly; the server closes the connection
            response = error_response(500, "internal_error", INTERNAL_ERROR_DETAIL)
            await response(scope, receive, send_with_headers)
