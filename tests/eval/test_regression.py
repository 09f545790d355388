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


# -- defaults, modes and verdicts a user relies on -------------------------------------------------


def test_the_default_gate_allows_two_points_and_trips_beyond() -> None:
    base = _result(token_f1=[0.80] * 10)
    assert RegressionGate().tolerance == 0.02
    assert RegressionGate().compare(_result(token_f1=[0.78] * 10), base).passed
    decision = RegressionGate().compare(_result(token_f1=[0.77] * 10), base)
    assert not decision.passed and decision.tripped == ["token_f1"]
    assert "tolerance 0.0200 absolute" in decision.message()


def test_run_comparison_gates_with_the_default_tolerance(tmp_path) -> None:
    from provenir.core.manifest import ManifestVerification, RunManifest
    from provenir.reporting.artifacts import RunArtifacts
    from provenir.reporting.compare import compare_runs

    def run(scores: list[float]) -> RunArtifacts:
        manifest = RunManifest(
            name="r",
            backend="stub",
            algorithm="sft",
            config_hash="c" * 64,
            dataset_hash="d" * 64,
            seed=1,
            config={},
        ).seal()
        ok = ManifestVerification(True, True, "unsigned")
        return RunArtifacts(manifest, tmp_path / "m.json", tmp_path, ok, eval_result=_result(token_f1=scores))

    baseline = run([0.80] * 10)
    assert compare_runs(baseline, run([0.78] * 10)).gate.passed  # type: ignore[union-attr]
    gate = compare_runs(baseline, run([0.77] * 10)).gate
    assert gate is not None and not gate.passed and gate.tripped == ["token_f1"]


def test_relative_mode_when_the_score_did_not_drop() -> None:
    base = _result(token_f1=[0.50] * 20)
    for scores in ([0.50] * 20, [0.70] * 20):
        comp = (
            RegressionGate(0.02, mode="relative")
            .compare(_result(token_f1=scores), base)
            .comparisons["token_f1"]
        )
        assert comp.drop == 0.0 and not comp.exceeds_tolerance and not comp.tripped


def test_relative_drop_is_a_fraction_of_the_baseline() -> None:
    # 1.00 -> 0.99 is a 1% relative drop: within a 2% relative tolerance.
    comp = (
        RegressionGate(0.02, mode="relative")
        .compare(_result(token_f1=[0.99] * 10), _result(token_f1=[1.0] * 10))
        .comparisons["token_f1"]
    )
    assert comp.drop == pytest.approx(0.01) and not comp.tripped
    # Any drop from a zero baseline is infinitely large relative to it.
    zero = RegressionGate(0.02, mode="relative").compare(
        _result(reward=[-0.1] * 4), _result(reward=[0.0] * 4)
    )
    assert zero.comparisons["reward"].drop == float("inf") and not zero.passed


def test_messages_name_the_mode_the_test_and_its_verdict() -> None:
    base = _result(exact_match=[1.0] * 80 + [0.0] * 20, token_f1=[0.9] * 100)
    new = _result(exact_match=[1.0] * 77 + [0.0] * 23, token_f1=[0.9] * 100)
    message = RegressionGate(0.02).compare(new, base).message()
    assert "exact_match dropped 0.0300 (0.8000 -> 0.7700, tolerance 0.0200 absolute; mcnemar p=" in message
    assert "not significant, may be noise)" in message and "relative" not in message
    significant = (
        RegressionGate(0.02).compare(_result(token_f1=[0.5] * 50), _result(token_f1=[0.9] * 50)).message()
    )
    assert significant.endswith(", significant)") and "may be noise" not in significant
    passed = RegressionGate(0.02).compare(base, base)
    assert passed.message() == "regression gate passed (2 metrics within tolerance)"
    missing = RegressionGate().compare(_result(exact_match=[1.0]), _result(exact_match=[1.0], bleu4=[0.5]))
    assert missing.message() == "regression gate tripped: bleu4 is missing from the new result"
    comp = missing.comparisons["bleu4"]
    assert comp.exceeds_tolerance and comp.tripped and comp.new is None


def test_decision_dict_lists_what_tripped() -> None:
    decision = RegressionGate().compare(_result(token_f1=[0.5] * 5), _result(token_f1=[0.9] * 5))
    data = decision.to_dict()
    assert data["passed"] is False and data["tripped"] == ["token_f1"]
    assert data["comparisons"]["token_f1"]["verdict"] == "regression" and data["tolerance"] == 0.02


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tolerance": -0.01}, "tolerance"),
        ({"tolerances": {"token_f1": -0.5}}, "tolerance"),
        ({"tolerances": {"a": 0.5, "b": -0.1}}, "tolerance"),
        ({"mode": "percent"}, "mode"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
    ],
)
def test_bad_gate_settings_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(EvaluationError, match=match):
        RegressionGate(**kwargs)


