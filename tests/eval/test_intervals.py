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
