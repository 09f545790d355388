"""Minimum detectable effects: statsmodels' power solvers, checked against direct power formulas."""

from __future__ import annotations

import math

import pytest

from provenir.core.errors import EvaluationError
from provenir.eval.power import (
    DetectableEffect,
    mde_from_standard_error,
    mde_paired_binary,
    mde_paired_continuous,
    mde_unpaired,
)


def _normal_power(effect: float, se: float, alpha: float) -> float:
    from scipy.stats import norm

    z = norm.isf(alpha / 2)
    return float(norm.sf(z - effect / se) + norm.cdf(-z - effect / se))


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
def test_mde_from_a_standard_error_reaches_the_requested_power(alpha: float) -> None:
    found = mde_from_standard_error(0.01, 500, alpha=alpha, power=0.8)
    assert found.effect is not None and _normal_power(found.effect, 0.01, alpha) == pytest.approx(
        0.8, abs=1e-4
    )
    higher = mde_from_standard_error(0.01, 500, alpha=alpha, power=0.9)
    assert higher.effect > found.effect  # type: ignore[operator]
    assert mde_from_standard_error(0.02, 500, alpha=alpha).effect == pytest.approx(2 * found.effect)


def test_binary_mde_uses_the_discordant_proportion_and_shrinks_with_n() -> None:
    effects = []
    for n in (100, 400, 1600):
        new = [1.0] * (n // 10) + [0.0] * (n - n // 10)
        base = [0.0] * (n // 20) + [1.0] * (n // 20) + [0.0] * (n - n // 10)  # 5% up, 5% same
        found = mde_paired_binary(new, base)
        discordant = sum(a != b for a, b in zip(new, base, strict=True)) / n
        assert found.effect is not None and found.method == "paired_normal_discordant"
        assert _normal_power(found.effect, math.sqrt(discordant / n), 0.05) == pytest.approx(0.8, abs=1e-4)
        effects.append(found.effect)
    assert effects[0] > effects[1] > effects[2]
    assert effects[0] / effects[1] == pytest.approx(2.0, rel=1e-3)  # 1 / sqrt(n)


def test_continuous_mde_is_the_t_effect_size_times_the_sd_and_shrinks_with_n() -> None:
    from scipy.stats import nct, t

    previous = math.inf
    for n in (10, 50, 250):
        diffs = [((i * 37) % 11 - 5) / 20 for i in range(n)]
        found = mde_paired_continuous(diffs)
        sd = float(__import__("numpy").std(diffs, ddof=1))
        crit, nc = t.isf(0.025, n - 1), found.effect / sd * math.sqrt(n)  # type: ignore[operator]
        assert nct.sf(crit, n - 1, nc) + nct.cdf(-crit, n - 1, nc) == pytest.approx(0.8, abs=1e-4)
        assert found.effect < previous  # type: ignore[operator]
        previous = found.effect  # type: ignore[assignment]


def test_what_cannot_be_estimated_says_why() -> None:
    assert mde_paired_continuous([0.3]).effect is None
    assert "no spread" in (mde_paired_continuous([0.1, 0.1, 0.1]).note or "")
    assert "discordant" in (mde_paired_binary([1, 0, 1], [1, 0, 1]).note or "")
    assert mde_from_standard_error(0.0, 10).effect is None
    assert mde_unpaired([0.5], [0.1, 0.2]).effect is None
    assert mde_unpaired([0.5, 0.5], [0.5, 0.5]).effect is None
    # The smallest samples that do have a spread get an effect: two items, or one spread-out side.
    assert mde_paired_continuous([0.1, 0.3]).effect is not None
    assert mde_unpaired([0.5, 0.7], [0.1, 0.3]).effect is not None
    assert mde_unpaired([0.5, 0.5], [0.1, 0.3]).effect is not None
    assert mde_unpaired([0.1, 0.3], [0.5, 0.5]).effect is not None
    sentence = mde_paired_binary([1, 0, 1], [1, 0, 1]).sentence(0.02)
    assert sentence.startswith("the minimum detectable effect cannot be estimated")


def test_unpaired_mde_is_two_sample_t_power() -> None:
    import numpy as np
    from statsmodels.stats.power import TTestIndPower

    new, base = [0.1, 0.4, 0.3, 0.9], [0.2, 0.5, 0.7]
    found = mde_unpaired(new, base)
    assert found.method == "two_sample_t" and found.n == 3
    pooled = np.sqrt((3 * np.var(new, ddof=1) + 2 * np.var(base, ddof=1)) / 5)
    size = TTestIndPower().power(found.effect / pooled, nobs1=3, alpha=0.05, ratio=4 / 3)  # type: ignore[operator]
    assert size == pytest.approx(0.8, abs=1e-4)


def test_sentence_names_the_size_points_and_tolerance() -> None:
    effect = DetectableEffect(0.041, 400, 0.05, 0.8, "paired_t")
    assert (
        effect.sentence()
        == "this set (400 items) cannot detect a drop smaller than 4.1 points (alpha 0.05, power 0.8)"
    )
    assert "tolerance of 2.0 points" in effect.sentence(0.02)
    assert "tolerance" not in effect.sentence(0.041) and "tolerance" not in effect.sentence(0.05)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mde_paired_continuous([]), "empty"),
        (lambda: mde_paired_binary([], []), "empty"),
        (lambda: mde_paired_binary([1, 0], [1]), "same items"),
        (lambda: mde_paired_continuous([0.1, 0.2], alpha=0.0), "alpha"),
        (lambda: mde_paired_continuous([0.1, 0.2], alpha=1.0), "alpha"),
        (lambda: mde_paired_continuous([0.1, 0.2], power=1.0), "power"),
        (lambda: mde_paired_continuous([0.1, 0.2], power=0.0), "power"),
        (lambda: mde_from_standard_error(-0.1, 10), "standard error"),
        (lambda: mde_from_standard_error(float("nan"), 10), "standard error"),
        (lambda: mde_from_standard_error(0.1, 0), "empty"),
    ],
)
def test_bad_input_is_refused(call, match: str) -> None:
    with pytest.raises(EvaluationError, match=match):
        call()