def test_per_metric_tolerances_override_the_default() -> None:
    base = _result(token_f1=[0.9] * 10, rouge_l=[0.9] * 10)
    new = _result(token_f1=[0.6] * 10, rouge_l=[0.6] * 10)
    decision = RegressionGate(0.0, tolerances={"token_f1": 0.5}).compare(new, base)
    assert decision.tripped == ["rouge_l"]
    assert decision.comparisons["token_f1"].tolerance == 0.5


def test_anything_but_a_result_is_refused() -> None:
    with pytest.raises(EvaluationError, match="new: expected an EvalResult"):
        RegressionGate().compare(42, _result(token_f1=[0.5]))  # type: ignore[arg-type]


def test_default_paired_bootstrap_settings() -> None:
    from provenir.eval.bootstrap import paired_bootstrap

    rng = random.Random(5)
    base = [rng.random() for _ in range(30)]
    new = [b - 0.05 + rng.uniform(-0.2, 0.2) for b in base]
    comp = RegressionGate().compare(_result(token_f1=new), _result(token_f1=base)).comparisons["token_f1"]
    boot = paired_bootstrap(new, base, confidence=0.95, n_resamples=1000, seed=0)
    assert (comp.delta_ci_lower, comp.delta_ci_upper) == (boot.ci_lower, boot.ci_upper)
    assert comp.p_value == boot.p_value


def test_verdicts_of_changes_within_tolerance() -> None:
    base = [0.5 + 0.01 * (i % 7) for i in range(60)]
    # Every item 0.01 lower: a significant drop, but within tolerance: not an improvement.
    down = RegressionGate(0.02).compare(_result(token_f1=[b - 0.01 for b in base]), _result(token_f1=base))
    comp = down.comparisons["token_f1"]
    assert comp.significant is True and comp.verdict == "within_tolerance" and down.passed
    # A small gain the paired test cannot tell from noise.
    wobble = [b + (0.31 if i % 2 else -0.29) for i, b in enumerate(base)]
    up = (
        RegressionGate(0.02).compare(_result(token_f1=wobble), _result(token_f1=base)).comparisons["token_f1"]
    )
    assert up.delta > 0 and up.significant is False and up.verdict == "gain_not_significant"
    # A small drop the paired test cannot tell from noise, within tolerance.
    dip = [b + (0.29 if i % 2 else -0.31) for i, b in enumerate(base)]
    comp = RegressionGate(0.02).compare(_result(token_f1=dip), _result(token_f1=base)).comparisons["token_f1"]
    assert comp.delta < 0 and comp.significant is False and comp.verdict == "within_tolerance"


def test_results_without_per_item_scores_get_no_paired_test() -> None:
    base = _result(token_f1=[0.9] * 10)
    new = _result(token_f1=[0.5] * 10)
    summary = new.to_dict(include_scores=False)
    for a, b in ((summary, base), (new, base.to_dict(include_scores=False))):
        decision = RegressionGate().compare(a, b)
        comp = decision.comparisons["token_f1"]
        assert decision.paired and comp.test is None and comp.verdict == "regression"
        assert comp.note == "no per-item scores for this metric: no paired test"
    unpaired = RegressionGate().compare(_result(token_f1=[0.5] * 9), base)
    assert not unpaired.paired and unpaired.note == "different item counts (9 vs 10): no paired tests"
    assert unpaired.comparisons["token_f1"].note is None


def test_mcnemar_only_when_both_sides_are_binary() -> None:
    base = _result(exact_match=[1.0] * 8 + [0.0] * 2)
    graded = EvalResult(
        metrics={
            "exact_match": metric_result_from_scores("exact_match", [0.5] * 10, binary=False, n_bootstrap=50)
        },
        n=10,
    )
    comp = RegressionGate().compare(graded, base).comparisons["exact_match"]
    assert comp.test == "paired_bootstrap"


def test_item_keys_on_one_side_only_still_pair() -> None:
    base = _result(token_f1=[0.9] * 4)
    base.item_keys = ["a", "b", "c", "d"]
    new = _result(token_f1=[0.9] * 4)
    assert RegressionGate().compare(new, base).paired
    new.item_keys = ["a", "b", "c", "d"]
    assert RegressionGate().compare(new, base).paired
    new.item_keys = ["a", "b", "c", "x"]
    assert not RegressionGate().compare(new, base).paired
