"""Secret redaction for anything Provenir writes to disk that a person did not choose to publish.

The audit log (and any other writer) passes values through :func:`redact` before they are
persisted. Two rules apply:

* a value stored under a *sensitive key* (``password``, ``api_key``, ``hf_token``,
  ``Authorization``...) is replaced whole by ``[REDACTED]``;
* inside any string, spans that match a known credential format (AWS, GitHub, GitLab, Slack,
  Stripe, OpenAI/Anthropic, Hugging Face, JWT, PEM private keys, bearer tokens, credentials in
  URLs, ``password=...`` assignments) become ``[REDACTED:<kind>]``; the rest of the text stays.

This module uses plain regular expressions on purpose: it runs on every audit write, so it must
be cheap and import nothing heavy. Entropy-based detection is deliberately absent here because
dataset and manifest hashes are high-entropy strings that must stay readable in the log; the
full detect-secrets scan lives in :mod:`provenir.governance.scanners`.

>>> redact({"hf_token": "hf_abc", "note": "key AKIAIOSFODNN7EXAMPLE"})
{'hf_token': '[REDACTED]', 'note': 'key [REDACTED:aws_access_key]'}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

# Each pattern either has a group named ``s`` (only that part is secret, e.g. the value of an
# assignment) or is secret as a whole match.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(rx))
    for kind, rx in (
        (
            "private_key",
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
            r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)",
        ),
        ("aws_access_key", r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
        ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9_]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
        ("gitlab_token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
        (
            "slack_token",
            r"\bxox[abposr]-(?:\d+-)+[A-Za-z0-9-]+|hooks\.slack\.com/services/[A-Za-z0-9+/_-]{20,}",
        ),
        ("stripe_key", r"\b[rsp]k_(?:live|test)_[0-9A-Za-z]{16,}"),
        ("openai_key", r"\bsk-(?:proj-|ant-[a-z0-9]+-|svcacct-)?[A-Za-z0-9_-]{20,}"),
        ("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}\b"),
        ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}"),
        ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
        ("pypi_token", r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}"),
        ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b"),
        ("sendgrid_key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"),
        ("bearer_token", r"(?i)\b(?:bearer|token)\s+(?P<s>[A-Za-z0-9._~+/=-]{16,})"),
        ("url_credentials", r"(?<=://)(?P<s>[^\s/:@]+:[^\s/@]+)(?=@)"),
        (
            "assignment",
            r"(?i)\b(?:password|passwd|pwd|passphrase|secret|api[_-]?key|access[_-]?key|secret[_-]?key"
            r"|client[_-]?secret|auth[_-]?token|access[_-]?token|token)\b[\"']?\s*[:=]\s*[\"']?"
            r"(?!\[REDACTED)(?P<s>[^\s\"',;}]{4,})",
        ),
    )
)

# Key names (split into words) whose values are secret whatever they look like.
_SENSITIVE_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "credential",
        "credentials",
        "authorization",
        "cookie",
        "apikey",
        "privatekey",
        "signature_key",
    }
)
# Joined forms, so ``api_key``, ``ApiKey`` and ``api-key`` all match.
_SENSITIVE_JOINED = (
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "clientsecret",
    "authtoken",
    "sessionkey",
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def is_sensitive_key(key: str) -> bool:
    """True when a mapping key names a credential (``hf_token``, ``apiKey``; not ``max_tokens``).

    Keys with spaces are labels (``"AWS Access Key": 3`` in a scan summary), not identifiers
    that hold a credential, so they are judged by their values' content only.
    """
    if any(ch.isspace() for ch in key):
        return False
    words = [w.lower() for w in _NON_ALNUM.split(_CAMEL.sub("_", key)) if w]
    if any(w in _SENSITIVE_WORDS for w in words):
        return True
    joined = "".join(words)
    return any(j in joined for j in _SENSITIVE_JOINED)


def redact_text(text: str) -> tuple[str, list[str]]:
    """Replace credential-looking spans in ``text``; return the new text and the kinds found."""
    kinds: list[str] = []
    for kind, pattern in _PATTERNS:
        if not pattern.search(text):
            continue

        def _sub(m: re.Match[str], kind: str = kind) -> str:
            kinds.append(kind)
            whole = m.group(0)
            if "s" in m.re.groupindex and m.group("s") is not None:
                start, end = m.start("s") - m.start(), m.end("s") - m.start()
                return whole[:start] + f"[REDACTED:{kind}]" + whole[end:]
            return f"[REDACTED:{kind}]"

        text = pattern.sub(_sub, text)
    return text, kinds


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like: dicts, lists, strings, numbers) with secrets removed."""
    if isinstance(value, str):
        return redact_text(value)[0]
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            key = redact_text(k)[0] if isinstance(k, str) else k
            if isinstance(k, str) and is_sensitive_key(k):
                out[key] = _redact_sensitive(v)
            else:
                out[key] = redact(v)
        return out
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _redact_sensitive(value: Any) -> Any:
    # Under a credential-named key every scalar is secret; containers are walked so that a
    # structure such as {"secret_counts": {"AWS": 1}} keeps its (non-secret) shape.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redact_sensitive(v) for v in value]
    return REDACTED
