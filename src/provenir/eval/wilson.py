"""Wilson score interval for a binomial proportion (binary metrics such as exact match).

A thin, validating wrapper around ``statsmodels.stats.proportion.proportion_confint(count, nobs,
alpha, method="wilson")``: the interval is statsmodels' own, Provenir only refuses input it
would answer with NaN or a silent clip (an empty sample, a count outside ``0..n``, a confidence
outside (0, 1)). Only for 0/1 scores; a continuous mean needs the bootstrap in
:mod:`provenir.eval.bootstrap`.
"""

from __future__ import annotations

from provenir.core.errors import EvaluationError


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise EvaluationError(f"confidence must be strictly between 0 and 1, got {confidence}")


def normal_critical_value(confidence: float) -> float:
    """Two-sided standard normal critical value, e.g. 1.959963984540054 for 0.95."""
    _check_confidence(confidence)
    from scipy.stats import norm

    # The value statsmodels' Wilson interval uses: norm.isf(alpha / 2).
    return float(norm.isf((1.0 - confidence) / 2.0))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """``(lower, upper)`` Wilson score interval for ``successes`` out of ``n`` trials.

    Example::

        wilson_interval(8, 10)  # (0.4901625..., 0.9433178...)
    """
    if n <= 0:
        raise EvaluationError("Wilson interval of an empty sample: need at least one item")
    if not 0 <= successes <= n:
        raise EvaluationError(f"successes must be between 0 and n={n}, got {successes}")
    _check_confidence(confidence)
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(successes, n, alpha=1.0 - confidence, method="wilson")
    return float(lo), float(hi)
