"""Fixtures for the REST API tests: the real app under uvicorn on a free loopback port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import AUTH

from provenir.api.app import create_app
from provenir.api.server import BackgroundServer
from provenir.api.settings import ApiSettings


@pytest.fixture()
def serve() -> Iterator[Callable[..., tuple[str, ApiSettings]]]:
    """``serve(output_dir, **settings)`` -> (base URL, settings) of a running server."""
    servers: list[BackgroundServer] = []

    def start(output_dir: Path, **fields: Any) -> tuple[str, ApiSettings]:
        settings = ApiSettings(output_dir=output_dir, **fields)
        server = BackgroundServer(create_app(settings)).start()
        servers.append(server)
        return server.url, settings

    yield start
    for server in servers:
        server.stop()


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    """An httpx client that sends the test token."""
    with httpx.Client(headers=AUTH, timeout=30) as c:
        yield c
