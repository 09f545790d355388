"""Failure mining from a real EvalResult (in memory and through eval.json)."""

from __future__ import annotations

from typing import Any

import pytest
from flywheel_assets import PREDICTIONS, ROWS, expected_failures

from provenir.core.errors import EvaluationError
from provenir.eval.harness import EvalResult, MultiMetricEvaluator
from provenir.flywheel.mining import mine_failures


def test_failures_are_the_items_under_the_threshold(scored: dict[str, Any]) -> None:
    result = scored["result"]
    failures = mine_failures(ROWS, result, metric="token_f1", threshold=0.5)
    assert [f.index for f in failures] == expected_failures(result) == [0, 2, 4]
    scores = result.metrics["token_f1"].scores
    for f in failures:
        assert f.prompt == ROWS[f.index]["prompt"]
        assert f.reference == ROWS[f.index]["response"]
        assert f.score == scores[f.index] < 0.5
        assert f.prediction == PREDICTIONS[f.index]
        assert f.key == result.item_keys[f.index]


def test_eval_json_round_trip_mines_the_same_failures(scored: dict[str, Any]) -> None:
    loaded = EvalResult.load(scored["eval_json"])
    assert mine_failures(ROWS, loaded, metric="token_f1", threshold=0.5) == mine_failures(
        ROWS, scored["result"], metric="token_f1", threshold=0.5
    )


def test_threshold_is_strict_and_metric_selectable(scored: dict[str, Any]) -> None:
    result = scored["result"]
    # exact_match is 0/1: threshold 1.0 mines every inexact item, threshold 0.0 none.
    em = mine_failures(ROWS, result, metric="exact_match", threshold=1.0)
    assert [f.index for f in em] == [0, 2, 3, 4]
    assert mine_failures(ROWS, result, metric="exact_match", threshold=0.0) == []


def test_max_failures_keeps_the_lowest_scores_in_dataset_order(scored: dict[str, Any]) -> None:
    result = scored["result"]
    scores = result.metrics["token_f1"].scores
    failures = mine_failures(ROWS, result, metric="token_f1", threshold=1.0, max_failures=2)
    lowest = sorted(range(len(ROWS)), key=lambda i: (scores[i], i))[:2]
    assert [f.index for f in failures] == sorted(lowest)


@pytest.mark.parametrize(
    ("rows", "metric", "fragment"),
    [
        (ROWS, "rouge_l", "metric 'rouge_l' is not in the evaluation result"),
        (ROWS[:-1], "token_f1", "scored 6 items but the dataset has 5 rows"),
        ([*ROWS[:2], {"prompt": "Other?", "response": "x"}, *ROWS[3:]], "token_f1", "first differing row 3"),
    ],
)
def test_mismatched_inputs_are_one_clear_error(
    scored: dict[str, Any], rows: list[dict[str, Any]], metric: str, fragment: str
) -> None:
    with pytest.raises(EvaluationError, match=fragment):
        mine_failures(rows, scored["result"], metric=metric, threshold=0.5)


def test_summary_without_scores_is_refused() -> None:
    summary = MultiMetricEvaluator(["token_f1"], n_bootstrap=10).evaluate(ROWS, PREDICTIONS).summary()
    with pytest.raises(EvaluationError, match="no per-item scores"):
        mine_failures(ROWS, EvalResult.from_dict(summary), metric="token_f1", threshold=0.5)
