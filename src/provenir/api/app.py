"""``create_app(settings)``: the read-only REST API over an artifacts folder and its audit log.

::

    from provenir.api.app import create_app
    from provenir.api.settings import load_settings

    app = create_app(load_settings(output_dir="artifacts"))   # then: uvicorn.run(app)

Endpoints: ``GET /health`` (open), ``/runs``, ``/runs/{run_id}``, ``/manifests/{run_id}``,
``/manifests/{run_id}/verify``, ``/audit``, ``/audit/verify``, ``/templates`` and
``/openapi.json`` (all behind the bearer token when one is configured), and the web console
at ``/ui`` (:mod:`provenir.api.console`: the same token, exchanged for a session cookie).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from provenir import __version__
from provenir.api.access_log import install_access_log_redaction
from provenir.api.auth import bearer_auth
from provenir.api.console import install_console
from provenir.api.errors import GuardMiddleware, install_error_handlers
from provenir.api.limits import HeaderLimitMiddleware
from provenir.api.routes import protected, public
from provenir.api.run_index import RunIndex
from provenir.api.settings import ApiSettings

logger = logging.getLogger("provenir.api")


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the FastAPI application for ``settings`` (default: ``artifacts/``, no token)."""
    settings = settings or ApiSettings()
    run_index = RunIndex(
        settings.resolved_index_path, settings.store.manifests_dir, max_age_s=settings.index_max_age_s
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # After the server configured its logging: no query-string credential reaches the access log.
        install_access_log_redaction()
        # Build the index before the first request so no client waits for it.
        run_index.refresh(force=True)
        yield
        run_index.close()

    app = FastAPI(
        title="Provenir",
        version=__version__,
        description="Read-only access to Provenir runs, manifests, evaluations and the audit log.",
        # The built-in schema and docs routes ignore dependencies; ours below honour the token.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.run_index = run_index
    install_error_handlers(app, settings.output_dir)

    auth = [Depends(bearer_auth(settings.token))] if settings.token is not None else []
    unauthorized = (
        {
            401: {
                "description": "Missing or invalid bearer token.",
                # Explicit media type: the HTML report route must still document a JSON 401.
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
            }
        }
        if settings.token is not None
        else {}
    )
    app.include_router(public)
    app.include_router(protected, dependencies=auth, responses=unauthorized)  # type: ignore[arg-type]
    install_console(app, settings)

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    if settings.token is None:
        # A browser cannot attach the token when Swagger UI fetches the schema, so the UI is only
        # offered on an open server.
        @app.get("/docs", include_in_schema=False)
        def docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="Provenir API")

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        if "*" in settings.cors_origins:
            logger.warning("CORS allows every origin ('*'): any web page may call this API")
        # Added before the guard so the guard stays outermost; read-only, bearer tokens, no cookies.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET"],
            allow_headers=["Authorization"],
            allow_credentials=False,
        )
    # Inside the guard (so a 431 gets the safe headers), outside everything else.
    app.add_middleware(HeaderLimitMiddleware, max_bytes=settings.max_header_bytes)
    app.add_middleware(GuardMiddleware)
    return app
