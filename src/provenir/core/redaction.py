"""Secret redaction for anything Provenir writes to disk that a person did not choose to publish.

The audit log (and any other writer) passes values through :func:`redact` before they are
persisted. Two rules apply, both from :mod:`provenir.core.credentials`:

* a value stored under a *credential key name* (``password``, ``api_key``, ``hf_token``,
  ``Authorization``...; :func:`~provenir.core.credentials.is_credential_key`, matched on
  the whole normalised name, never a substring: ``token_f1`` and ``max_new_tokens`` stay) is
  replaced whole by ``[REDACTED]``;
* inside any string, spans that match a credential format (AWS, GitHub, GitLab, Slack, Stripe,
  OpenAI, Anthropic, Google, Azure, Hugging Face, JWT, PEM private keys, bearer tokens,
  credentials in URLs, ``password=...`` assignments) become ``[REDACTED:<kind>]``; the rest of
  the text stays.

Text that will be cut to a length must be redacted first (:func:`redact_then_truncate`): a
cut through a key leaves a fragment no pattern recognises.

>>> redact({"hf_token": "hf_abc", "token_f1": 0.5, "note": "key AKIAIOSFODNN7EXAMPLE"})
{'hf_token': '[REDACTED]', 'token_f1': 0.5, 'note': 'key [REDACTED:aws_access_key]'}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provenir.core.credentials import is_credential_key, redact_credentials

REDACTED = "[REDACTED]"


def redact_text(text: str) -> tuple[str, list[str]]:
    """Replace credential-looking spans in ``text``; return the new text and the kinds found."""
    return redact_credentials(text)


def redact_then_truncate(text: str, limit: int) -> str:
    """``text`` redacted, *then* cut to ``limit`` characters (never the other way round)."""
    return redact_credentials(text)[0][:limit]


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like: dicts, lists, strings, numbers) with secrets removed."""
    if isinstance(value, str):
        return redact_text(value)[0]
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            key = redact_text(k)[0] if isinstance(k, str) else k
            if isinstance(k, str) and is_credential_key(k):
                out[key] = _redact_sensitive(v)
            else:
                out[key] = redact(v)
        return out
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _redact_sensitive(value: Any) -> Any:
    # Under a credential-named key every scalar is secret; containers are walked so that a
    # structure such as {"credentials": {"count": 1}} keeps its (non-secret) shape.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redact_sensitive(v) for v in value]
    return REDACTED
