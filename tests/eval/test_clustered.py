"""Cluster-robust standard errors equal statsmodels' OLS on a constant with cov_type="cluster"."""

from __future__ import annotations

import pytest

from provenir.core.errors import EvaluationError
from provenir.eval.clustered import clustered_mean, clustered_standard_error, has_shared_clusters


@pytest.mark.parametrize(("n", "groups", "shift"), [(12, 3, 0.0), (300, 30, 0.1), (1000, 7, -0.02)])
def test_clustered_se_and_p_equal_statsmodels(n: int, groups: int, shift: float) -> None:
    import numpy as np
    import statsmodels.api as sm

    rng = np.random.default_rng(n)
    ids = rng.integers(0, groups, n)
    ids[:groups] = np.arange(groups)  # every cluster present
    values = rng.normal(shift, 0.2, n) + 0.1 * ids / groups
    fit = sm.OLS(values, np.ones(n)).fit(cov_type="cluster", cov_kwds={"groups": ids})
    found = clustered_mean(values, [f"c{i}" for i in ids])
    assert found.standard_error == pytest.approx(fit.bse[0], rel=1e-12)
    assert found.p_value == pytest.approx(fit.pvalues[0], rel=1e-9)
    assert found.mean == pytest.approx(fit.params[0]) and found.n_clusters == groups and found.n == n
    assert clustered_standard_error(values, list(ids)) == found.standard_error


def test_clustering_widens_the_se_of_correlated_items() -> None:
    import numpy as np

    values = [1.0] * 5 + [0.0] * 5 + [1.0] * 5 + [0.0] * 5
    together = clustered_standard_error(values, [i // 5 for i in range(20)])
    alone = clustered_standard_error(values, list(range(20)))
    assert together > alone
    assert alone == pytest.approx(np.std(values, ddof=1) / np.sqrt(20), rel=1e-12)  # singletons: the usual SE


def test_no_noise_gives_p_one_at_zero_and_zero_elsewhere() -> None:
    assert clustered_mean([0.0, 0.0, 0.0, 0.0], ["a", "a", "b", "b"]).p_value == 1.0
    still = clustered_mean([0.2, 0.2, 0.2, 0.2], ["a", "a", "b", "b"])
    assert still.standard_error == 0.0 and still.p_value == 0.0


def test_has_shared_clusters() -> None:
    assert has_shared_clusters(["a", "b", "a"])
    assert not has_shared_clusters(["a", "b", "c"])
    assert not has_shared_clusters(None)
    assert has_shared_clusters([1, "1"])


@pytest.mark.parametrize(
    ("values", "clusters", "match"),
    [([], [], "empty"), ([0.1, 0.2], ["a", "a"], "two clusters"), ([0.1, 0.2], ["a"], "one per item")],
)
def test_bad_input_is_refused(values: list[float], clusters: list[str], match: str) -> None:
    with pytest.raises(EvaluationError, match=match):
        clustered_mean(values, clusters)
