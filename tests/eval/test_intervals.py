"""Wilson equals statsmodels; the bootstrap is seeded, honest and used for continuous metrics."""

from __future__ import annotations

import random

import pytest

from provenir.core.errors import EvaluationError
from provenir.eval.bootstrap import bootstrap_corpus_ci, bootstrap_mean_ci, paired_bootstrap
from provenir.eval.wilson import wilson_interval


def test_wilson_equals_statsmodels() -> None:
    from statsmodels.stats.proportion import proportion_confint

    for n in [1, 2, 3, 5, 10, 17, 50, 99, 100, 1000, 12345]:
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for confidence in (0.95, 0.9, 0.99, 0.5):
                ours = wilson_interval(k, n, confidence)
                ref = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
                assert ours == pytest.approx(ref, abs=1e-15), (k, n, confidence)


def test_wilson_rejects_bad_input() -> None:
    with pytest.raises(EvaluationError, match="empty"):
        wilson_interval(0, 0)
    with pytest.raises(EvaluationError):
        wilson_interval(5, 3)
    with pytest.raises(EvaluationError, match="confidence"):
        wilson_interval(1, 3, confidence=1.0)


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    rng = random.Random(1)
    scores = [rng.random() for _ in range(200)]
    mean = sum(scores) / len(scores)
    a = bootstrap_mean_ci(scores, seed=3)
    assert a == bootstrap_mean_ci(scores, seed=3)
    assert a != bootstrap_mean_ci(scores, seed=4)
    assert a[0] < mean < a[1]
    # Uniform(0,1) has sd ~0.289: the 95% half-width is about 1.96 * 0.289 / sqrt(200) ~ 0.04.
    assert 0.06 < a[1] - a[0] < 0.10
    narrower = bootstrap_mean_ci(scores, confidence=0.5, seed=3)
    assert a[0] < narrower[0] < narrower[1] < a[1]


def test_bootstrap_coverage_is_close_to_nominal() -> None:
    # 200 samples of 60 skewed scores with true mean 0.25: the 90% interval should cover ~90% of the time.
    rng = random.Random(5)
    covered = 0
    for trial in range(200):
        scores = [rng.random() ** 3 for _ in range(60)]  # E[U^3] = 1/4
        lo, hi = bootstrap_mean_ci(scores, confidence=0.9, n_resamples=400, seed=trial)
        covered += lo <= 0.25 <= hi
    assert 0.80 <= covered / 200 <= 0.97


def test_bootstrap_empty_is_a_clear_error() -> None:
    with pytest.raises(EvaluationError, match="empty"):
        bootstrap_mean_ci([])
    with pytest.raises(EvaluationError, match="empty"):
        paired_bootstrap([], [])


def test_corpus_bootstrap_resamples_summed_statistics() -> None:
    import numpy as np

    # corpus score = total correct / total count (a micro-average), different from the mean of ratios.
    stats = np.array([[1, 1], [0, 10], [5, 5], [2, 4]] * 10)
    lo, hi = bootstrap_corpus_ci(stats, lambda s: s[0] / s[1], seed=0)
    assert 0 <= lo < 8 / 20 < hi <= 1


def test_paired_bootstrap_sign_and_noise() -> None:
    rng = random.Random(2)
    base = [rng.random() for _ in range(300)]
    better = [min(1.0, b + 0.1) for b in base]
    res = paired_bootstrap(better, base, seed=0)
    assert res.delta > 0 and res.ci_lower > 0 and res.p_value < 0.01
    same = paired_bootstrap(base, base, seed=0)
    assert same.delta == 0 and same.p_value == 1.0
    noisy = [b + rng.uniform(-0.05, 0.05) for b in base]
    assert paired_bootstrap(noisy, base, seed=0).p_value > 0.05


# -- bad input is refused, defaults are the documented ones ----------------------------------------


@pytest.mark.parametrize("confidence", [0.0, -0.5, 1.0, 1.5])
def test_wilson_refuses_a_confidence_outside_zero_one(confidence: float) -> None:
    with pytest.raises(EvaluationError, match="confidence"):
        wilson_interval(3, 10, confidence=confidence)


