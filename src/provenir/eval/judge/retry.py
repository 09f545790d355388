"""Retry policy of the remote judges: what is retried, how long to wait, when to give up.

* 429: wait what the server's ``retry-after`` / ``retry-after-ms`` header says (capped by
  ``max_retry_after``), and make every concurrent call of the same judge wait too.
* 408, 409, 5xx (529 overloaded included), timeouts, dropped connections: exponential back-off
  with jitter, so a thousand concurrent calls do not retry in lock-step.
* Other 4xx (bad request, authentication, unknown model): not retried; the error is reported.
* A reply without a valid verdict: asked again up to ``max_parse_attempts`` times.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from provenir.core.errors import JudgeError


@dataclass(frozen=True)
class RetryPolicy:
    """How a remote judge retries.

    Attributes:
        max_attempts: total HTTP attempts per verdict for transient failures (429, 5xx, timeout).
        max_parse_attempts: total replies accepted per verdict before an unparseable or
            out-of-schema reply becomes a :class:`JudgeError`.
        base_delay: first back-off delay in seconds; doubles per attempt.
        max_delay: cap on one back-off delay, in seconds.
        max_retry_after: longest ``retry-after`` the judge will honour; a longer one fails fast.
        timeout: seconds one HTTP request may take before it counts as timed out.
    """

    max_attempts: int = 6
    max_parse_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_parse_attempts < 1:
            raise JudgeError("RetryPolicy: max_attempts and max_parse_attempts must be >= 1")
        if min(self.base_delay, self.max_delay, self.max_retry_after) < 0 or self.timeout <= 0:
            raise JudgeError("RetryPolicy: delays must be >= 0 and timeout > 0")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number ``attempt`` (1-based): capped exponential, 50-100 % jitter."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return ceiling * (0.5 + 0.5 * (rng or random).random())


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a 429/503 reply asks us to wait, from ``retry-after-ms`` or ``retry-after``.

    ``retry-after`` may be delta-seconds or an HTTP date (RFC 9110); unparseable values give None.
    """
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if (ms := lowered.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
