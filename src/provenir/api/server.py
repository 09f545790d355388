"""Running the API under uvicorn: in the foreground (``provenir serve``) or on a background
thread (tests and ``bench/api.py`` talk to the real server over loopback).

::

    with BackgroundServer(create_app(settings)) as server:
        httpx.get(f"{server.url}/health")
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from types import TracebackType
from typing import Any

from provenir.api.settings import ApiSettings
from provenir.core.errors import ConfigError


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: ApiSettings, host: str, *, allow_unauthenticated: bool = False) -> None:
    """Refuse to serve the audit log and manifests beyond this machine without a token."""
    if not is_loopback(host) and not settings.auth_enabled and not allow_unauthenticated:
        raise ConfigError(
            f"refusing to bind {host} without a token: set PROVENIR_API_TOKEN (or pass "
            "--allow-unauthenticated to serve this machine's runs to anyone who can reach it)"
        )


def serve(
    settings: ApiSettings, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info"
) -> None:
    """Serve the API in the foreground until interrupted."""
    import uvicorn

    from provenir.api.app import create_app
    from provenir.api.limits import uvicorn_limits

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        server_header=False,
        **uvicorn_limits(settings),
    )


class BackgroundServer:
    """The app under a real uvicorn server on a free loopback port, on a daemon thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", *, log_level: str = "warning") -> None:
        import uvicorn

        from provenir.api.limits import uvicorn_limits

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))  # port 0: the OS picks a free one, no race with other tests
        self.host, self.port = self._sock.getsockname()[:2]
        # The same parser limits as `provenir serve` (the app's settings, else the defaults).
        settings = getattr(getattr(app, "state", None), "settings", None) or ApiSettings()
        config = uvicorn.Config(
            app, log_level=log_level, server_header=False, lifespan="on", **uvicorn_limits(settings)
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        """Start and wait until the server accepts requests."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask the server to exit and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
