"""Bearer-token authentication: when a token is configured, every endpoint but ``/health`` needs
``Authorization: Bearer <token>``.

The comparison is :func:`hmac.compare_digest` so response time does not reveal how much of a
guess was right. Neither the expected nor the presented token is ever logged or echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from provenir.api.errors import ApiError

_CHALLENGE = {"WWW-Authenticate": "Bearer"}

BEARER_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="The token configured with PROVENIR_API_TOKEN (or `token:` in the API config file).",
)


def token_matches(presented: str, expected: SecretStr) -> bool:
    """Constant-time equality of two tokens (compared as UTF-8 bytes)."""
    return hmac.compare_digest(presented.encode("utf-8"), expected.get_secret_value().encode("utf-8"))


def bearer_auth(token: SecretStr) -> Callable[..., Coroutine[Any, Any, None]]:
    """A FastAPI dependency that rejects requests without the right bearer token (401)."""

    async def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)],
    ) -> None:
        if credentials is None:
            raise ApiError(
                401, "unauthorized", "missing bearer token: send 'Authorization: Bearer <token>'", _CHALLENGE
            )
        if not token_matches(credentials.credentials, token):
            raise ApiError(401, "unauthorized", "invalid bearer token", _CHALLENGE)

    return require_token
