"""Console sign-in: the API token, typed once into a form, buys an opaque session cookie.

A browser cannot attach ``Authorization: Bearer`` to a link, and a token in a URL ends up in
histories and logs, so the console trades the token for a session: ``POST /ui/login`` checks it
(constant time, :func:`provenir.api.auth.token_matches`) and sets a cookie holding a random
session id. The server keeps only the id's SHA-256 and its expiry, in memory: a restart or
``POST /ui/logout`` ends every session it covers, and neither the token nor anything derived
from it ever reaches the browser.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page
sends it), scoped to ``/ui`` and ``Secure`` when the request came over https. The two
state-changing requests (log in, log out) also need an ``Origin`` header naming this server,
which every browser sends with a form POST, so a cross-site form cannot drive them.

Without a configured token the console is open, exactly as the API is (and ``provenir serve``
refuses to bind beyond loopback without one).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi import Request
from pydantic import SecretStr

from provenir.api.auth import token_matches

COOKIE_NAME = "provenir_session"
#: The same cookie under https, with the ``__Host-`` prefix browsers enforce (Secure, path /).
SECURE_COOKIE_NAME = "__Host-provenir_session"
#: How long a session lasts after sign-in (seconds): a working day.
SESSION_TTL_S = 8 * 3600
#: Live sessions kept at most; the oldest go first (each sign-in adds one).
MAX_SESSIONS = 1000


@dataclass
class SessionStore:
    """Live sessions of one server process, by the SHA-256 of their id."""

    ttl_s: float = SESSION_TTL_S
    max_sessions: int = MAX_SESSIONS
    _expiry: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode("utf-8")).hexdigest()

    def create(self) -> str:
        """A new session id (256 random bits); only its hash is kept."""
        session_id = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._expiry = {k: t for k, t in self._expiry.items() if t > now}
            while len(self._expiry) >= self.max_sessions:
                self._expiry.pop(min(self._expiry, key=self._expiry.__getitem__))
            self._expiry[self._key(session_id)] = now + self.ttl_s
        return session_id

    def valid(self, session_id: str | None) -> bool:
        """True for an id this store issued that has not expired or been ended."""
        if not session_id or len(session_id) > 128:
            return False
        with self._lock:
            expiry = self._expiry.get(self._key(session_id))
        return expiry is not None and expiry > time.monotonic()

    def end(self, session_id: str | None) -> None:
        """Forget a session (logging out); unknown ids are ignored."""
        if session_id:
            with self._lock:
                self._expiry.pop(self._key(session_id), None)


def is_https(request: Request) -> bool:
    """True when the request reached the server over https (as uvicorn saw it)."""
    return request.url.scheme == "https"


def cookie_name(request: Request) -> str:
    """The session cookie's name for this request's scheme."""
    return SECURE_COOKIE_NAME if is_https(request) else COOKIE_NAME


def session_id_of(request: Request) -> str | None:
    """The session id the browser sent, if any."""
    return request.cookies.get(cookie_name(request))


def signed_in(request: Request, token: SecretStr | None, sessions: SessionStore) -> bool:
    """Whether the request may read the console: no token configured, a live session cookie,
    or (for scripts) the API's own ``Authorization: Bearer`` header."""
    if token is None:
        return True
    if sessions.valid(session_id_of(request)):
        return True
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(presented) and token_matches(presented, token)


def same_origin(request: Request) -> bool:
    """True when the ``Origin`` header names this server (scheme, host and port).

    A browser sends ``Origin`` with every form POST; a request without one is refused too, so
    only a page of this server can log in or out.
    """
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.scheme == request.url.scheme and parts.netloc.lower() == host.lower() and not parts.path
