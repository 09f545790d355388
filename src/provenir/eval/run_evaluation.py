"""Evaluate a trained run or a predictions file, and record the result with the run.

Two entry points, both used by ``provenir eval``:

* :func:`evaluate_predictions_file`: a JSONL file of predictions against a dataset file, no model.
* :func:`evaluate_run`: load a run's base model plus its adapter, generate on the eval data,
  score, write ``<output_dir>/runs/<run_id>/eval.json`` and attach the summary to the manifest
  (:func:`attach_to_manifest`).

Reading a run needs the training stack (tokenizer and model loading, prompt rendering,
the built-in model id): those are imported inside :func:`evaluate_run` only, so this module
and the metrics stay importable without torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from provenir.core.errors import DataError, EvaluationError, ManifestTamperedError
from provenir.core.hashing import sha256_file
from provenir.core.jsonl import iter_json_lines
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.eval.harness import EvalResult, MultiMetricEvaluator

__all__ = ["attach_to_manifest", "evaluate_predictions_file", "read_predictions"]

#: Keys a JSONL predictions line may hold its text under, in order of precedence.
PREDICTION_KEYS: tuple[str, ...] = ("prediction", "output", "completion")


def read_predictions(path: str | os.PathLike[str]) -> list[str]:
    """Predictions from a JSONL file, one per line, in dataset order.

    Each line is either a JSON string (``"Paris"``) or an object whose text is under
    ``prediction`` (or ``output``, or ``completion``). Blank lines are skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise EvaluationError(f"predictions file not found: {p}")
    out: list[str] = []
    try:
        lines = list(iter_json_lines(p))
    except DataError as exc:
        raise EvaluationError(str(exc)) from None
    for lineno, value in lines:
        if isinstance(value, dict):
            key = next((k for k in PREDICTION_KEYS if k in value), None)
            if key is None:
                raise EvaluationError(f"{p}: line {lineno} has none of the keys {', '.join(PREDICTION_KEYS)}")
            value = value[key]
        if not isinstance(value, str):
            raise EvaluationError(
                f"{p}: line {lineno}: the prediction must be a string, got {type(value).__name__}"
            )
        out.append(value)
    if not out:
        raise EvaluationError(f"{p}: no predictions")
    return out


def evaluate_predictions_file(
    predictions_path: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    *,
    evaluator: MultiMetricEvaluator | None = None,
) -> EvalResult:
    """Score a predictions JSONL file against a dataset file (JSONL/JSON/CSV/Parquet, or ``builtin:<name>``).

    Line ``i`` of the predictions pairs with row ``i`` of the dataset; the reference is read as
    :class:`~provenir.eval.harness.MultiMetricEvaluator` documents (``references``,
    ``reference`` or ``response``).
    """
    from provenir.data.loading import read_rows

    predictions = read_predictions(predictions_path)
    rows = read_rows(str(data_path))
    if len(rows) != len(predictions):
        raise EvaluationError(
            f"{predictions_path} has {len(predictions)} predictions but {data_path} has {len(rows)} rows; "
            "they must pair up line by line"
        )
    return (evaluator or MultiMetricEvaluator(keep_predictions=True)).evaluate(rows, predictions)


def attach_to_manifest(
    manifest_path: str | os.PathLike[str],
    result: EvalResult,
    eval_path: Path | None = None,
    *,
    executor: dict[str, Any] | None = None,
) -> RunManifest:
    """Set ``manifest.eval`` to the result's summary (and record ``eval.json``'s hash), then re-seal and save.

    ``executor`` (a :class:`provenir.scale.executor.ExecutorRecord` as a dict) says where the
    predictions were generated when that was not this process; it goes to ``extra["executor"]["eval"]``.

    The manifest hash covers every field, so changing ``eval`` changes the hash: the manifest
    is sealed again (and signed again when a signing key is configured). It is verified first,
    so an evaluation is never attached to a manifest that was already tampered with.
    """
    # Outputs are not checked: eval.json may already have been replaced by this evaluation.
    stored = RunStore.of_manifest_file(manifest_path).open(manifest_path, check_outputs=False)
    manifest = stored.manifest
    if manifest is None or not stored.verification.ok:
        raise ManifestTamperedError(
            f"{manifest_path}: " + "; ".join(stored.verification.problems) + "; not attaching an evaluation"
        )
    manifest.eval = result.summary()
    if executor is not None:
        manifest.extra.setdefault("executor", {})["eval"] = executor
    if eval_path is not None:
        rdir = stored.store.run_dir(manifest.run_id)
        try:
            rel = eval_path.resolve().relative_to(rdir.resolve()).as_posix()
        except ValueError:
            rel = str(eval_path.resolve())
        manifest.outputs[rel] = sha256_file(eval_path)
    key = (manifest.config.get("manifest") or {}).get("signing_key_path")
    manifest.seal(signing_key=key)
    manifest.save(manifest_path)
    return manifest
