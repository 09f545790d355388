"""CachedJudge: a SHA-256 keyed disk cache in front of any judge.

Key = SHA-256 of the canonical JSON of (cache format, the inner judge's identity: class, model,
prompt-template versions and settings, the method, the inputs). Layout: ``<cache_dir>/<k[:2]>/<k>.json``.

* Safe across processes: each entry is written atomically (temp file + rename), so a reader
  sees a whole entry or none; two processes racing on one key both write a valid verdict.
* Only successful verdicts are stored; a call that raises leaves no trace.
* No secrets: identities are built from whitelisted fields (never an API key or a URL), and an
  identity that contains the value of a ``*_API_KEY`` / ``*_TOKEN`` / ``*_SECRET`` environment
  variable is refused.
* A damaged entry (hand-edited, foreign file) is treated as a miss and overwritten.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from provenir.core.atomic import atomic_write_json
from provenir.core.errors import JudgeError
from provenir.core.hashing import canonical_json, sha256_bytes
from provenir.eval.judge.batch import pairwise_batch_method
from provenir.eval.judge.verdict import Preference, RubricResult, validate_criteria

log = logging.getLogger(__name__)

_V = TypeVar("_V", Preference, RubricResult)

CACHE_FORMAT = 1
_SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_KEY")


def default_cache_dir() -> Path:
    """Default cache folder.

    ``$PROVENIR_CACHE_DIR/judge``, else ``$XDG_CACHE_HOME/provenir/judge``, else ``~/.cache/provenir/judge``.
    """
    if root := os.environ.get("PROVENIR_CACHE_DIR"):
        return Path(root).expanduser() / "judge"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "provenir" / "judge"


@dataclass
class CacheStats:
    """Hit/miss counters of one CachedJudge (thread-safe)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    damaged: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)


class CachedJudge:
    """Wrap ``inner`` so each distinct judgment is computed once and then read from disk.

    Args:
        inner: any :class:`LLMJudge`. Its ``cache_identity()`` (if any) names what changes its
            verdicts; otherwise its class name and ``model`` attribute are used.
        cache_dir: where entries live; default :func:`default_cache_dir`.

    Example::

        judge = CachedJudge(AnthropicJudge(model="claude-haiku-4-5-20251001"),
                            cache_dir="artifacts/judge_cache")
        judge.score_pairwise("What is LoRA?", response_a, response_b)   # HTTP on first call only
        judge.stats.hits, judge.stats.misses
    """

    def __init__(self, inner: Any, cache_dir: str | os.PathLike[str] | None = None) -> None:
        if not callable(getattr(inner, "score_pairwise", None)):
            raise JudgeError(f"CachedJudge needs a judge (with score_pairwise), got {type(inner).__name__}")
        self.inner = inner
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.stats = CacheStats()
        self._identity = self._checked_identity()

    @property
    def model(self) -> str | None:
        """The inner judge's model."""
        return getattr(self.inner, "model", None)

    def cache_identity(self) -> dict[str, Any]:
        """The inner judge's identity: caching does not change a verdict."""
        return dict(self._identity)

    # ------------------------------------------------------------------ public

    def score_pairwise(self, prompt: str, a: str, b: str) -> Preference:
        """Cached :meth:`LLMJudge.score_pairwise`."""
        inputs = {"prompt": prompt, "a": a, "b": b}
        return self._cached("pairwise", inputs, Preference, lambda: self.inner.score_pairwise(prompt, a, b))

    def score_rubric(self, prompt: str, response: str, criteria: Sequence[str]) -> RubricResult:
        """Cached :meth:`LLMJudge.score_rubric`."""
        cleaned = validate_criteria(criteria)
        inputs = {"prompt": prompt, "response": response, "criteria": cleaned}
        return self._cached(
            "rubric", inputs, RubricResult, lambda: self.inner.score_rubric(prompt, response, cleaned)
        )

    def _cached(self, method: str, inputs: Mapping[str, Any], kind: type[_V], judge: Callable[[], Any]) -> _V:
        """The stored verdict of ``method`` on ``inputs``, else ``judge()``'s, checked and stored."""
        key = self.cache_key(method, inputs)
        if (hit := self._load(key, method)) is not None:
            return kind.from_dict(hit)
        result = judge()
        if not isinstance(result, kind):
            raise JudgeError(
                f"{type(self.inner).__name__}.score_{method} returned {type(result).__name__}, "
                f"not a {kind.__name__}"
            )
        self._store(key, method, result.to_dict())
        return result

    score_pairwise_batch = pairwise_batch_method

    def cache_key(self, method: str, inputs: Mapping[str, Any]) -> str:
        """Hex SHA-256 naming the entry for ``method`` on ``inputs``."""
        try:
            payload = canonical_json(
                {"format": CACHE_FORMAT, "identity": self._identity, "method": method, "inputs": dict(inputs)}
            )
        except Exception as exc:  # rfc8785 rejects non-JSON values (NaN, objects)
            raise JudgeError(f"cannot build a cache key from these inputs: {exc}") from exc
        return sha256_bytes(payload)

    def path_for(self, key: str) -> Path:
        """Where the entry for ``key`` lives."""
        return self.cache_dir / key[:2] / f"{key}.json"

    def __repr__(self) -> str:
        return f"CachedJudge({self.inner!r}, cache_dir={str(self.cache_dir)!r})"

    # ---------------------------------------------------------------- internals

    def _checked_identity(self) -> dict[str, Any]:
        getter = getattr(self.inner, "cache_identity", None)
        identity = (
            dict(getter())
            if callable(getter)
            else {
                "judge": f"{type(self.inner).__module__}.{type(self.inner).__qualname__}",
                "model": getattr(self.inner, "model", None),
            }
        )
        text = json.dumps(identity, sort_keys=True, default=str)
        for name, value in os.environ.items():
            if name.upper().endswith(_SECRET_SUFFIXES) and len(value) >= 8 and value in text:
                raise JudgeError(
                    f"the cache identity of {type(self.inner).__name__} contains the value of "
                    f"${name}; refusing to put a secret into cache keys or files"
                )
        return identity

    def _load(self, key: str, method: str) -> dict[str, Any] | None:
        path = self.path_for(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            self.stats.add(misses=1)
            return None
        try:
            entry = json.loads(raw)
            expected = (CACHE_FORMAT, key, method)
            if (entry.get("format"), entry.get("key"), entry.get("method")) != expected:
                raise ValueError("entry does not belong to this key")
            result = entry["result"]
            # Validate now, so a damaged entry is recomputed rather than raised later.
            (Preference.from_dict if method == "pairwise" else RubricResult.from_dict)(result)
        except (ValueError, KeyError, TypeError, AttributeError, JudgeError) as exc:
            log.warning("judge cache entry %s is damaged (%s); recomputing", path, exc)
            self.stats.add(misses=1, damaged=1)
            return None
        self.stats.add(hits=1)
        return result

    def _store(self, key: str, method: str, result: dict[str, Any]) -> None:
        entry = {
            "format": CACHE_FORMAT,
            "key": key,
            "method": method,
            "judge": self._identity.get("judge"),
            "model": self._identity.get("model"),
            "result": result,
        }
        atomic_write_json(self.path_for(key), entry, indent=None)
        self.stats.add(writes=1)
