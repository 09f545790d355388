"""Authentication, path traversal, CORS and error bodies, against the real server over loopback."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from api_support import AUTH, TOKEN, make_manifest

PROTECTED = [
    "/runs",
    "/runs/{rid}",
    "/manifests/{rid}",
    "/manifests/{rid}/verify",
    "/audit",
    "/audit/verify",
    "/templates",
    "/openapi.json",
]


def test_health_is_open_and_everything_else_needs_the_token(artifacts: Path, serve) -> None:
    rid = make_manifest(artifacts, 0).run_id
    url, _ = serve(artifacts, token=TOKEN)
    assert httpx.get(f"{url}/health").json() == {"status": "ok", "version": "0.1.0"}
    for path in PROTECTED:
        target = url + path.format(rid=rid)
        missing = httpx.get(target)
        assert missing.status_code == 401, path
        assert missing.json()["error"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        for bad in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer"):
            rejected = httpx.get(target, headers={"Authorization": bad})
            assert rejected.status_code == 401, (path, bad)
        accepted = httpx.get(target, headers=AUTH)
        assert accepted.status_code == 200, (path, accepted.text)
    # The scheme name is case-insensitive (RFC 7235); the token itself is not.
    assert httpx.get(f"{url}/runs", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    assert httpx.get(f"{url}/runs", headers={"Authorization": f"Bearer {TOKEN.upper()}"}).status_code == 401


def test_without_a_token_the_api_is_open(artifacts: Path, serve) -> None:
    url, _ = serve(artifacts)
    assert httpx.get(f"{url}/runs").status_code == 200
    assert httpx.get(f"{url}/docs").status_code == 200


def test_docs_ui_is_not_offered_when_a_token_is_required(artifacts: Path, serve, client) -> None:
    url, _ = serve(artifacts, token=TOKEN)
    assert client.get(f"{url}/docs").status_code == 404


def test_token_compare_is_constant_time(monkeypatch) -> None:
    import hmac

    from pydantic import SecretStr

    from provenir.api import auth

    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert auth.token_matches(TOKEN, SecretStr(TOKEN))
    assert not auth.token_matches("nope", SecretStr(TOKEN))
    assert len(calls) == 2


TRAVERSALS = [
    "/manifests/..%2F..%2Fetc%2Fpasswd",
    "/manifests/..%2f..%2fsecret.json",
    "/manifests/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/manifests/%2Fetc%2Fpasswd",
    "/manifests//etc/passwd",
    "/manifests/..",
    "/manifests/%2e%2e",
    "/manifests/../../etc/passwd",
    "/runs/..%2F..%2Fmanifests",
    "/runs/not-a-uuid",
    "/runs/123E4567-E89B-42D3-A456-426614174000",  # upper case is not the stored form
    "/runs/123e4567e89b42d3a456426614174000",
    "/manifests/123e4567-e89b-42d3-a456-426614174000.json",
    "/manifests/123e4567-e89b-42d3-a456-426614174000%00",
    "/manifests/%00/verify",
    "/manifests/C:%5Cwindows%5Cwin.ini",
    "/runs/%252e%252e%252f",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_and_malformed_ids_get_4xx_json(artifacts: Path, serve, client, path: str) -> None:
    secret = artifacts.parent / "secret.json"
    secret.write_text('{"secret": "do not serve"}')
    url, _ = serve(artifacts, token=TOKEN)
    # Send the path exactly as written (no client-side normalisation of ../ or %2F).
    response = client.send(client.build_request("GET", httpx.URL(url + path)))
    assert 400 <= response.status_code < 500, (path, response.status_code)
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert "do not serve" not in response.text
    assert "root:" not in response.text


def test_raw_socket_traversal_is_refused(artifacts: Path, serve) -> None:
    """A request line httpx would normalise, sent byte for byte."""
    import socket

    (artifacts.parent / "secret.json").write_text('{"secret": "do not serve"}')
    url, _ = serve(artifacts, token=TOKEN)
    host, port = url.removeprefix("http://").split(":")
    for target in ("/manifests/../../secret.json", "/manifests/../secret", "/runs/../../../etc/passwd"):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                f"GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        status = int(reply.split(b" ", 2)[1])
        assert 400 <= status < 500, (target, reply[:200])
        assert b"do not serve" not in reply


def test_errors_are_json_without_stack_traces(artifacts: Path, serve, client) -> None:
    url, _ = serve(artifacts, token=TOKEN)
    cases = {
        "/nope": (404, "not_found"),
        "/runs?limit=0": (422, "invalid_request"),
        "/runs?limit=abc": (422, "invalid_request"),
        "/runs?status=exploded": (422, "invalid_request"),
        "/runs?cursor=not-a-cursor": (400, "bad_request"),
        "/audit?since=yesterday": (422, "invalid_request"),
        "/audit?cursor=-1": (422, "invalid_request"),
        "/audit/verify?head=1:xyz": (422, "invalid_request"),
    }
    for path, (status, code) in cases.items():
        r = client.get(url + path)
        assert r.status_code == status, (path, r.text)
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"] == code, path
        assert r.json()["detail"]
        assert "Traceback" not in r.text
    r = client.post(f"{url}/runs")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert "GET" in r.headers["allow"]


def test_unexpected_errors_are_a_generic_500_logged_server_side(
    artifacts: Path, serve, client, monkeypatch, caplog
) -> None:
    from provenir.data.templates import TEMPLATE_REGISTRY

    def boom() -> list[str]:
        raise RuntimeError("internal detail /srv/secret/path")

    monkeypatch.setattr(TEMPLATE_REGISTRY, "list_names", boom)
    url, _ = serve(artifacts, token=TOKEN)
    with caplog.at_level(logging.ERROR, logger="provenir.api"):
        r = client.get(f"{url}/templates")
    assert r.status_code == 500
    assert r.json() == {
        "error": "internal_error",
        "detail": "internal server error; the cause was logged on the server",
    }
    assert "secret" not in r.text and "Traceback" not in r.text
    logged = "\n".join(rec.getMessage() + str(rec.exc_info) for rec in caplog.records)
    assert "GET /templates" in logged and "internal detail" in logged
    assert TOKEN not in logged
    # The server keeps serving after an unexpected error.
    assert client.get(f"{url}/runs").status_code == 200


def test_library_error_messages_do_not_reveal_server_paths(artifacts: Path, serve, client) -> None:
    rid = make_manifest(artifacts, 0).run_id
    path = artifacts / "manifests" / f"{rid}.json"
    path.write_text('{"run_id": "' + rid + '", "unexpected": 1}')
    url, _ = serve(artifacts, token=TOKEN)
    r = client.get(f"{url}/runs/{rid}")
    assert r.status_code == 409 and r.json()["error"] == "tampered"
    assert str(artifacts) not in r.text and str(artifacts.resolve()) not in r.text


def test_no_cors_by_default_and_only_listed_origins_when_configured(artifacts: Path, serve) -> None:
    url, _ = serve(artifacts, token=TOKEN)
    r = httpx.get(f"{url}/runs", headers={**AUTH, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    pre = httpx.options(
        f"{url}/runs",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in pre.headers

    url2, _ = serve(artifacts, token=TOKEN, cors_origins=["https://dash.example"])
    ok = httpx.get(f"{url2}/runs", headers={**AUTH, "Origin": "https://dash.example"})
    assert ok.headers["access-control-allow-origin"] == "https://dash.example"
    other = httpx.get(f"{url2}/runs", headers={**AUTH, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_responses_are_not_cached_or_sniffed(artifacts: Path, serve, client) -> None:
    url, _ = serve(artifacts, token=TOKEN)
    for path in ("/runs", "/nope"):
        r = client.get(url + path)
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert "server" not in httpx.get(f"{url}/health").headers
