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


# -- several metrics: Holm; what the set can detect; shared prompts ------------------------------


def _binary_pairs(down: int, up: int, same: int) -> tuple[list[float], list[float]]:
    """(new, baseline) 0/1 scores: ``down`` items 1 -> 0, ``up`` items 0 -> 1, ``same`` items 1 -> 1."""
    base = [1.0] * down + [0.0] * up + [1.0] * same
    new = [0.0] * down + [1.0] * up + [1.0] * same
    return new, base


def _four_metric_results() -> tuple[EvalResult, EvalResult]:
    rng = random.Random(3)
    em_new, em_base = _binary_pairs(10, 2, 88)
    f1_base = [rng.random() for _ in range(100)]
    f1_new = [min(1.0, max(0.0, s - 0.03 + rng.gauss(0, 0.1))) for s in f1_base]
    bleu_base = [rng.random() for _ in range(100)]
    bleu_new = [s + rng.gauss(0, 0.05) for s in bleu_base]
    rouge_base = [rng.random() for _ in range(100)]
    rouge_new = [s - 0.1 for s in rouge_base[:50]] + rouge_base[50:]
    new = _result(exact_match=em_new, token_f1=f1_new, bleu4=bleu_new, rouge_l=rouge_new)
    base = _result(exact_match=em_base, token_f1=f1_base, bleu4=bleu_base, rouge_l=rouge_base)
    return new, base


def test_holm_adjusted_p_values_equal_statsmodels_on_the_gates_raw_p_values() -> None:
    from statsmodels.stats.multitest import multipletests

    new, base = _four_metric_results()
    decision = RegressionGate(0.02).compare(new, base)
    assert decision.correction == "holm"  # the default with more than one gated metric
    comps = list(decision.comparisons.values())
    raw = [c.p_value for c in comps]
    assert all(p is not None for p in raw) and len(set(raw)) >= 3
    expected = multipletests(raw, alpha=0.05, method="holm")[1]
    assert [c.p_adjusted for c in comps] == pytest.approx(list(expected), abs=0)
    assert all(c.p_adjusted >= c.p_value for c in comps)  # type: ignore[operator]
    assert [c.significant for c in comps] == [p < 0.05 for p in expected]
    assert decision.to_dict()["comparisons"]["exact_match"]["p_adjusted"] == comps[0].p_adjusted


def test_holm_can_turn_a_raw_significant_drop_into_noise() -> None:
    new, base = _four_metric_results()
    em = RegressionGate(0.0, correction="none", require_significance=True).compare(new, base)
    holm = RegressionGate(0.0, correction="holm", require_significance=True).compare(new, base)
    raw_p = em.comparisons["exact_match"].p_value
    assert raw_p is not None and raw_p < 0.05  # McNemar 10 vs 2 discordant: p ~ 0.039
    assert em.comparisons["exact_match"].p_adjusted == raw_p and em.correction == "none"
    assert em.comparisons["exact_match"].verdict == "regression" and em.comparisons["exact_match"].tripped
    adjusted = holm.comparisons["exact_match"]
    assert adjusted.p_adjusted is not None and adjusted.p_adjusted > 0.05 > adjusted.p_value  # type: ignore[operator]
    assert adjusted.verdict == "drop_not_significant" and not adjusted.tripped
    assert "adjusted p=" in holm.comparisons["rouge_l"].describe("absolute")


def test_one_gated_metric_is_not_corrected_and_holm_can_be_forced() -> None:
    new, base = _four_metric_results()
    one = RegressionGate(metrics=["exact_match"]).compare(new, base)
    assert one.correction == "none"
    assert one.comparisons["exact_match"].p_adjusted == one.comparisons["exact_match"].p_value
    assert RegressionGate(metrics=["exact_match"]).correction_for(1) == "none"
    assert RegressionGate(metrics=["exact_match"]).correction_for(2) == "holm"
    forced = RegressionGate(metrics=["exact_match"], correction="holm").compare(new, base)
    assert forced.correction == "holm"  # Holm over one p-value leaves it as it is
    assert forced.comparisons["exact_match"].p_adjusted == pytest.approx(
        one.comparisons["exact_match"].p_value
    )
    # Untested metrics (no per-item scores) are no part of the family.
    plain = EvalResult.from_dict(new.to_dict(include_scores=False))
    assert all(c.p_adjusted is None for c in RegressionGate().compare(plain, base).comparisons.values())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"correction": "bonferroni"}, "correction"), ({"power": 1.0}, "power"), ({"power": 0.0}, "power")],
)
def test_gate_refuses_an_unknown_correction_or_power_outside_zero_one(kwargs: dict, match: str) -> None:
    with pytest.raises(EvaluationError, match=match):
        RegressionGate(**kwargs)


