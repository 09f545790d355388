"""Minimum detectable effect: the smallest change an evaluation set of its size can prove.

A gate that finds "no significant drop" on 200 items has said little if 200 items could not have
shown a 5-point drop anyway. For each gated metric this module answers: at significance level
``alpha`` and power 0.8 (the test finds a true effect of that size four times in five), what is
the smallest difference between the two systems that the paired test would detect?

=====================  =====================================================================
paired, continuous     ``TTestPower`` (one-sample t on the per-item differences) times their SD
paired, binary         normal approximation to McNemar: SD of a per-item difference under no
                       change is ``sqrt(discordant proportion)``; ``NormalIndPower(ratio=0)``
clustered              normal test on the cluster-robust standard error of the mean difference
unpaired               ``TTestIndPower`` on the pooled per-item SD
=====================  =====================================================================

Effects are in the metric's own units (0.041 on a 0..1 metric); :meth:`DetectableEffect.sentence`
states them in points (x100), e.g. "this set cannot detect a drop smaller than 4.1 points".
The power solvers are statsmodels'; they are two-sided, like the gate's tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from provenir.core.errors import EvaluationError

__all__ = [
    "DEFAULT_POWER",
    "DetectableEffect",
    "mde_from_standard_error",
    "mde_paired_binary",
    "mde_paired_continuous",
    "mde_unpaired",
]

#: Power at which detectable effects are stated (the conventional 80%).
DEFAULT_POWER = 0.8


@dataclass(frozen=True)
class DetectableEffect:
    """The minimum detectable effect of one metric; ``effect`` is None when it cannot be estimated."""

    effect: float | None
    n: int
    alpha: float
    power: float
    method: str
    note: str | None = None

    def sentence(self, tolerance: float | None = None) -> str:
        """``"this set (400 items) cannot detect a drop smaller than 4.1 points (alpha 0.05, power 0.8)"``.

        With ``tolerance`` (absolute, metric units) the sentence says when the effect is larger
        than it: a drop right at the tolerance could then pass for noise.
        """
        if self.effect is None:
            return f"the minimum detectable effect cannot be estimated: {self.note}"
        text = (
            f"this set ({self.n} items) cannot detect a drop smaller than {100 * self.effect:.1f} points "
            f"(alpha {self.alpha:g}, power {self.power:g})"
        )
        if tolerance is not None and self.effect > tolerance:
            text += (
                f"; that is more than the tolerance of {100 * tolerance:.1f} points, "
                "so a drop at the tolerance may not be told from noise"
            )
        return text


def _check(n: int, alpha: float, power: float) -> None:
    if n < 1:
        raise EvaluationError("minimum detectable effect of an empty sample: need at least one item")
    if not 0.0 < alpha < 1.0:
        raise EvaluationError(f"alpha must be strictly between 0 and 1, got {alpha}")
    if not 0.0 < power < 1.0:
        raise EvaluationError(f"power must be strictly between 0 and 1, got {power}")


def _normal_multiplier(alpha: float, power: float) -> float:
    """Effect / standard error at which a two-sided z-test at ``alpha`` reaches ``power``."""
    from statsmodels.stats.power import NormalIndPower

    # ratio=0 is statsmodels' one-sample form: the effect size is then effect / SE at nobs1=1.
    return float(NormalIndPower().solve_power(effect_size=None, nobs1=1, alpha=alpha, power=power, ratio=0))


def mde_from_standard_error(
    standard_error: float,
    n: int,
    *,
    alpha: float = 0.05,
    power: float = DEFAULT_POWER,
    method: str = "normal",
) -> DetectableEffect:
    """Smallest effect a two-sided z-test with this ``standard_error`` detects at ``power``."""
    _check(n, alpha, power)
    if standard_error < 0 or math.isnan(standard_error):
        raise EvaluationError(f"standard error must be >= 0, got {standard_error}")
    if standard_error == 0:
        return DetectableEffect(None, n, alpha, power, method, "the per-item differences have no spread")
    return DetectableEffect(_normal_multiplier(alpha, power) * standard_error, n, alpha, power, method)


def mde_paired_continuous(
    differences: Sequence[float], *, alpha: float = 0.05, power: float = DEFAULT_POWER
) -> DetectableEffect:
    """Paired continuous metric: one-sample t power on the per-item differences (``TTestPower``)."""
    import numpy as np
    from statsmodels.stats.power import TTestPower

    d = np.asarray(differences, dtype=np.float64)
    n = int(d.size)
    _check(n, alpha, power)
    if n < 2:
        return DetectableEffect(None, n, alpha, power, "paired_t", "one item has no spread to estimate")
    sd = float(np.std(d, ddof=1))
    if d.min() == d.max():  # not sd == 0: equal floats can leave a rounding-error SD
        return DetectableEffect(None, n, alpha, power, "paired_t", "the per-item differences have no spread")
    size = float(TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power))
    return DetectableEffect(size * sd, n, alpha, power, "paired_t")


def mde_paired_binary(
    new: Sequence[float], baseline: Sequence[float], *, alpha: float = 0.05, power: float = DEFAULT_POWER
) -> DetectableEffect:
    """Paired 0/1 metric: normal approximation to McNemar from the discordant proportion.

    A per-item difference is -1, 0 or 1; with no true change its variance is the proportion of
    discordant items ``p_d``, so the mean difference has standard error ``sqrt(p_d / n)``.
    """
    import numpy as np

    a = np.asarray(new, dtype=bool)
    b = np.asarray(baseline, dtype=bool)
    if a.shape != b.shape:
        raise EvaluationError(f"paired scores need the same items: {a.size} vs {b.size} scores")
    n = int(a.size)
    _check(n, alpha, power)
    discordant = int(np.count_nonzero(a != b))
    if discordant == 0:
        return DetectableEffect(
            None, n, alpha, power, "paired_normal_discordant", "no item changed outcome (no discordant pairs)"
        )
    found = mde_from_standard_error(math.sqrt(discordant / n / n), n, alpha=alpha, power=power)
    return DetectableEffect(found.effect, n, alpha, power, "paired_normal_discordant")


def mde_unpaired(
    new: Sequence[float], baseline: Sequence[float], *, alpha: float = 0.05, power: float = DEFAULT_POWER
) -> DetectableEffect:
    """Two independent samples (different items): two-sample t power on the pooled SD (``TTestIndPower``)."""
    import numpy as np
    from statsmodels.stats.power import TTestIndPower

    a = np.asarray(new, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    n = int(min(a.size, b.size))
    _check(n, alpha, power)
    if a.size < 2 or b.size < 2:
        return DetectableEffect(None, n, alpha, power, "two_sample_t", "one item has no spread to estimate")
    pooled = math.sqrt(
        ((a.size - 1) * np.var(a, ddof=1) + (b.size - 1) * np.var(b, ddof=1)) / (a.size + b.size - 2)
    )
    if a.min() == a.max() and b.min() == b.max():
        return DetectableEffect(None, n, alpha, power, "two_sample_t", "the per-item scores have no spread")
    size = float(
        TTestIndPower().solve_power(
            effect_size=None, nobs1=b.size, alpha=alpha, power=power, ratio=a.size / b.size
        )
    )
    return DetectableEffect(size * pooled, n, alpha, power, "two_sample_t")
