"""Cluster-robust standard errors: several scored samples that share one prompt are not independent.

When an evaluation draws several completions per prompt (or several questions per document),
items of one cluster succeed and fail together, and the plain ``sd / sqrt(n)`` understates the
uncertainty of a mean. The cluster-robust (sandwich) variance of the mean sums residuals within
each cluster first:

    V = G / (G - 1) * sum_g (sum_{i in g} (x_i - mean))^2 / n^2

which is exactly statsmodels' ``OLS(x, ones).fit(cov_type="cluster", cov_kwds={"groups": g})``
with its default small-sample correction (for one parameter, ``(n-1)/(n-k)`` is 1). Computed here
with numpy in one pass, so gating 10k items does not fit a regression per metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provenir.core.errors import EvaluationError

__all__ = ["ClusteredMean", "clustered_mean", "clustered_standard_error", "has_shared_clusters"]


@dataclass(frozen=True)
class ClusteredMean:
    """A mean with its cluster-robust standard error and the two-sided Wald test of mean = 0."""

    mean: float
    standard_error: float
    p_value: float
    n: int
    n_clusters: int


def _codes(clusters: Sequence[Any], n: int) -> Any:
    import numpy as np

    if len(clusters) != n:
        raise EvaluationError(f"{len(clusters)} cluster ids for {n} items: give one per item")
    _, codes = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    return codes


def has_shared_clusters(clusters: Sequence[Any] | None) -> bool:
    """True when some cluster holds more than one item (otherwise clustering changes nothing)."""
    return clusters is not None and len(set(map(str, clusters))) < len(clusters)


def clustered_standard_error(values: Sequence[float], clusters: Sequence[Any]) -> float:
    """Cluster-robust standard error of the mean of ``values`` (one cluster id per value).

    Example::

        clustered_standard_error([1, 1, 0, 0, 1, 0], ["p1", "p1", "p2", "p2", "p3", "p3"])
    """
    return clustered_mean(values, clusters).standard_error


def clustered_mean(values: Sequence[float], clusters: Sequence[Any]) -> ClusteredMean:
    """Mean, cluster-robust standard error and Wald p-value (normal reference, as statsmodels)."""
    import numpy as np
    from scipy.stats import norm

    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        raise EvaluationError("clustered standard error of an empty sample: need at least one item")
    codes = _codes(clusters, n)
    groups = int(codes.max()) + 1
    if groups < 2:
        raise EvaluationError("clustered standard error needs at least two clusters")
    mean = float(x.mean())
    sums = np.bincount(codes, weights=x - mean, minlength=groups)
    se = float(np.sqrt(groups / (groups - 1) * np.sum(sums**2)) / n)
    # se == 0: every cluster's items sit exactly on the mean; no noise, so any change is real.
    p = float(2 * norm.sf(abs(mean) / se)) if se > 0 else (1.0 if mean == 0 else 0.0)
    return ClusteredMean(mean, se, p, n, groups)
