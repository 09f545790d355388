"""Credentials in query strings never reach the server's logs.

The API authenticates with ``Authorization: Bearer``, but a client (or a proxy, or a browser
link) may still put a secret in the URL: ``/runs?token=...``, ``?access_token=...``,
``?api_key=...``. uvicorn's access log writes the whole request target, so each access-log
record goes through :class:`QueryCredentialFilter` first: the value of every query parameter
whose name is a credential key (:func:`provenir.core.credentials.is_credential_key`, the rule
the audit log uses) becomes ``[REDACTED]``, and any credential-shaped value under another name
(``?q=ghp_...``) is masked by format (:func:`~provenir.core.credentials.redact_credentials`).
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

from provenir.core.credentials import is_credential_key, redact_credentials
from provenir.core.redaction import REDACTED

#: The logger uvicorn (and gunicorn's uvicorn worker) writes one line per request to.
ACCESS_LOGGER = "uvicorn.access"


def redact_target(target: str) -> str:
    """A request target (``/path?query``) with credential query values redacted.

    >>> redact_target("/runs?limit=5&access_token=abc")
    '/runs?limit=5&access_token=[REDACTED]'
    """
    path, sep, query = target.partition("?")
    if not sep:
        return target
    pairs = []
    for pair in query.split("&"):
        key, eq, value = pair.partition("=")
        if eq and is_credential_key(unquote_plus(key)):
            pairs.append(f"{key}={REDACTED}")
            continue
        masked, kinds = redact_credentials(unquote_plus(value))
        pairs.append(f"{key}={masked}" if kinds else pair)
    return f"{path}?{'&'.join(pairs)}"


class QueryCredentialFilter(logging.Filter):
    """Rewrites every string argument of an access-log record with :func:`redact_target`.

    The arguments are rewritten in place (their number and types kept), so uvicorn's own
    formatters, which unpack them, still work; every handler sees the redacted record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_target(a) if isinstance(a, str) and "?" in a else a for a in record.args
            )
        return True


def install_access_log_redaction() -> None:
    """Attach :class:`QueryCredentialFilter` to uvicorn's access logger (once per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, QueryCredentialFilter) for f in logger.filters):
        logger.addFilter(QueryCredentialFilter())