@pytest.mark.parametrize(("successes", "n"), [(-1, 10), (0, -3), (-2, -1), (11, 10)])
def test_wilson_refuses_negative_or_impossible_counts(successes: int, n: int) -> None:
    with pytest.raises(EvaluationError):
        wilson_interval(successes, n)


def test_wilson_default_is_the_95_percent_interval() -> None:
    from statsmodels.stats.proportion import proportion_confint

    assert wilson_interval(8, 10) == wilson_interval(8, 10, 0.95)
    assert wilson_interval(8, 10) == pytest.approx(proportion_confint(8, 10, alpha=0.05, method="wilson"))


def _reference_percentile_ci(scores: list[float], confidence: float, n_resamples: int, seed: int):
    """The percentile bootstrap written out plainly: draw, average, take the two percentiles."""
    import numpy as np

    arr = np.asarray(scores)
    idx = np.random.default_rng(seed).integers(0, len(arr), size=(n_resamples, len(arr)))
    means = arr[idx].mean(axis=1)
    lo, hi = np.percentile(means, [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2])
    return means, (float(lo), float(hi))


@pytest.mark.parametrize(("confidence", "n_resamples", "seed"), [(0.95, 1000, 0), (0.8, 300, 7)])
def test_bootstrap_equals_the_plain_percentile_bootstrap(
    confidence: float, n_resamples: int, seed: int
) -> None:
    from provenir.eval.bootstrap import bootstrap_means

    rng = random.Random(11)
    scores = [rng.random() for _ in range(57)]
    means, ci = _reference_percentile_ci(scores, confidence, n_resamples, seed)
    assert list(bootstrap_means(scores, n_resamples=n_resamples, seed=seed)) == pytest.approx(list(means))
    assert bootstrap_mean_ci(
        scores, confidence=confidence, n_resamples=n_resamples, seed=seed
    ) == pytest.approx(ci, abs=1e-12)


def test_bootstrap_defaults_are_1000_resamples_seed_0_and_95_percent() -> None:
    rng = random.Random(4)
    scores = [rng.random() for _ in range(40)]
    _, ci = _reference_percentile_ci(scores, 0.95, 1000, 0)
    assert bootstrap_mean_ci(scores) == pytest.approx(ci, abs=1e-12)
    # A corpus score over integer counts: correct / total, every item out of 4.
    correct = [rng.randrange(5) for _ in range(40)]
    corpus_ci = bootstrap_corpus_ci([[k, 4] for k in correct], lambda s: s[0] / s[1])
    assert corpus_ci == pytest.approx(_reference_percentile_ci([k / 4 for k in correct], 0.95, 1000, 0)[1])
    base = [0.5] * 40
    default = paired_bootstrap(scores, base)
    assert default.n_resamples == 1000
    assert default == paired_bootstrap(scores, base, confidence=0.95, n_resamples=1000, seed=0)
    diff_ci = _reference_percentile_ci([s - 0.5 for s in scores], 0.95, 1000, 0)[1]
    assert (default.ci_lower, default.ci_upper) == pytest.approx(diff_ci, abs=1e-12)


def test_one_item_is_enough_to_bootstrap() -> None:
    assert bootstrap_mean_ci([0.25]) == (0.25, 0.25)
    assert paired_bootstrap([1.0], [0.0]).delta == 1.0


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.1, 1.2])
def test_bootstrap_refuses_a_confidence_outside_zero_one(confidence: float) -> None:
    with pytest.raises(EvaluationError, match="confidence"):
        bootstrap_mean_ci([0.1, 0.2], confidence=confidence)
    with pytest.raises(EvaluationError, match="confidence"):
        bootstrap_corpus_ci([[1, 2], [2, 2]], lambda s: s[0] / s[1], confidence=confidence)
    with pytest.raises(EvaluationError, match="confidence"):
        paired_bootstrap([0.1, 0.2], [0.2, 0.1], confidence=confidence)


