"""Small scored datasets for the flywheel tests: rows, predictions and a real EvalResult (fixtures in conftest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provenir.eval.harness import EvalResult, MultiMetricEvaluator

ROWS: list[dict[str, Any]] = [
    {"prompt": "What is the capital of Canada?", "response": "The capital of Canada is Ottawa."},
    {"prompt": "Spell the word lamp backwards.", "response": "pmal"},
    {"prompt": "What is 18 plus 6?", "response": "24"},
    {"prompt": "What color is grass?", "response": "Grass is green."},
    {"prompt": "What is the opposite of hot?", "response": "The opposite of hot is cold."},
    {"prompt": "Name a primary color.", "response": "Red is a primary color."},
]
# Rows 0, 2 and 4 are wrong (token F1 well under 0.5); row 3 is half right; 1 and 5 exact.
PREDICTIONS = [
    "I do not know.",
    "pmal",
    "25",
    "Grass is",
    "Warm.",
    "Red is a primary color.",
]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_scored(tmp_path: Path) -> dict[str, Any]:
    """Dataset file, predictions file, a real EvalResult on them and its saved eval.json."""
    data = write_jsonl(tmp_path / "data.jsonl", ROWS)
    preds = write_jsonl(tmp_path / "preds.jsonl", [{"prediction": p} for p in PREDICTIONS])
    result = MultiMetricEvaluator(
        ["exact_match", "token_f1"], n_bootstrap=50, keep_predictions=True
    ).evaluate(ROWS, PREDICTIONS)
    eval_json = result.save(tmp_path / "eval.json")
    return {"data": data, "predictions": preds, "result": result, "eval_json": eval_json, "rows": ROWS}


def flywheel_dict(tmp_path: Path, scored: dict[str, Any], **sections: Any) -> dict[str, Any]:
    """A FlywheelConfig mapping writing under ``tmp_path/artifacts``; ``sections`` replace defaults."""
    base: dict[str, Any] = {
        "name": "fw",
        "output_dir": str(tmp_path / "artifacts"),
        "mining": {
            "eval_data": str(scored["data"]),
            "eval_result": str(scored["eval_json"]),
            "metric": "token_f1",
            "threshold": 0.5,
        },
    }
    base.update(sections)
    return base


def expected_failures(result: EvalResult, threshold: float = 0.5) -> list[int]:
    scores = result.metrics["token_f1"].scores
    assert scores is not None
    return [i for i, s in enumerate(scores) if s < threshold]
