"""Request header size limit and credential-free access logs, against a real uvicorn server."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import AUTH, TOKEN, make_manifest

from provenir.api.access_log import redact_target
from provenir.api.app import create_app
from provenir.api.server import BackgroundServer
from provenir.api.settings import ApiSettings


def _raw_request(host: str, port: int, header_value_bytes: int) -> bytes:
    """Send one GET with an ``X-Padding`` header of the given size over a plain socket; the reply."""
    request = (
        f"GET /health HTTP/1.1\r\nHost: {host}\r\nX-Padding: {'a' * header_value_bytes}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=10) as sock:
        # The server may hang up before reading everything: a clean refusal.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def _status(reply: bytes) -> int | None:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None


def test_oversized_headers_are_refused_cleanly(artifacts: Path, serve) -> None:
    url, settings = serve(artifacts, token=TOKEN, max_header_bytes=4096)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    assert _status(_raw_request(host, int(port), 1000)) == 200
    # Over the limit, within the parser's buffer: the app's 431 with the JSON error body.
    reply = _raw_request(host, int(port), 6000)
    assert _status(reply) == 431 and b'"error":"headers_too_large"' in reply
    assert b"x-content-type-options: nosniff" in reply.lower()
    # Far over: the parser refuses before buffering it all (400 and close), never a 500.
    for size in (20_000, 2_000_000):
        status = _status(_raw_request(host, int(port), size))
        assert status in (400, 431, None), status
    assert httpx.get(f"{url}/health").status_code == 200  # the server is still serving


def test_the_header_limit_is_a_setting(artifacts: Path, serve) -> None:
    url, _ = serve(artifacts)
    big = {"X-Padding": "a" * 6000}
    assert httpx.get(f"{url}/health", headers=big).status_code == 200  # default limit: 8 KiB
    assert httpx.get(f"{url}/health", headers={"X-Padding": "a" * 9000}).status_code == 431
    with pytest.raises(ValueError):
        ApiSettings(max_header_bytes=10)


@pytest.fixture()
def access_log_server(artifacts: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """A server logging at info (access log on), its access-log messages, and the same records
    through uvicorn's own access formatter (which unpacks the record's arguments)."""
    from uvicorn.logging import AccessFormatter

    make_manifest(artifacts, 0)
    lines: list[str] = []
    formatted: list[str] = []
    formatter = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())
            formatted.append(formatter.format(record))

    server = BackgroundServer(create_app(ApiSettings(output_dir=artifacts, token=TOKEN)), log_level="info")
    handler = Collect()
    # After the server configured uvicorn's logging (which replaces handlers), before it starts.
    logging.getLogger("uvicorn.access").addHandler(handler)
    server.start()
    try:
        yield server.url, lines, formatted
    finally:
        server.stop()
        logging.getLogger("uvicorn.access").removeHandler(handler)


def test_query_string_credentials_never_reach_the_access_log(
    access_log_server: tuple[str, list[str], list[str]],
) -> None:
    url, lines, formatted = access_log_server
    secrets = ["s3cr3t-value-1", "s3cr3t-value-2", "s3cr3t-value-3", "s3cr3t%2Dvalue%2D4"]
    github = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    with httpx.Client(headers=AUTH) as client:
        client.get(f"{url}/runs?token={secrets[0]}&limit=5")
        client.get(f"{url}/runs", params={"access_token": secrets[1], "status": "completed"})
        client.get(f"{url}/health?api_key={secrets[2]}")
        client.get(f"{url}/runs?X-Auth-Token={secrets[3]}")
        client.get(f"{url}/runs?q={github}")
        client.get(f"{url}/runs?limit=3")
    logged = "\n".join(lines)
    printed = "\n".join(formatted)
    assert len(lines) == 6, lines
    for text in (logged, printed):
        for secret in [*secrets, github]:
            assert secret not in text
    assert "/runs?token=[REDACTED]&limit=5" in logged
    assert "access_token=[REDACTED]&status=completed" in logged
    assert "/health?api_key=[REDACTED]" in logged and "X-Auth-Token=[REDACTED]" in logged
    assert "q=[REDACTED:" in logged and "/runs?limit=3" in logged
    assert "GET /runs?token=[REDACTED]&limit=5 HTTP/1.1" in printed  # uvicorn's formatter still works


def test_redact_target_keeps_ordinary_parameters() -> None:
    assert redact_target("/runs") == "/runs"
    assert (
        redact_target("/runs?limit=5&max_new_tokens=3&token_f1=1")
        == "/runs?limit=5&max_new_tokens=3&token_f1=1"
    )
    assert redact_target("/runs?password=x&flag") == "/runs?password=[REDACTED]&flag"
    assert redact_target("/a?access%5Ftoken=x") == "/a?access%5Ftoken=[REDACTED]"