def test_bootstrap_refuses_zero_resamples_and_accepts_one() -> None:
    with pytest.raises(EvaluationError, match="n_resamples"):
        bootstrap_mean_ci([0.1, 0.2], n_resamples=0)
    lo, hi = bootstrap_mean_ci([0.1, 0.2], n_resamples=1)
    assert lo == hi


def test_paired_bootstrap_refuses_unpaired_scores() -> None:
    with pytest.raises(EvaluationError, match="same items"):
        paired_bootstrap([0.1, 0.2, 0.3], [0.1, 0.2])


def test_paired_p_value_has_the_plus_one_correction_and_is_two_sided() -> None:
    # Every resampled difference is +1: P(d* <= 0) = (0 + 1) / (R + 1), P(d* >= 0) = (R + 1) / (R + 1).
    better = paired_bootstrap([1.0] * 5, [0.0] * 5, n_resamples=99)
    assert better.p_value == pytest.approx(2 * 1 / 100)
    worse = paired_bootstrap([0.0] * 5, [1.0] * 5, n_resamples=99)
    assert worse.p_value == pytest.approx(2 * 1 / 100)
    assert (better.ci_lower, better.ci_upper) == (1.0, 1.0)


def test_a_sample_larger_than_one_chunk_still_gets_every_resample() -> None:
    from provenir.eval.bootstrap import bootstrap_means

    # More items than one chunk holds indices for: one resample per chunk, each drawn in full.
    n = 2_000_001
    scores = [0.0] * n
    scores[0] = float(n)  # the mean is 1 when item 0 is drawn once
    means = bootstrap_means(scores, n_resamples=2, seed=3)
    assert len(means) == 2
    assert all(0.0 <= m < 30.0 for m in means)


def test_resampling_helpers_default_to_1000_resamples_and_seed_0() -> None:
    from provenir.eval.bootstrap import bootstrap_means, resampled_sums

    scores = [0.1, 0.5, 0.9, 0.3]
    assert resampled_sums(scores).shape == (1000, 1)
    assert (resampled_sums(scores) == resampled_sums(scores, n_resamples=1000, seed=0)).all()
    assert (bootstrap_means(scores) == bootstrap_means(scores, n_resamples=1000, seed=0)).all()


# -- Wilson is statsmodels'; BCa is scipy's --------------------------------------------------------


def test_wilson_is_statsmodels_exactly_and_the_critical_value_is_norm_isf() -> None:
    from scipy.stats import norm
    from statsmodels.stats.proportion import proportion_confint

    from provenir.eval.wilson import normal_critical_value

    for k, n, confidence in [(0, 1, 0.95), (3, 7, 0.9), (50, 50, 0.99), (123, 1000, 0.5)]:
        ref = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
        assert wilson_interval(k, n, confidence) == (float(ref[0]), float(ref[1]))
    assert normal_critical_value(0.95) == float(norm.isf((1 - 0.95) / 2)) == pytest.approx(1.959963984540054)
    for bad in (0.0, 1.0, -1.0, 2.0):
        with pytest.raises(EvaluationError, match="confidence"):
            normal_critical_value(bad)


@pytest.mark.parametrize(
    ("n", "confidence", "n_resamples", "seed"), [(7, 0.95, 200, 0), (60, 0.9, 500, 4), (2500, 0.95, 1000, 1)]
)
def test_bca_equals_scipy_on_the_same_data_and_seed(
    n: int, confidence: float, n_resamples: int, seed: int
) -> None:
    import numpy as np
    from scipy.stats import bootstrap

    from provenir.eval.bootstrap import bca_mean_ci

    scores = np.random.default_rng(n).random(n) ** 3  # skewed: BCa and percentile differ
    ref = bootstrap(
        (scores,),
        np.mean,
        method="BCa",
        confidence_level=confidence,
        n_resamples=n_resamples,
        rng=np.random.default_rng(seed),
    ).confidence_interval
    ours = bca_mean_ci(list(scores), confidence=confidence, n_resamples=n_resamples, seed=seed)
    assert ours == (float(ref.low), float(ref.high))
    assert ours == bca_mean_ci(list(scores), confidence=confidence, n_resamples=n_resamples, seed=seed)
    assert ours != bootstrap_mean_ci(list(scores), confidence=confidence, n_resamples=n_resamples, seed=seed)
    assert ours[0] < float(scores.mean()) < ours[1]


