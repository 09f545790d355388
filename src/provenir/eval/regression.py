"""RegressionGate: block promotion when a metric drops more than a tolerance below the baseline.

::

    from provenir.eval.regression import RegressionGate

    gate = RegressionGate(tolerance=0.02)   # allow up to 2% regression
    gate.check(new_result, baseline_result)  # raises RegressionError if gate trips

``tolerance`` is absolute (0.02 = two points on the 0..1 scale) or, with
``mode="relative"``, a fraction of the baseline (0.02 = 2% of its value). A drop exactly equal
to the tolerance is allowed.

When both results keep per-item scores for the same items, each metric also gets a paired
test — McNemar's exact test for binary metrics (exact match), a paired bootstrap of the mean
difference for continuous ones — so the decision says whether a change is distinguishable from
noise. Verdicts per metric:

=======================  ======================================================================
``regression``           drop beyond tolerance, and significant (or no paired test possible)
``drop_not_significant`` drop beyond tolerance, but the paired test cannot tell it from noise
``improvement``          the metric rose and the paired test says significant
``gain_not_significant`` the metric rose but the paired test cannot tell it from noise
``within_tolerance``     any other change within the tolerance (including untested gains)
``missing``              the baseline has the metric, the new result does not
=======================  ======================================================================

The gate trips on ``regression`` and ``missing``, and also on ``drop_not_significant`` unless
``require_significance=True`` — by default a drop beyond the tolerance blocks promotion even
when a small evaluation set cannot prove it (the safe default the seed documents).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from provenir.core.errors import EvaluationError, RegressionError
from provenir.eval.bootstrap import DEFAULT_RESAMPLES, paired_bootstrap
from provenir.eval.harness import EvalResult, MetricResult

__all__ = ["GateDecision", "MetricComparison", "RegressionGate", "mcnemar_test"]

Verdict = Literal[
    "regression", "drop_not_significant", "improvement", "gain_not_significant", "within_tolerance", "missing"
]
ToleranceMode = Literal["absolute", "relative"]
# Float slack so a drop of exactly the tolerance (0.80 -> 0.78 at 0.02) is not tripped by rounding.
_EPS = 1e-12


@dataclass
class MetricComparison:
    """How one metric moved between the baseline and the new result."""

    name: str
    baseline: float
    new: float | None
    delta: float | None  # new - baseline
    drop: float | None  # how far below baseline, in the gate's mode (absolute or relative); 0 if it rose
    tolerance: float
    exceeds_tolerance: bool
    verdict: Verdict
    tripped: bool
    test: Literal["mcnemar", "paired_bootstrap"] | None = None
    p_value: float | None = None
    significant: bool | None = None
    delta_ci_lower: float | None = None
    delta_ci_upper: float | None = None
    note: str | None = None

    def describe(self, mode: ToleranceMode) -> str:
        """One human-readable clause, e.g. ``exact_match dropped 0.050 (0.800 -> 0.750, ...)``."""
        if self.verdict == "missing":
            return f"{self.name} is missing from the new result"
        unit = "" if mode == "absolute" else " relative"
        text = (
            f"{self.name} dropped {self.drop:.4f}{unit} ({self.baseline:.4f} -> {self.new:.4f}, "
            f"tolerance {self.tolerance:.4f} {mode}"
        )
        if self.test is not None:
            sig = "significant" if self.significant else "not significant, may be noise"
            text += f"; {self.test} p={self.p_value:.3g}, {sig}"
        return text + ")"


@dataclass
class GateDecision:
    """The gate's full decision; :meth:`RegressionGate.check` raises when ``passed`` is False."""

    passed: bool
    comparisons: dict[str, MetricComparison]
    tolerance: float
    mode: ToleranceMode
    alpha: float
    require_significance: bool
    paired: bool
    note: str | None = None

    @property
    def tripped(self) -> list[str]:
        """Names of the metrics that make the gate fail."""
        return [name for name, c in self.comparisons.items() if c.tripped]

    def message(self) -> str:
        """One line naming every metric that tripped (or saying the gate passed)."""
        if self.passed:
            return f"regression gate passed ({len(self.comparisons)} metrics within tolerance)"
        parts = [self.comparisons[name].describe(self.mode) for name in self.tripped]
        return "regression gate tripped: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for eval.json, manifests, the API)."""
        out = asdict(self)
        out["tripped"] = self.tripped
        return out


def mcnemar_test(new: Sequence[float], baseline: Sequence[float]) -> float:
    """Two-sided exact McNemar p-value for paired 0/1 outcomes (statsmodels ``mcnemar``).

    The exact binomial form is valid at every sample size; with no discordant pairs p = 1.
    """
    import numpy as np
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(new, dtype=bool)
    b = np.asarray(baseline, dtype=bool)
    table = [
        [int(np.sum(b & a)), int(np.sum(b & ~a))],
        [int(np.sum(~b & a)), int(np.sum(~b & ~a))],
    ]
    return float(mcnemar(table, exact=True).pvalue)


def _as_result(value: EvalResult | Mapping[str, Any], which: str) -> EvalResult:
    if isinstance(value, EvalResult):
        return value
    if isinstance(value, Mapping):
        return EvalResult.from_dict(value)
    raise EvaluationError(
        f"{which}: expected an EvalResult or its to_dict() form, got {type(value).__name__}"
    )