def test_holm_adjust_of_nothing_is_nothing() -> None:
    from provenir.eval.regression import holm_adjust

    assert holm_adjust([]) == []
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_mde_of_a_continuous_metric_matches_a_direct_noncentral_t_power_calculation() -> None:
    import numpy as np
    from scipy.stats import nct, t

    new, base = _four_metric_results()
    comp = RegressionGate(0.02).compare(new, base).comparisons["token_f1"]
    diffs = np.asarray(new.metrics["token_f1"].scores) - np.asarray(base.metrics["token_f1"].scores)
    n, sd = diffs.size, float(np.std(diffs, ddof=1))
    assert comp.mde is not None
    crit, nc = t.isf(0.025, n - 1), comp.mde / sd * np.sqrt(n)
    power = nct.sf(crit, n - 1, nc) + nct.cdf(-crit, n - 1, nc)
    assert power == pytest.approx(0.8, abs=1e-4)
    assert f"smaller than {100 * comp.mde:.1f} points" in (comp.detectable or "")


def test_mde_of_a_binary_metric_matches_a_direct_normal_power_calculation() -> None:
    from scipy.stats import norm

    new, base = _four_metric_results()
    comp = RegressionGate(0.02).compare(new, base).comparisons["exact_match"]
    se = (12 / 100) ** 0.5 / 100**0.5  # 12 discordant items out of 100
    assert comp.mde is not None
    z = norm.isf(0.025)
    power = norm.sf(z - comp.mde / se) + norm.cdf(-z - comp.mde / se)
    assert power == pytest.approx(0.8, abs=1e-4)
    # 4.1 points and more here; the sentence also says it exceeds the 2-point tolerance.
    assert comp.detectable is not None and "more than the tolerance of 2.0 points" in comp.detectable
    decision = RegressionGate(0.02).compare(new, base)
    assert f"exact_match: {comp.detectable}" in decision.detectability()


def test_mde_sentences_shrink_as_the_set_grows() -> None:
    import re

    new, base = _four_metric_results()
    previous: dict[str, float] = {}
    for copies in (1, 2, 4, 16):
        big_new = _result(**{k: (m.scores or []) * copies for k, m in new.metrics.items()})
        big_base = _result(**{k: (m.scores or []) * copies for k, m in base.metrics.items()})
        decision = RegressionGate(0.02).compare(big_new, big_base)
        for name, comp in decision.comparisons.items():
            stated = float(re.search(r"smaller than ([0-9.]+) points", comp.detectable or "").group(1))  # type: ignore[union-attr]
            assert f"({100 * copies} items)" in (comp.detectable or "")
            if name in previous:
                assert comp.mde < previous[name]  # type: ignore[operator]
            previous[name] = comp.mde  # type: ignore[assignment]
            assert stated == pytest.approx(100 * comp.mde, abs=0.051)  # type: ignore[operator]


def test_mde_below_the_tolerance_says_nothing_about_it_and_relative_mode_uses_the_baseline_scale() -> None:
    new, base = _binary_pairs(30, 30, 940)  # 1000 items, 6% discordant: MDE ~ 2.2 points
    em = (
        RegressionGate(0.05)
        .compare(_result(exact_match=new), _result(exact_match=base))
        .comparisons["exact_match"]
    )
    assert em.mde is not None and em.mde < 0.05 and "tolerance" not in (em.detectable or "")
    # Relative 5% of a 0.97 baseline is 4.85 points: still above the MDE ...
    rel = RegressionGate(0.05, mode="relative").compare(_result(exact_match=new), _result(exact_match=base))
    assert "tolerance" not in (rel.comparisons["exact_match"].detectable or "")
    # ... relative 1% (0.97 points) is below it.
    rel = RegressionGate(0.01, mode="relative").compare(_result(exact_match=new), _result(exact_match=base))
    assert "more than the tolerance of 1.0 points" in (rel.comparisons["exact_match"].detectable or "")


