"""MultiMetricEvaluator: the seed snippet, dataset forms, intervals per metric kind, eval.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenir.core.errors import EvaluationError
from provenir.eval.harness import EvalResult, MultiMetricEvaluator

DATASET = [
    {"prompt": "Capital of France?", "response": "Paris"},
    {"prompt": "2+2?", "response": "4"},
    {"prompt": "Colour of grass?", "response": "Grass is green."},
    {"prompt": "Largest planet?", "references": ["Jupiter", "The planet Jupiter"]},
    {"prompt": "Spell cat backwards", "reference": "tac"},
]
PREDICTIONS = ["paris", "four", "grass is green", "jupiter!", "tca"]


def test_seed_snippet_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    dataset, predictions = DATASET, PREDICTIONS
    result = MultiMetricEvaluator().evaluate(dataset, predictions)
    em = result.metrics["exact_match"]
    print(f"{em.mean:.3f}  [{em.ci_lower:.3f}, {em.ci_upper:.3f}]")
    assert capsys.readouterr().out.strip().startswith("0.600  [")
    assert set(result.metrics) == {"exact_match", "token_f1", "bleu4", "rouge_l"}
    assert result.n == 5


def test_interval_kind_follows_the_metric() -> None:
    from statsmodels.stats.proportion import proportion_confint

    result = MultiMetricEvaluator(n_bootstrap=300).evaluate(DATASET, PREDICTIONS)
    em = result.metrics["exact_match"]
    assert em.interval == "wilson" and em.scores == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert (em.ci_lower, em.ci_upper) == pytest.approx(proportion_confint(3, 5, method="wilson"), abs=1e-15)
    for name in ("token_f1", "bleu4", "rouge_l"):
        m = result.metrics[name]
        assert m.interval == "bootstrap" and m.n == 5 and len(m.scores or []) == 5
        assert m.ci_lower <= m.mean <= m.ci_upper
    bleu = result.metrics["bleu4"]
    assert bleu.corpus is not None and bleu.corpus_ci_lower is not None and bleu.corpus_ci_upper is not None


def test_same_seed_same_result_and_dataset_object_accepted() -> None:
    from datasets import Dataset

    a = MultiMetricEvaluator(seed=1).evaluate(DATASET[:3], PREDICTIONS[:3])
    b = MultiMetricEvaluator(seed=1).evaluate(Dataset.from_list(DATASET[:3]), PREDICTIONS[:3])
    assert a.to_dict()["metrics"] == b.to_dict()["metrics"]
    assert a.item_keys == b.item_keys and len(set(a.item_keys or [])) == 3


def test_round_trip_and_atomic_save(tmp_path: Path) -> None:
    result = MultiMetricEvaluator(keep_predictions=True).evaluate(DATASET, PREDICTIONS)
    path = result.save(tmp_path / "run" / "eval.json")
    data = json.loads(path.read_text())
    assert data["n"] == 5
    assert set(data["metrics"]["exact_match"]) >= {"mean", "ci_lower", "ci_upper", "n", "interval", "scores"}
    assert data["metrics"]["rouge_l"]["interval"] == "bootstrap"
    loaded = EvalResult.load(path)
    assert loaded.to_dict() == result.to_dict()
    assert loaded.predictions == PREDICTIONS
    assert EvalResult.from_dict(result.to_dict()).metrics["token_f1"].mean == result.metrics["token_f1"].mean
    assert "scores" not in result.summary()["metrics"]["token_f1"]
    assert [p.name for p in path.parent.iterdir()] == ["eval.json"]  # no temp file left behind
    assert result.per_item()[0]["exact_match"] == 1.0


def test_errors_are_clear() -> None:
    ev = MultiMetricEvaluator(["exact_match"])
    with pytest.raises(EvaluationError, match="empty"):
        ev.evaluate([], [])
    with pytest.raises(EvaluationError, match="pair up"):
        ev.evaluate(DATASET, PREDICTIONS[:2])
    with pytest.raises(EvaluationError, match="row 0: no reference"):
        ev.evaluate([{"prompt": "x"}], ["y"])
    with pytest.raises(EvaluationError, match="prediction 0"):
        ev.evaluate(DATASET[:1], [None])  # type: ignore[list-item]
    with pytest.raises(EvaluationError, match="non-empty list"):
        ev.evaluate([{"references": []}], ["y"])
    with pytest.raises(Exception, match="unknown metric 'nope'"):
        MultiMetricEvaluator(["nope"])
    with pytest.raises(EvaluationError, match="not found"):
        EvalResult.load("/no/such/eval.json")
