"""Helpers shared by the reporting tests: instant stub runs and hand-made evaluations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provenir.core.config import RunConfig
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore


def stub_run(output_dir: Path, **overrides: Any) -> RunManifest:
    """A stub-backend run (instant, no model) with config ``overrides``."""
    from provenir.train.runner import train

    return train(RunConfig.from_dict({"backend": "stub", "output_dir": str(output_dir), **overrides}))


def write_eval(output_dir: Path, run_id: str, predictions: list[str], references: list[str]) -> None:
    """Score ``predictions`` and save ``eval.json`` into the run folder (per-item scores kept)."""
    from provenir.eval.harness import MultiMetricEvaluator

    result = MultiMetricEvaluator(["exact_match", "token_f1"]).evaluate_texts(
        predictions, [[r] for r in references], item_keys=[f"item{i}" for i in range(len(references))]
    )
    result.save(RunStore(output_dir).run_dir(run_id) / "eval.json")