def test_mde_without_spread_or_scores_or_pairs() -> None:
    same = _result(token_f1=[0.5] * 20)
    comp = RegressionGate().compare(same, same).comparisons["token_f1"]
    assert comp.mde is None and "cannot be estimated" in (comp.detectable or "")
    plain = EvalResult.from_dict(same.to_dict(include_scores=False))
    assert RegressionGate().compare(plain, plain).comparisons["token_f1"].detectable is None
    # Different item counts: no paired test, but a two-sample MDE from the pooled SD.
    from statsmodels.stats.power import TTestIndPower

    rng = random.Random(2)
    a, b = [rng.random() for _ in range(40)], [rng.random() for _ in range(60)]
    comp = RegressionGate().compare(_result(token_f1=a), _result(token_f1=b)).comparisons["token_f1"]
    import numpy as np

    pooled = np.sqrt((39 * np.var(a, ddof=1) + 59 * np.var(b, ddof=1)) / 98)
    size = TTestIndPower().solve_power(nobs1=60, alpha=0.05, power=0.8, ratio=40 / 60)
    assert comp.test is None and comp.mde == pytest.approx(size * pooled)


def _clustered(scores: dict[str, list[float]], clusters: list[str]) -> EvalResult:
    result = _result(**scores)
    result.clusters = clusters
    return result


def test_shared_prompts_get_a_cluster_robust_wald_test_equal_to_statsmodels() -> None:
    import numpy as np
    import statsmodels.api as sm
    from scipy.stats import norm

    rng = random.Random(9)
    clusters = [f"p{i // 5}" for i in range(200)]  # 40 prompts, 5 samples each
    effect = {c: rng.gauss(-0.05, 0.1) for c in set(clusters)}
    base = [rng.random() for _ in range(200)]
    new = [b + effect[c] + rng.gauss(0, 0.02) for b, c in zip(base, clusters, strict=True)]
    decision = RegressionGate(0.02).compare(
        _clustered({"token_f1": new}, clusters), _clustered({"token_f1": base}, clusters)
    )
    comp = decision.comparisons["token_f1"]
    diffs = np.asarray(new) - np.asarray(base)
    fit = sm.OLS(diffs, np.ones(200)).fit(
        cov_type="cluster", cov_kwds={"groups": np.repeat(np.arange(40), 5)}
    )
    assert comp.test == "clustered_wald" and comp.n_clusters == 40
    assert comp.clustered_se == pytest.approx(fit.bse[0], rel=1e-12)
    assert comp.p_value == pytest.approx(fit.pvalues[0], rel=1e-9)
    half = norm.isf(0.025) * fit.bse[0]
    assert (comp.delta_ci_lower, comp.delta_ci_upper) == pytest.approx(
        (diffs.mean() - half, diffs.mean() + half)
    )
    # The clustered SE is larger than the naive one here: the MDE says so too.
    naive = (
        RegressionGate(0.02).compare(_result(token_f1=new), _result(token_f1=base)).comparisons["token_f1"]
    )
    assert comp.mde > naive.mde  # type: ignore[operator]
    z = norm.isf(0.025)
    assert norm.sf(z - comp.mde / fit.bse[0]) + norm.cdf(-z - comp.mde / fit.bse[0]) == pytest.approx(0.8)  # type: ignore[operator]


def test_clusters_of_single_items_change_nothing_and_different_clusters_are_refused() -> None:
    new, base = _binary_pairs(10, 2, 28)
    alone = [f"p{i}" for i in range(40)]
    comp = RegressionGate().compare(
        _clustered({"exact_match": new}, alone), _clustered({"exact_match": base}, alone)
    )
    assert comp.comparisons["exact_match"].test == "mcnemar"
    one_sided = RegressionGate().compare(
        _clustered({"exact_match": new}, [f"p{i // 2}" for i in range(40)]), _result(exact_match=base)
    )
    assert one_sided.comparisons["exact_match"].test == "clustered_wald"
    with pytest.raises(EvaluationError, match="different clusters"):
        RegressionGate().compare(
            _clustered({"exact_match": new}, [f"p{i // 2}" for i in range(40)]),
            _clustered({"exact_match": base}, [f"p{i // 4}" for i in range(40)]),
        )