def test_bca_of_equal_scores_is_the_point_and_bad_input_is_refused() -> None:
    from provenir.eval.bootstrap import bca_mean_ci

    assert bca_mean_ci([0.25]) == (0.25, 0.25)
    skewed = [(i % 7) ** 3 / 343 for i in range(30)]
    assert bca_mean_ci(skewed) == bca_mean_ci(
        skewed, confidence=0.95, n_resamples=1000, seed=0
    )  # the defaults
    assert bca_mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    with pytest.raises(EvaluationError, match="empty"):
        bca_mean_ci([])
    for bad in (0.0, 1.0):
        with pytest.raises(EvaluationError, match="confidence"):
            bca_mean_ci([0.1, 0.2], confidence=bad)
    with pytest.raises(EvaluationError, match="n_resamples"):
        bca_mean_ci([0.1, 0.2], n_resamples=0)


def test_the_evaluator_gives_continuous_metrics_bca_on_request() -> None:
    from provenir.eval.bootstrap import bca_mean_ci
    from provenir.eval.harness import MultiMetricEvaluator

    rows = [
        {"prompt": f"q{i}", "response": "the cat sat on the mat", "cluster": f"p{i // 2}"} for i in range(12)
    ]
    preds = ["the cat sat", "a dog", "the cat sat on the mat", "mat", "cat", "the"] * 2
    result = MultiMetricEvaluator(["token_f1", "exact_match"], continuous_interval="bca", seed=2).evaluate(
        rows, preds
    )
    f1 = result.metrics["token_f1"]
    assert f1.interval == "bca" and result.metrics["exact_match"].interval == "wilson"
    assert (f1.ci_lower, f1.ci_upper) == bca_mean_ci(f1.scores or [], seed=2)
    assert result.clusters == [f"p{i // 2}" for i in range(12)]
    assert type(result).from_dict(result.to_dict()).clusters == result.clusters
    assert "clusters" not in result.to_dict(include_scores=False)
    default = MultiMetricEvaluator(["token_f1"]).evaluate(
        [{k: v for k, v in r.items() if k != "cluster"} for r in rows], preds
    )
    assert default.metrics["token_f1"].interval == "bootstrap" and default.clusters is None
    with pytest.raises(EvaluationError, match="continuous_interval"):
        MultiMetricEvaluator(continuous_interval="student")  # type: ignore[arg-type]
    with pytest.raises(EvaluationError, match="'cluster'"):
        MultiMetricEvaluator(["token_f1"]).evaluate(rows[:3] + [{"prompt": "x", "response": "y"}], preds[:4])
    with pytest.raises(EvaluationError, match="cluster ids"):
        MultiMetricEvaluator(["token_f1"]).evaluate_texts(["a", "b"], [["a"], ["b"]], clusters=["p"])


def test_bca_batches_never_drop_to_zero_for_sets_larger_than_the_memory_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np
    from scipy.stats import bootstrap

    from provenir.eval import bootstrap as bootstrap_module

    # With the bound set below the set's size (as 2,000,000 is for a 2M-item set), one resample
    # per batch still runs: the interval is scipy's unbatched one, only computed in small steps.
    monkeypatch.setattr(bootstrap_module, "_CHUNK_ELEMENTS", 10)
    scores = np.random.default_rng(3).random(40) ** 3
    ref = bootstrap(
        (scores,), np.mean, method="BCa", confidence_level=0.95, n_resamples=200, rng=np.random.default_rng(0)
    ).confidence_interval
    ours = bootstrap_module.bca_mean_ci(list(scores), confidence=0.95, n_resamples=200, seed=0)
    assert ours == pytest.approx((float(ref.low), float(ref.high)), rel=1e-12)
