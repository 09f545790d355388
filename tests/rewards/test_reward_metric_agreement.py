"""A reward and a metric registered under the same name score alike: GRPO trains on what is evaluated."""

from __future__ import annotations

import pytest

from provenir.core.errors import EvaluationError
from provenir.plugins.registry import PluginRegistry
from provenir.rewards.primitives import ExactMatchReward, NormalizedExactMatchReward

PAIRS = [
    ("Paris", "Paris"),
    ("paris", "Paris"),
    (" Paris\n", "Paris"),
    ("The Eiffel Tower!", "eiffel tower"),
    ("an apple", "apple"),
    ("New   York", "new york"),
    ("4", "four"),
    ("4.0", "40"),  # punctuation is dropped, digits kept: SQuAD's rule, not arithmetic
    ("Lyon", "Paris"),
    ("", ""),
    ("", "Paris"),
    ("Zürich", "zürich"),
    ("ZÜRICH", "zürich"),
    ("the", ""),
    ("«Paris»", "Paris"),  # non-ASCII punctuation is kept, as in the official script
]


def _shared_names() -> list[str]:
    return sorted(set(PluginRegistry.list_names("metric")) & set(PluginRegistry.list_names("reward")))


def test_exact_match_is_shared_so_the_agreement_test_is_not_empty() -> None:
    assert "exact_match" in _shared_names()


@pytest.mark.parametrize("name", _shared_names())
def test_metric_and_reward_of_the_same_name_agree(name: str) -> None:
    metric = PluginRegistry.create("metric", name)
    reward = PluginRegistry.create("reward", name)
    predictions = [p for p, _ in PAIRS]
    metric_scores = metric.compute(predictions, [[r] for _, r in PAIRS]).scores
    reward_scores = [reward.score(p, r) for p, r in PAIRS]
    assert reward_scores == metric_scores, name
    assert 0.0 in reward_scores and 1.0 in reward_scores  # the pairs tell a match from a miss


def test_the_strict_reward_is_stricter_than_the_metric() -> None:
    strict = PluginRegistry.create("reward", "exact_match_strict")
    assert isinstance(strict, ExactMatchReward)
    assert strict.score("paris", "Paris") == 0.0
    assert NormalizedExactMatchReward().score("paris", "Paris") == 1.0
    # Wherever the strict reward matches, the normalised one does too.
    for prediction, reference in PAIRS:
        if strict.score(prediction, reference) == 1.0:
            assert NormalizedExactMatchReward().score(prediction, reference) == 1.0


def test_the_normalised_reward_refuses_what_it_cannot_score() -> None:
    with pytest.raises(EvaluationError, match="needs a reference"):
        NormalizedExactMatchReward().score("x")
    with pytest.raises(EvaluationError, match="reference must be a string"):
        NormalizedExactMatchReward().score("x", ["x"])  # type: ignore[arg-type]
    with pytest.raises(EvaluationError, match="prediction must be a string"):
        NormalizedExactMatchReward().score(3, "3")  # type: ignore[arg-type]
