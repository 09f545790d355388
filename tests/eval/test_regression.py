"""RegressionGate: the seed snippet, tolerance modes, and paired tests that separate noise from change."""

from __future__ import annotations

import random

import pytest

from provenir.core.errors import EvaluationError, RegressionError
from provenir.eval.harness import EvalResult, MultiMetricEvaluator, metric_result_from_scores
from provenir.eval.regression import RegressionGate, mcnemar_test


def _result(**scores: list[float]) -> EvalResult:
    metrics = {
        name: metric_result_from_scores(
            name, s, binary=set(s) <= {0.0, 1.0} and name == "exact_match", n_bootstrap=300
        )
        for name, s in scores.items()
    }
    return EvalResult(metrics=metrics, n=len(next(iter(scores.values()))))


def test_seed_snippet_raises_naming_each_dropped_metric() -> None:
    baseline_result = _result(exact_match=[1.0] * 80 + [0.0] * 20, token_f1=[0.9] * 100)
    new_result = _result(exact_match=[1.0] * 60 + [0.0] * 40, token_f1=[0.9] * 100)
    gate = RegressionGate(tolerance=0.02)  # allow up to 2% regression
    with pytest.raises(RegressionError) as info:
        gate.check(new_result, baseline_result)  # raises RegressionError if gate trips
    message = str(info.value)
    assert "exact_match dropped 0.2000" in message and "token_f1" not in message
    assert "mcnemar" in message and "significant" in message
    assert info.value.decision.tripped == ["exact_match"]  # type: ignore[attr-defined]


def test_passes_within_tolerance_including_exactly_at_it() -> None:
    base = _result(token_f1=[0.80] * 10)
    assert RegressionGate(0.02).check(_result(token_f1=[0.78] * 10), base).passed
    assert RegressionGate(0.02).check(_result(token_f1=[0.95] * 10), base).passed
    with pytest.raises(RegressionError):
        RegressionGate(0.02).check(_result(token_f1=[0.77] * 10), base)


def test_absolute_versus_relative_tolerance() -> None:
    base = _result(token_f1=[0.50] * 20)
    new = _result(token_f1=[0.485] * 20)  # -0.015 absolute, -3% relative
    assert RegressionGate(0.02, mode="absolute").compare(new, base).passed
    decision = RegressionGate(0.02, mode="relative").compare(new, base)
    assert not decision.passed
    assert decision.comparisons["token_f1"].drop == pytest.approx(0.03)
    assert "relative" in decision.message()


def test_mcnemar_equals_statsmodels() -> None:
    from statsmodels.stats.contingency_tables import mcnemar

    rng = random.Random(0)
    base = [float(rng.random() < 0.7) for _ in range(120)]
    new = [b if rng.random() < 0.85 else 1.0 - b for b in base]
    b01 = sum(1 for x, y in zip(base, new, strict=True) if x == 1 and y == 0)
    b10 = sum(1 for x, y in zip(base, new, strict=True) if x == 0 and y == 1)
    both = sum(1 for x, y in zip(base, new, strict=True) if x == 1 and y == 1)
    neither = len(base) - b01 - b10 - both
    assert mcnemar_test(new, base) == mcnemar([[both, b01], [b10, neither]], exact=True).pvalue


def test_noise_is_not_called_a_regression_and_a_real_drop_is() -> None:
    rng = random.Random(3)
    base = [rng.random() for _ in range(40)]
    # Mean drop of exactly 0.05 (beyond the 0.02 tolerance) but per-item swings of +-0.4:
    # with 40 items that is indistinguishable from noise.
    noisy = [b + (0.35 if i % 2 else -0.45) for i, b in enumerate(base)]
    decision = RegressionGate(0.02).compare(_result(token_f1=noisy), _result(token_f1=base))
    comp = decision.comparisons["token_f1"]
    assert comp.exceeds_tolerance and comp.test == "paired_bootstrap" and comp.significant is False
    assert comp.verdict == "drop_not_significant"
    assert not decision.passed  # safe default: a drop beyond tolerance still blocks
    assert (
        RegressionGate(0.02, require_significance=True)
        .compare(_result(token_f1=noisy), _result(token_f1=base))
        .passed
    )

    real = [b - 0.1 for b in base]
    comp = RegressionGate(0.02, require_significance=True).compare(
        _result(token_f1=real), _result(token_f1=base)
    )
    assert comp.comparisons["token_f1"].verdict == "regression" and not comp.passed
    assert comp.comparisons["token_f1"].delta_ci_upper < 0


def test_improvements_are_labelled_by_significance() -> None:
    base = [0.5] * 50
    up = RegressionGate().compare(_result(token_f1=[0.7] * 50), _result(token_f1=base))
    assert up.passed and up.comparisons["token_f1"].verdict == "improvement"
    rng = random.Random(9)
    wobble = [0.5 + rng.uniform(-0.3, 0.32) for _ in range(50)]
    comp = (
        RegressionGate(0.5).compare(_result(token_f1=wobble), _result(token_f1=base)).comparisons["token_f1"]
    )
    assert comp.verdict in ("gain_not_significant", "within_tolerance") and comp.significant is False


def test_unpaired_results_fall_back_to_the_tolerance_only() -> None:
    ev = MultiMetricEvaluator(["exact_match"])
    base = ev.evaluate([{"prompt": "a", "response": "x"}, {"prompt": "b", "response": "y"}], ["x", "y"])
    new = ev.evaluate([{"prompt": "c", "response": "x"}, {"prompt": "d", "response": "y"}], ["x", "z"])
    decision = RegressionGate(0.02).compare(new, base)
    assert not decision.paired and "different items" in (decision.note or "")
    assert decision.comparisons["exact_match"].verdict == "regression"
    assert decision.comparisons["exact_match"].test is None


def test_missing_metric_trips_and_unknown_metric_is_an_error() -> None:
    base = _result(exact_match=[1.0, 0.0], token_f1=[0.5, 0.5])
    new = _result(exact_match=[1.0, 0.0])
    decision = RegressionGate().compare(new, base)
    assert decision.comparisons["token_f1"].verdict == "missing" and not decision.passed
    with pytest.raises(EvaluationError, match="baseline has no metric 'bleu4'"):
        RegressionGate(metrics=["bleu4"]).compare(new, base)


def test_accepts_saved_dicts() -> None:
    base = _result(token_f1=[0.5] * 5)
    new = _result(token_f1=[0.5] * 5)
    assert RegressionGate().check(new.to_dict(), base.to_dict()).passed
