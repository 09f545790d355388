"""Wilson score interval for a binomial proportion (binary metrics such as exact match).

Identical, bit for bit, to ``statsmodels.stats.proportion.proportion_confint(count, nobs,
alpha, method="wilson")``: same critical value (the normal inverse survival function), same
arithmetic, same clipping to [0, 1]. Only for 0/1 scores; a continuous mean needs the
bootstrap in :mod:`provenir.eval.bootstrap`.
"""

from __future__ import annotations

import math

from provenir.core.errors import EvaluationError


def normal_critical_value(confidence: float) -> float:
    """Two-sided standard normal critical value, e.g. 1.959963984540054 for 0.95."""
    if not 0.0 < confidence < 1.0:
        raise EvaluationError(f"confidence must be strictly between 0 and 1, got {confidence}")
    from scipy.special import ndtri

    # statsmodels uses scipy.stats.norm.isf(alpha / 2), which is exactly -ndtri(alpha / 2).
    return float(-ndtri((1.0 - confidence) / 2.0))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """``(lower, upper)`` Wilson score interval for ``successes`` out of ``n`` trials.

    Example::

        wilson_interval(8, 10)  # (0.4901625..., 0.9433178...)
    """
    if n <= 0:
        raise EvaluationError("Wilson interval of an empty sample: need at least one item")
    if not 0 <= successes <= n:
        raise EvaluationError(f"successes must be between 0 and n={n}, got {successes}")
    crit = normal_critical_value(confidence)
    crit2 = crit**2
    q = successes / n
    denom = 1 + crit2 / n
    center = (q + crit2 / (2 * n)) / denom
    dist = crit * math.sqrt(q * (1.0 - q) / n + crit2 / (4.0 * n**2))
    dist /= denom
    return min(max(center - dist, 0.0), 1.0), min(max(center + dist, 0.0), 1.0)
