"""What the Anthropic and OpenAI judges share: key handling, retries, verdict parsing, bias control.

A provider judge supplies three small hooks (build the SDK client, send one request, pull the
structured verdict or the text out of a reply); everything that must behave identically across
providers lives here once.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from provenir.core.errors import JudgeError
from provenir.core.redaction import redact_then_truncate
from provenir.eval.judge import prompts
from provenir.eval.judge.batch import DEFAULT_MAX_CONCURRENCY, pairwise_batch_method
from provenir.eval.judge.parsing import (
    VerdictParseError,
    pairwise_from_data,
    pairwise_from_text,
    rubric_from_data,
    rubric_from_text,
)
from provenir.eval.judge.position import combine_orders
from provenir.eval.judge.retry import RetryPolicy, retry_after_seconds
from provenir.eval.judge.verdict import Preference, RubricResult, validate_criteria

log = logging.getLogger(__name__)

Method = Literal["pairwise", "rubric"]

# Longest upstream error text kept in a message (after redaction).
_MESSAGE_LIMIT = 300


@dataclass
class JudgeStats:
    """Counters of one judge instance (thread-safe); read them after a batch."""

    http_calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    parse_failures: int = 0
    pairwise: int = 0
    agreed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    @property
    def agreement_rate(self) -> float | None:
        """Share of bias-controlled pairwise verdicts whose two orders agreed (None before any)."""
        return self.agreed / self.pairwise if self.pairwise else None


@dataclass(frozen=True)
class Reply:
    """What a provider hook extracted from one response: a structured verdict or free text."""

    data: Any | None
    text: str


class RemoteJudge:
    """Shared engine of :class:`AnthropicJudge` and :class:`OpenAIJudge` (not used directly)."""

    provider: str = "remote"
    default_api_key_env: str = ""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        position_swap: bool = True,
        structured: bool = True,
        temperature: float | None = 0.0,
        max_tokens: int = 512,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise JudgeError(f"{type(self).__name__} needs a model name, e.g. model='...'")
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env or self.default_api_key_env
        self.position_swap = position_swap
        self.structured = structured
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_concurrency = max_concurrency
        self.retry = retry or RetryPolicy()
        self.stats = JudgeStats()
        api_key = os.environ.get(self.api_key_env, "").strip()
        if not api_key:
            raise JudgeError(
                f"{type(self).__name__} needs an API key: set the environment variable {self.api_key_env}"
            )
        # The key lives only inside the SDK client: never on an attribute of ours, in repr(), in
        # a cache identity, or in a message we build (see _redact).
        self._client = self._make_client(api_key)
        self._pause_until = 0.0  # monotonic time before which no request may start (429 backpressure)
        self._pause_lock = threading.Lock()
        self._order_pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._rng = random.Random()

    # ----------------------------------------------------------- provider hooks

    def _make_client(self, api_key: str) -> Any:
        raise NotImplementedError

    def _send(self, method: Method, user_message: str) -> Any:
        """One HTTP request, SDK retries off; returns the SDK's response object."""
        raise NotImplementedError

    def _extract(self, response: Any, method: Method) -> Reply:
        raise NotImplementedError

    def _sdk(self) -> Any:
        """The SDK module, for its exception classes."""
        raise NotImplementedError

    # ------------------------------------------------------------------ public

    def score_pairwise(self, prompt: str, a: str, b: str) -> Preference:
        """Which of ``a`` and ``b`` is better; with ``position_swap`` asked in both orders, in parallel."""
        _check_strings(prompt=prompt, a=a, b=b)
        if not self.position_swap:
            return self._ask_pairwise(prompt, a, b)
        backward_future = self._pool().submit(self._ask_pairwise, prompt, b, a)
        try:
            forward = self._ask_pairwise(prompt, a, b)
        except BaseException:
            backward_future.cancel()  # if already running it finishes on its own; nobody waits for it
            raise
        backward = backward_future.result().swapped()
        combined = combine_orders(forward, backward)
        self.stats.add(pairwise=1, agreed=int(bool(combined.agreed)))
        return combined

    def score_rubric(self, prompt: str, response: str, criteria: Sequence[str]) -> RubricResult:
        """Scores per criterion on the 1-10 scale."""
        _check_strings(prompt=prompt, response=response)
        cleaned = validate_criteria(criteria)
        message = prompts.rubric_message(prompt, response, cleaned)
        return self._ask(
            "rubric",
            message,
            from_data=lambda d: rubric_from_data(d, cleaned),
            from_text=lambda t: rubric_from_text(t, cleaned),
        )

    score_pairwise_batch = pairwise_batch_method

    def cache_identity(self) -> dict[str, Any]:
        """Everything that changes a verdict, for cache keys. No key, no URL (it may embed credentials)."""
        return {
            "judge": type(self).__name__,
            "model": self.model,
            "position_swap": self.position_swap,
            "structured": self.structured,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "prompt_versions": [prompts.PAIRWISE_VERSION, prompts.RUBRIC_VERSION],
        }

    def close(self) -> None:
        """Release the HTTP connections and the worker threads."""
        with self._pool_lock:
            if self._order_pool is not None:
                self._order_pool.shutdown(wait=False)
                self._order_pool = None
        close = getattr(self._client, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> RemoteJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f", base_url={_safe_url(self.base_url)!r}" if self.base_url else ""
        return f"{type(self).__name__}(model={self.model!r}{where})"

    # ---------------------------------------------------------------- internals

    def _pool(self) -> ThreadPoolExecutor:
        # The second presentation order runs here. Its tasks never wait on each other, so a
        # fixed size cannot deadlock; threads start lazily, only as many as are ever busy.
        with self._pool_lock:
            if self._order_pool is None:
                self._order_pool = ThreadPoolExecutor(max_workers=256, thread_name_prefix="judge-order")
            return self._order_pool

    def _ask_pairwise(self, prompt: str, first: str, second: str) -> Preference:
        return self._ask(
            "pairwise",
            prompts.pairwise_message(prompt, first, second),
            from_data=pairwise_from_data,
            from_text=pairwise_from_text,
        )

    def _ask(self, method: Method, message: str, *, from_data: Any, from_text: Any) -> Any:
        """Send until a valid verdict arrives; transient failures and bad replies are retried."""
        sdk = self._sdk()
        policy = self.retry
        attempts = parse_failures = 0
        last_problem = ""
        while True:
            self._wait_for_pause()
            attempts += 1
            self.stats.add(http_calls=1)
            try:
                response = self._send(method, message)
            except sdk.APIStatusError as exc:
                status = exc.status_code
                if status == 429:
                    self.stats.add(rate_limited=1)
                    wait_s = retry_after_seconds(getattr(exc.response, "headers", None))
                    if wait_s is not None and wait_s > policy.max_retry_after:
                        raise JudgeError(
                            f"{self}: rate limited and asked to wait {wait_s:.0f}s, more than "
                            f"max_retry_after={policy.max_retry_after:g}s"
                        ) from None
                    delay = wait_s if wait_s is not None else policy.backoff(attempts, self._rng)
                    self._pause(delay)
                elif status in (408, 409) or status >= 500:
                    delay = policy.backoff(attempts, self._rng)
                elif status in (401, 403):
                    raise JudgeError(
                        f"{self}: authentication failed (HTTP {status}); check the API key "
                        f"in ${self.api_key_env}"
                    ) from None
                else:
                    raise JudgeError(
                        f"{self}: request rejected (HTTP {status}): {self._redact(_message_of(exc))}"
                    ) from None
                last_problem = f"HTTP {status}"
            except sdk.APITimeoutError:
                delay = policy.backoff(attempts, self._rng)
                last_problem = f"timed out after {policy.timeout:g}s"
            except sdk.APIConnectionError as exc:
                delay = policy.backoff(attempts, self._rng)
                last_problem = f"connection failed: {self._redact(_message_of(exc))}"
            except (sdk.APIResponseValidationError, ValueError) as exc:
                # A 200 whose body is not the JSON the SDK expects: a bad reply, not a verdict.
                parse_failures += 1
                self.stats.add(parse_failures=1)
                last_problem = f"malformed response body: {self._redact(_message_of(exc))}"
                if parse_failures >= policy.max_parse_attempts:
                    raise JudgeError(
                        f"{self}: no valid {method} verdict after {parse_failures} replies; "
                        f"last: {last_problem}"
                    ) from None
                delay = 0.0
            else:
                try:
                    reply = self._extract(response, method)
                    return from_data(reply.data) if reply.data is not None else from_text(reply.text)
                except VerdictParseError as exc:
                    parse_failures += 1
                    self.stats.add(parse_failures=1)
                    last_problem = self._redact(str(exc))
                    log.warning("%s: unusable %s reply (%s); asking again", self, method, last_problem)
                    if parse_failures >= policy.max_parse_attempts:
                        raise JudgeError(
                            f"{self}: no valid {method} verdict after {parse_failures} "
                            f"replies; last: {last_problem}"
                        ) from None
                    delay = 0.0
            if attempts >= policy.max_attempts:
                raise JudgeError(f"{self}: gave up after {attempts} attempts; last: {last_problem}")
            self.stats.add(retries=1)
            log.info(
                "%s: %s; retrying in %.2fs (attempt %d/%d)",
                self,
                last_problem,
                delay,
                attempts + 1,
                policy.max_attempts,
            )
            if delay > 0:
                time.sleep(delay)

    def _pause(self, seconds: float) -> None:
        """Hold back every call of this judge for ``seconds`` (a 429 applies to the whole key)."""
        with self._pause_lock:
            self._pause_until = max(self._pause_until, time.monotonic() + seconds)

    def _wait_for_pause(self) -> None:
        while (remaining := self._pause_until - time.monotonic()) > 0:
            time.sleep(remaining)

    def _redact(self, text: str) -> str:
        """``text`` without this judge's key or any other credential, then cut to a readable length.

        SDK error text may quote request details, and a server or proxy may echo the key (or
        another one). Redaction comes first: a cut through a key leaves a fragment that
        neither the key itself nor any credential pattern would recognise any more.
        """
        secret = getattr(self._client, "api_key", None)
        if isinstance(secret, str) and secret:
            text = text.replace(secret, "***")
        return redact_then_truncate(text, _MESSAGE_LIMIT)


def _message_of(exc: BaseException) -> str:
    """The exception's text on one line, whole: :meth:`RemoteJudge._redact` cuts it after redacting."""
    return " ".join(str(exc).split())


def _check_strings(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, str):
            raise JudgeError(f"{name} must be a string, got {type(value).__name__}")


def _safe_url(url: str | None) -> str | None:
    """``url`` without user:password@ (credentials in a URL must not reach a repr or log)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url
