"""The web console: ``provenir serve`` shows runs, lineage, comparisons and the audit log at ``/ui``.

Server-rendered Jinja2 pages (``templates/``) made a little livelier by htmx, which ships in
``static/`` (see ``static/NOTICE``; nothing is fetched from another site). The console is a
reader like the API, in the same app, behind the same token: see
:mod:`provenir.api.console.session` for how a browser signs in, and
:mod:`provenir.api.console.pages` for what each page reads.

::

    from provenir.api.app import create_app

    app = create_app(settings)          # the console is part of every app: open /ui
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from provenir.api.console.pages import (
    ConsoleState,
    SignInRequired,
    pages,
    public,
    sign_in_redirect,
    template_environment,
)
from provenir.api.console.session import SessionStore
from provenir.api.settings import ApiSettings

STATIC_DIR = Path(__file__).with_name("static")


def install_console(app: FastAPI, settings: ApiSettings) -> None:
    """Add the console's pages, its sign-in and its static files to ``app``."""
    app.state.console = ConsoleState(settings, SessionStore(), template_environment())
    app.add_exception_handler(SignInRequired, sign_in_redirect)
    app.include_router(public)
    app.include_router(pages)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="console-static")