def test_markdown_summary_has_a_row_per_metric_with_every_figure() -> None:
    new, base = _four_metric_results()
    decision = RegressionGate(0.02).compare(new, base)
    text = decision.to_markdown()
    assert text.startswith("### Regression gate: FAILED")
    assert "| metric | baseline | new | delta | 95% CI of delta | p | adjusted p | MDE | verdict |" in text
    for name, c in decision.comparisons.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert (
            cells[1] == f"{c.baseline:.4f}" and cells[2] == f"{c.new:.4f}" and cells[3] == f"{c.delta:+.4f}"
        )
        assert cells[4] == f"[{c.delta_ci_lower:+.4f}, {c.delta_ci_upper:+.4f}]"
        assert cells[5] == f"{c.p_value:.3g}" and cells[6] == f"{c.p_adjusted:.3g}"
        assert cells[7] == f"{100 * c.mde:.1f} pts"  # type: ignore[operator]
        assert cells[8] == (f"**{c.verdict}**" if c.tripped else c.verdict)
    assert (
        "Holm correction" in text
        and f"- exact_match: {decision.comparisons['exact_match'].detectable}" in text
    )
    same = RegressionGate(0.02, correction="none").compare(base, base).to_markdown(title="Gate")
    assert same.startswith("### Gate: passed") and "no multiplicity correction" in same
    missing = RegressionGate().compare(_result(exact_match=[1.0]), _result(exact_match=[1.0], bleu4=[0.5]))
    assert "| bleu4 | 0.5000 | — | — | — | — | — | — | **missing** |" in missing.to_markdown()


def test_retention_is_empty_until_filled_and_a_tripped_retention_fails_the_gate() -> None:
    from provenir.eval.regression import MetricComparison

    base = _result(token_f1=[0.8] * 10)
    decision = RegressionGate().compare(base, base)
    assert decision.retention == {} and decision.passed and decision.to_dict()["retention"] == {}
    fine = MetricComparison("mmlu", 0.5, 0.5, 0.0, 0.0, 0.02, False, "within_tolerance", False)
    assert decision.add_retention({"mmlu": fine}).passed
    broken = MetricComparison("gsm8k", 0.5, 0.3, -0.2, 0.2, 0.02, True, "regression", True)
    assert not decision.add_retention({"gsm8k": broken}).passed
    assert decision.tripped == ["retention/gsm8k"] and "gsm8k dropped" in decision.message()
    assert "| retention/gsm8k |" in decision.to_markdown()


def test_a_tested_comparison_without_an_adjusted_p_value_is_described_with_its_raw_p() -> None:
    from provenir.eval.regression import MetricComparison

    comp = MetricComparison("exact_match", 0.8, 0.7, -0.1, 0.1, 0.02, True, "regression", True)
    comp.test, comp.p_value, comp.significant = "mcnemar", 0.01, True
    assert comp.describe("absolute").endswith("mcnemar p=0.01, significant)")
    comp.p_adjusted = 0.03
    assert comp.describe("absolute").endswith("mcnemar p=0.01, adjusted p=0.03, significant)")
    comp.p_adjusted = 0.01  # Holm left it unchanged: said once
    assert "adjusted" not in comp.describe("absolute")


def test_unpaired_results_with_scores_on_one_side_get_no_effect_size() -> None:
    rng = random.Random(5)
    base = _result(token_f1=[rng.random() for _ in range(30)])
    new = EvalResult.from_dict(
        _result(token_f1=[rng.random() for _ in range(20)]).to_dict(include_scores=False)
    )
    for a, b in ((new, base), (base, new)):
        comp = RegressionGate(1.0).compare(a, b).comparisons["token_f1"]
        assert comp.test is None and comp.mde is None and comp.detectable is None


def test_relative_tolerance_is_compared_with_the_effect_on_the_baseline_scale() -> None:
    rng = random.Random(11)
    base = [0.5 + rng.uniform(-0.1, 0.1) for _ in range(100)]
    new = [b + rng.gauss(0.0, 0.25) for b in base]
    relative = RegressionGate(0.1, mode="relative").compare(_result(token_f1=new), _result(token_f1=base))
    comp = relative.comparisons["token_f1"]
    # 10% of a ~0.5 baseline is ~5 points, below this set's MDE (~7 points); read as 10 points
    # absolute it would be above it and the warning would be missing.
    assert comp.mde is not None and 0.055 < comp.mde < 0.1
    tolerance_points = 100 * 0.1 * abs(sum(base) / len(base))
    assert f"more than the tolerance of {tolerance_points:.1f} points" in (comp.detectable or "")
    absolute = RegressionGate(0.1).compare(_result(token_f1=new), _result(token_f1=base))
    assert "tolerance" not in (absolute.comparisons["token_f1"].detectable or "")