class RegressionGate:
    """Compare a new evaluation against a baseline and block promotion on a regression.

    Args:
        tolerance: largest allowed drop (default 0.02); per-metric overrides in ``tolerances``.
        mode: ``"absolute"`` (points on the 0..1 scale) or ``"relative"`` (fraction of baseline).
        metrics: metrics to gate on; default every metric of the baseline.
        alpha: significance level of the paired tests (default 0.05).
        require_significance: trip only on drops the paired test finds significant.
        n_resamples, seed: paired bootstrap settings (seeded, so decisions are reproducible).
    """

    def __init__(
        self,
        tolerance: float = 0.02,
        *,
        mode: ToleranceMode = "absolute",
        metrics: Sequence[str] | None = None,
        tolerances: Mapping[str, float] | None = None,
        alpha: float = 0.05,
        require_significance: bool = False,
        n_resamples: int = DEFAULT_RESAMPLES,
        seed: int = 0,
    ) -> None:
        if tolerance < 0 or any(t < 0 for t in (tolerances or {}).values()):
            raise EvaluationError("tolerance must be >= 0")
        if mode not in ("absolute", "relative"):
            raise EvaluationError(f"mode must be 'absolute' or 'relative', got {mode!r}")
        if not 0.0 < alpha < 1.0:
            raise EvaluationError(f"alpha must be strictly between 0 and 1, got {alpha}")
        self.tolerance = tolerance
        self.mode: ToleranceMode = mode
        self.metrics = list(metrics) if metrics is not None else None
        self.tolerances = dict(tolerances or {})
        self.alpha = alpha
        self.require_significance = require_significance
        self.n_resamples = n_resamples
        self.seed = seed

    def check(
        self, new: EvalResult | Mapping[str, Any], baseline: EvalResult | Mapping[str, Any]
    ) -> GateDecision:
        """Return the decision if the gate passes; raise :class:`RegressionError` if it trips.

        The raised error carries the decision as ``error.decision``.
        """
        decision = self.compare(new, baseline)
        if not decision.passed:
            error = RegressionError(decision.message())
            error.decision = decision  # type: ignore[attr-defined]
            raise error
        return decision

    def compare(
        self, new: EvalResult | Mapping[str, Any], baseline: EvalResult | Mapping[str, Any]
    ) -> GateDecision:
        """The decision, without raising: per-metric deltas, paired tests and verdicts."""
        new_r = _as_result(new, "new")
        base_r = _as_result(baseline, "baseline")
        names = self.metrics if self.metrics is not None else list(base_r.metrics)
        unknown = [n for n in names if n not in base_r.metrics]
        if unknown:
            raise EvaluationError(f"baseline has no metric {', '.join(map(repr, unknown))}")
        paired, note = _pairable(new_r, base_r)
        comparisons = {name: self._compare_metric(name, new_r, base_r, paired) for name in names}
        return GateDecision(
            passed=not any(c.tripped for c in comparisons.values()),
            comparisons=comparisons,
            tolerance=self.tolerance,
            mode=self.mode,
            alpha=self.alpha,
            require_significance=self.require_significance,
            paired=paired,
            note=note,
        )

    def _compare_metric(
        self, name: str, new_r: EvalResult, base_r: EvalResult, paired: bool
    ) -> MetricComparison:
        base = base_r.metrics[name]
        tol = self.tolerances.get(name, self.tolerance)
        new = new_r.metrics.get(name)
        if new is None:
            return MetricComparison(name, base.mean, None, None, None, tol, True, "missing", True)
        delta = new.mean - base.mean
        if self.mode == "absolute":
            drop = max(0.0, -delta)
        elif delta >= 0:
            drop = 0.0
        else:
            drop = -delta / abs(base.mean) if base.mean != 0 else float("inf")
        exceeds = drop > tol + _EPS
        comp = MetricComparison(
            name, base.mean, new.mean, delta, drop, tol, exceeds, "within_tolerance", False
        )
        if paired and new.scores is not None and base.scores is not None:
            self._paired_test(comp, new, base)
        elif paired:
            comp.note = "no per-item scores for this metric: no paired test"
        sig = comp.significant
        if exceeds:
            comp.verdict = "drop_not_significant" if sig is False else "regression"
        elif delta > 0 and sig is True:
            comp.verdict = "improvement"
        elif delta > 0 and sig is False:
            comp.verdict = "gain_not_significant"
        comp.tripped = comp.verdict == "regression" or (
            comp.verdict == "drop_not_significant" and not self.require_significance
        )
        return comp

    def _paired_test(self, comp: MetricComparison, new: MetricResult, base: MetricResult) -> None:
        assert new.scores is not None and base.scores is not None
        boot = paired_bootstrap(
            new.scores, base.scores, confidence=1 - self.alpha, n_resamples=self.n_resamples, seed=self.seed
        )
        comp.delta_ci_lower, comp.delta_ci_upper = boot.ci_lower, boot.ci_upper
        if new.binary and base.binary:
            comp.test, comp.p_value = "mcnemar", mcnemar_test(new.scores, base.scores)
        else:
            comp.test, comp.p_value = "paired_bootstrap", boot.p_value
        comp.significant = comp.p_value < self.alpha


def _pairable(new: EvalResult, base: EvalResult) -> tuple[bool, str | None]:
    # A paired test is only meaningful on the same items in the same order.
    if new.n != base.n:
        return False, f"different item counts ({new.n} vs {base.n}): no paired tests"
    if new.item_keys is not None and base.item_keys is not None and new.item_keys != base.item_keys:
        return False, "the results were computed on different items (item keys differ): no paired tests"
    return True, None
