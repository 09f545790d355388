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

Several metrics, one decision: with more than one gated metric the p-values are adjusted with
Holm's step-down method (statsmodels ``multipletests(method="holm")``) before "significant" is
decided, so gating four metrics does not quadruple the chance of a false alarm;
``correction="none"`` turns that off. Each comparison keeps the raw and the adjusted p-value.

What the set can see: each comparison states its minimum detectable effect at the gate's
``alpha`` and power 0.8 (:mod:`provenir.eval.power`), e.g. "this set cannot detect a drop
smaller than 4.1 points" — a "not significant" on a set that could not detect the tolerance is
no evidence of safety.

Shared prompts: when the results carry a cluster id per item (several samples of one prompt)
and some cluster holds more than one item, the paired test is a Wald test on the
cluster-robust standard error of the mean difference (:mod:`provenir.eval.clustered`) instead
of McNemar or the item bootstrap, which both assume independent items.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from provenir.core.errors import EvaluationError, RegressionError
from provenir.eval.bootstrap import DEFAULT_RESAMPLES, paired_bootstrap
from provenir.eval.clustered import clustered_mean, has_shared_clusters
from provenir.eval.harness import EvalResult, MetricResult
from provenir.eval.power import (
    DEFAULT_POWER,
    DetectableEffect,
    mde_from_standard_error,
    mde_paired_binary,
    mde_paired_continuous,
    mde_unpaired,
)

__all__ = ["GateDecision", "MetricComparison", "RegressionGate", "holm_adjust", "mcnemar_test"]

Verdict = Literal[
    "regression", "drop_not_significant", "improvement", "gain_not_significant", "within_tolerance", "missing"
]
ToleranceMode = Literal["absolute", "relative"]
Correction = Literal["holm", "none"]
TestName = Literal["mcnemar", "paired_bootstrap", "clustered_wald"]
# Float slack so a drop of exactly the tolerance (0.80 -> 0.78 at 0.02) is not tripped by rounding.
_EPS = 1e-12


@dataclass
class MetricComparison:
    """How one metric moved between the baseline and the new result.

    ``p_value`` is the paired test's raw p-value, ``p_adjusted`` the one after the gate's
    multiplicity correction (equal to it with ``correction="none"``); ``significant`` is
    ``p_adjusted < alpha``. ``mde`` is the minimum detectable effect in the metric's units and
    ``detectable`` the sentence that states it.
    """

    name: str
    baseline: float
    new: float | None
    delta: float | None  # new - baseline
    drop: float | None  # how far below baseline, in the gate's mode (absolute or relative); 0 if it rose
    tolerance: float
    exceeds_tolerance: bool
    verdict: Verdict
    tripped: bool
    test: TestName | None = None
    p_value: float | None = None
    significant: bool | None = None
    delta_ci_lower: float | None = None
    delta_ci_upper: float | None = None
    note: str | None = None
    p_adjusted: float | None = None
    mde: float | None = None
    detectable: str | None = None
    clustered_se: float | None = None
    n_clusters: int | None = None

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
            text += f"; {self.test} p={self.p_value:.3g}"
            if self.p_adjusted is not None and self.p_adjusted != self.p_value:
                text += f", adjusted p={self.p_adjusted:.3g}"
            text += f", {sig}"
        return text + ")"


