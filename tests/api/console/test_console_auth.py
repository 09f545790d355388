"""Console sign-in: the token buys an HttpOnly, SameSite=Strict session cookie; every page sends a
strict CSP; POSTs need this server's Origin; an open server (no token) needs no sign-in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import make_manifest
from console_support import TOKEN
from fastapi.testclient import TestClient

from provenir.api.app import create_app
from provenir.api.console.session import COOKIE_NAME, SECURE_COOKIE_NAME, SessionStore
from provenir.api.settings import ApiSettings

ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture()
def guarded(fresh_store: Path) -> Iterator[TestClient]:
    make_manifest(fresh_store, 0)
    with TestClient(create_app(ApiSettings(output_dir=fresh_store, token=TOKEN))) as client:
        yield client


def _login(client: TestClient, token: str = TOKEN, headers: dict[str, str] | None = None):
    return client.post(
        "/ui/login",
        content=f"token={token}",
        headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or ORIGIN)},
        follow_redirects=False,
    )


def test_pages_redirect_to_the_login_form_until_signed_in(guarded: TestClient) -> None:
    for path in ("/ui", "/ui/audit", "/ui/runs/00000000-0000-4000-8000-000000000001"):
        response = guarded.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    fragment = guarded.get("/ui", headers={"HX-Request": "true"}, follow_redirects=False)
    assert fragment.status_code == 401 and fragment.headers["hx-redirect"] == "/ui/login"
    form = guarded.get("/ui/login")
    assert form.status_code == 200 and 'method="post" action="/ui/login"' in form.text
    # Static files are public code, not data.
    assert guarded.get("/ui/static/htmx.min.js").status_code == 200
    # The API itself still wants the bearer header; a console cookie is not an API credential.
    assert guarded.get("/runs").status_code == 401


def test_login_sets_an_opaque_httponly_strict_cookie_and_logout_ends_it(guarded: TestClient) -> None:
    response = _login(guarded)
    assert response.status_code == 303 and response.headers["location"] == "/ui"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/ui"} <= flags and "secure" not in flags
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert TOKEN not in cookie and len(session_id) >= 40
    assert guarded.get("/ui").status_code == 200
    assert guarded.get("/ui/audit").status_code == 200

    out = guarded.post("/ui/logout", headers=ORIGIN, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert "max-age=0" in out.headers["set-cookie"].lower() or "expires=" in out.headers["set-cookie"].lower()
    # The old id is dead on the server, even if a browser kept sending it.
    guarded.cookies.set(COOKIE_NAME, session_id, path="/ui")
    assert guarded.get("/ui", follow_redirects=False).status_code == 303


def test_a_wrong_token_or_a_foreign_origin_gets_no_session(guarded: TestClient) -> None:
    wrong = _login(guarded, "not-the-token-0123456789")
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    assert "not valid" in wrong.text
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://testserver/ui"},
    ):
        refused = _login(guarded, headers=headers)
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
    assert guarded.post("/ui/logout", headers={"Origin": "http://evil.example"}).status_code == 403


def test_the_bearer_header_also_opens_the_console(guarded: TestClient) -> None:
    assert guarded.get("/ui", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    wrong = guarded.get(
        "/ui", headers={"Authorization": "Bearer wrong-token-0123456789"}, follow_redirects=False
    )
    assert wrong.status_code == 303


def test_over_https_the_cookie_is_secure_with_the_host_prefix(fresh_store: Path) -> None:
    app = create_app(ApiSettings(output_dir=fresh_store, token=TOKEN))
    with TestClient(app, base_url="https://testserver") as client:
        response = _login(client, headers={"Origin": "https://testserver"})
        cookie = response.headers["set-cookie"]
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert cookie.startswith(f"{SECURE_COOKIE_NAME}=") and {"secure", "httponly", "path=/"} <= flags
        assert client.get("/ui").status_code == 200
        # An http page of the same host is another origin.
        assert _login(client, headers={"Origin": "http://testserver"}).status_code == 403


def test_an_open_server_needs_no_sign_in(fresh_store: Path) -> None:
    make_manifest(fresh_store, 0)
    with TestClient(create_app(ApiSettings(output_dir=fresh_store))) as client:
        assert client.get("/ui").status_code == 200
        assert client.get("/ui/login", follow_redirects=False).headers["location"] == "/ui"
        assert "Log out" not in client.get("/ui").text


def test_every_page_sends_a_strict_csp_and_holds_no_inline_script_or_style(guarded: TestClient) -> None:
    _login(guarded)
    run_id = "00000000-0000-4000-8000-000000000001"
    for path in (
        "/ui",
        f"/ui/runs/{run_id}",
        f"/ui/runs/{run_id}/lineage",
        "/ui/audit",
        "/ui/audit/verify",
        "/ui/login",
    ):
        response = guarded.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        html = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert "<style" not in html and not re.search(r"\sstyle=", html), path
        assert not re.search(r"https?://(?!testserver|www\.w3\.org)", html.split("</head>")[0]), path


def test_no_form_sends_the_token_in_a_url(guarded: TestClient) -> None:
    login_page = guarded.get("/ui/login").text
    form = re.search(r"<form[^>]*>.*?</form>", login_page.split("<main")[1], re.S)
    assert form is not None and 'method="post"' in form.group(0) and 'name="token"' in form.group(0)


def test_sessions_expire_and_are_capped() -> None:
    store = SessionStore(ttl_s=0.0)
    assert not store.valid(store.create())
    capped = SessionStore(max_sessions=2)
    first, second, third = capped.create(), capped.create(), capped.create()
    assert not capped.valid(first) and capped.valid(second) and capped.valid(third)
    assert not capped.valid(None) and not capped.valid("x" * 500)