@dataclass
class GateDecision:
    """The gate's full decision; :meth:`RegressionGate.check` raises when ``passed`` is False.

    ``retention`` is the extension point for the retention check (base vs tuned model on
    general-ability tasks, compared by the same gate): empty when no retention tasks are
    configured; :meth:`add_retention` fills it and folds its verdicts into ``passed``.
    """

    passed: bool
    comparisons: dict[str, MetricComparison]
    tolerance: float
    mode: ToleranceMode
    alpha: float
    require_significance: bool
    paired: bool
    note: str | None = None
    correction: Correction = "none"
    power: float = DEFAULT_POWER
    retention: dict[str, MetricComparison] = field(default_factory=dict)

    @property
    def tripped(self) -> list[str]:
        """Names of the metrics that make the gate fail (retention ones as ``retention/<name>``)."""
        names = [name for name, c in self.comparisons.items() if c.tripped]
        return names + [f"retention/{name}" for name, c in self.retention.items() if c.tripped]

    def add_retention(self, comparisons: Mapping[str, MetricComparison]) -> GateDecision:
        """Attach retention comparisons; a tripped one fails the gate. Returns ``self``."""
        self.retention.update(comparisons)
        self.passed = self.passed and not any(c.tripped for c in comparisons.values())
        return self

    def _all(self) -> list[tuple[str, MetricComparison]]:
        return list(self.comparisons.items()) + [(f"retention/{n}", c) for n, c in self.retention.items()]

    def message(self) -> str:
        """One line naming every metric that tripped (or saying the gate passed)."""
        if self.passed:
            return f"regression gate passed ({len(self.comparisons)} metrics within tolerance)"
        parts = [c.describe(self.mode) for name, c in self._all() if c.tripped]
        return "regression gate tripped: " + "; ".join(parts)

    def detectability(self) -> list[str]:
        """One sentence per metric stating its minimum detectable effect."""
        return [f"{name}: {c.detectable}" for name, c in self._all() if c.detectable is not None]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for eval.json, manifests, the API)."""
        out = asdict(self)
        out["tripped"] = self.tripped
        return out

    def to_markdown(self, title: str = "Regression gate") -> str:
        """A Markdown summary for a pull request: verdict, settings, one table row per metric."""
        verdict = "passed" if self.passed else "FAILED"
        pct = f"{100 * (1 - self.alpha):g}%"
        correction = "Holm correction" if self.correction == "holm" else "no multiplicity correction"
        lines = [
            f"### {title}: {verdict}",
            "",
            f"Tolerance {self.tolerance:g} ({self.mode}), alpha {self.alpha:g}, {correction}, "
            f"{'paired tests' if self.paired else 'unpaired: ' + (self.note or 'no paired tests')}, "
            f"minimum detectable effects at power {self.power:g}.",
            "",
            f"| metric | baseline | new | delta | {pct} CI of delta | p | adjusted p | MDE | verdict |",
            "|---|---:|---:|---:|---|---:|---:|---:|---|",
        ]
        for name, c in self._all():
            ci = (
                f"[{c.delta_ci_lower:+.4f}, {c.delta_ci_upper:+.4f}]"
                if c.delta_ci_lower is not None and c.delta_ci_upper is not None
                else "—"
            )
            verdict_cell = f"**{c.verdict}**" if c.tripped else c.verdict
            lines.append(
                f"| {name} | {c.baseline:.4f} | {_cell(c.new, '.4f')} | {_cell(c.delta, '+.4f')} | {ci} | "
                f"{_cell(c.p_value, '.3g')} | {_cell(c.p_adjusted, '.3g')} | "
                f"{_cell(None if c.mde is None else 100 * c.mde, '.1f', ' pts')} | {verdict_cell} |"
            )
        sentences = self.detectability()
        if sentences:
            lines += ["", *[f"- {s}" for s in sentences]]
        return "\n".join(lines) + "\n"


def _cell(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


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


def holm_adjust(p_values: Sequence[float], alpha: float = 0.05) -> list[float]:
    """Holm step-down adjusted p-values (statsmodels ``multipletests(method="holm")``)."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(p_values), alpha=alpha, method="holm")[1]]


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
        correction: ``"holm"`` or ``"none"``; default (None) Holm when more than one metric is gated.
        power: power at which minimum detectable effects are stated (default 0.8).
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
        correction: Correction | None = None,
        power: float = DEFAULT_POWER,
    ) -> None:
        if tolerance < 0 or any(t < 0 for t in (tolerances or {}).values()):
            raise EvaluationError("tolerance must be >= 0")
        if mode not in ("absolute", "relative"):
            raise EvaluationError(f"mode must be 'absolute' or 'relative', got {mode!r}")
        if not 0.0 < alpha < 1.0:
            raise EvaluationError(f"alpha must be strictly between 0 and 1, got {alpha}")
        if correction not in (None, "holm", "none"):
            raise EvaluationError(f"correction must be 'holm' or 'none', got {correction!r}")
        if not 0.0 < power < 1.0:
            raise EvaluationError(f"power must be strictly between 0 and 1, got {power}")
        self.tolerance = tolerance
        self.mode: ToleranceMode = mode
        self.metrics = list(metrics) if metrics is not None else None
        self.tolerances = dict(tolerances or {})
        self.alpha = alpha
        self.require_significance = require_significance
        self.n_resamples = n_resamples
        self.seed = seed
        self.correction: Correction | None = correction
        self.power = power

    def correction_for(self, n_metrics: int) -> Correction:
        """The correction applied when ``n_metrics`` metrics are gated (resolves the default)."""
        if self.correction is not None:
            return self.correction
        return "holm" if n_metrics > 1 else "none"

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
        """The decision, without raising: per-metric deltas, paired tests, corrections and verdicts."""
        new_r = _as_result(new, "new")
        base_r = _as_result(baseline, "baseline")
        names = self.metrics if self.metrics is not None else list(base_r.metrics)
        unknown = [n for n in names if n not in base_r.metrics]
        if unknown:
            raise EvaluationError(f"baseline has no metric {', '.join(map(repr, unknown))}")
        paired, note = _pairable(new_r, base_r)
        clusters = _shared_clusters(new_r, base_r) if paired else None
        comparisons = {name: self._measure(name, new_r, base_r, paired, clusters) for name in names}
        correction = self.correction_for(len(names))
        self._adjust(comparisons.values(), correction)
        for comp in comparisons.values():
            self._decide(comp)
        return GateDecision(
            passed=not any(c.tripped for c in comparisons.values()),
            comparisons=comparisons,
            tolerance=self.tolerance,
            mode=self.mode,
            alpha=self.alpha,
            require_significance=self.require_significance,
            paired=paired,
            note=note,
            correction=correction,
            power=self.power,
        )

    def _measure(
        self, name: str, new_r: EvalResult, base_r: EvalResult, paired: bool, clusters: list[str] | None
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
        effect: DetectableEffect | None = None
        if paired and new.scores is not None and base.scores is not None:
            if clusters is not None:
                effect = self._clustered_test(comp, new, base, clusters)
            else:
                effect = self._paired_test(comp, new, base)
        elif paired:
            comp.note = "no per-item scores for this metric: no paired test"
        elif new.scores is not None and base.scores is not None:
            effect = mde_unpaired(new.scores, base.scores, alpha=self.alpha, power=self.power)
        if effect is not None:
            # The sentence compares with the tolerance in the metric's own units.
            tol_units = tol if self.mode == "absolute" else tol * abs(base.mean)
            comp.mde, comp.detectable = effect.effect, effect.sentence(tol_units)
        return comp

    def _paired_test(self, comp: MetricComparison, new: MetricResult, base: MetricResult) -> DetectableEffect:
        assert new.scores is not None and base.scores is not None
        boot = paired_bootstrap(
            new.scores, base.scores, confidence=1 - self.alpha, n_resamples=self.n_resamples, seed=self.seed
        )
        comp.delta_ci_lower, comp.delta_ci_upper = boot.ci_lower, boot.ci_upper
        if new.binary and base.binary:
            comp.test, comp.p_value = "mcnemar", mcnemar_test(new.scores, base.scores)
            return mde_paired_binary(new.scores, base.scores, alpha=self.alpha, power=self.power)
        comp.test, comp.p_value = "paired_bootstrap", boot.p_value
        diffs = [a - b for a, b in zip(new.scores, base.scores, strict=True)]
        return mde_paired_continuous(diffs, alpha=self.alpha, power=self.power)

    def _clustered_test(
        self, comp: MetricComparison, new: MetricResult, base: MetricResult, clusters: list[str]
    ) -> DetectableEffect:
        from scipy.stats import norm

        assert new.scores is not None and base.scores is not None
        diffs = [a - b for a, b in zip(new.scores, base.scores, strict=True)]
        cm = clustered_mean(diffs, clusters)
        half = float(norm.isf(self.alpha / 2)) * cm.standard_error
        comp.test, comp.p_value = "clustered_wald", cm.p_value
        comp.delta_ci_lower, comp.delta_ci_upper = cm.mean - half, cm.mean + half
        comp.clustered_se, comp.n_clusters = cm.standard_error, cm.n_clusters
        return mde_from_standard_error(
            cm.standard_error, cm.n, alpha=self.alpha, power=self.power, method="clustered_normal"
        )

    def _adjust(self, comparisons: Iterable[MetricComparison], correction: Correction) -> None:
        tested = [c for c in comparisons if c.p_value is not None]
        raw = [c.p_value for c in tested if c.p_value is not None]
        adjusted = holm_adjust(raw, self.alpha) if correction == "holm" else raw
        for comp, p in zip(tested, adjusted, strict=True):
            comp.p_adjusted = p
            comp.significant = p < self.alpha

    def _decide(self, comp: MetricComparison) -> None:
        if comp.verdict == "missing":
            return
        sig = comp.significant
        delta = comp.delta if comp.delta is not None else 0.0
        if comp.exceeds_tolerance:
            comp.verdict = "drop_not_significant" if sig is False else "regression"
        elif delta > 0 and sig is True:
            comp.verdict = "improvement"
        elif delta > 0 and sig is False:
            comp.verdict = "gain_not_significant"
        comp.tripped = comp.verdict == "regression" or (
            comp.verdict == "drop_not_significant" and not self.require_significance
        )


def _pairable(new: EvalResult, base: EvalResult) -> tuple[bool, str | None]:
    # A paired test is only meaningful on the same items in the same order.
    if new.n != base.n:
        return False, f"different item counts ({new.n} vs {base.n}): no paired tests"
    if new.item_keys is not None and base.item_keys is not None and new.item_keys != base.item_keys:
        return False, "the results were computed on different items (item keys differ): no paired tests"
    return True, None


def _shared_clusters(new: EvalResult, base: EvalResult) -> list[str] | None:
    """The items' cluster ids when some prompt has several items; None when every item stands alone."""
    a, b = new.clusters, base.clusters
    if a is not None and b is not None and a != b:
        raise EvaluationError(
            "the two results group their items into different clusters (cluster ids differ); "
            "evaluate both on the same rows"
        )
    clusters = b if b is not None else a
    return list(clusters) if clusters is not None and has_shared_clusters(clusters) else None
