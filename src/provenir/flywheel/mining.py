"""Failure mining: the items of an evaluation that scored under a threshold on one metric.

::

    from provenir.flywheel.mining import mine_failures

    failures = mine_failures(rows, result, metric="token_f1", threshold=0.5)
    failures[0].index, failures[0].prompt, failures[0].score
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from provenir.core.errors import EvaluationError
from provenir.eval.harness import EvalResult, extract_references

__all__ = ["Failure", "mine_failures"]


@dataclass(frozen=True)
class Failure:
    """One failed item: where it is in the scored dataset, what it asked, and how badly it scored.

    ``key`` is the evaluation's item key (hash of prompt and references), so a variant can be
    traced to its item even if the dataset is later reordered.
    """

    index: int
    key: str
    prompt: str
    reference: str
    score: float
    prediction: str | None = None
    system: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (one line of ``failures.jsonl``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Failure:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


def mine_failures(
    rows: Sequence[Mapping[str, Any]],
    result: EvalResult,
    *,
    metric: str,
    threshold: float,
    prompt_field: str = "prompt",
    max_failures: int | None = None,
) -> list[Failure]:
    """Items of ``rows`` whose per-item ``metric`` score in ``result`` is strictly below ``threshold``.

    ``result`` must have scored exactly ``rows``: the counts must match and, when the result
    kept item keys, every key must match the row's (else :class:`EvaluationError`; scores of
    another dataset would point at the wrong items). Failures come in dataset order, or the
    ``max_failures`` lowest-scoring ones (ties by index) when that is set.
    """
    if metric not in result.metrics:
        raise EvaluationError(
            f"metric {metric!r} is not in the evaluation result; it has {', '.join(sorted(result.metrics))}"
        )
    scores = result.metrics[metric].scores
    if scores is None:
        raise EvaluationError(
            f"metric {metric!r} has no per-item scores (a summary, not an eval.json); re-run the evaluation"
        )
    if len(scores) != len(rows):
        raise EvaluationError(
            f"the evaluation scored {len(scores)} items but the dataset has {len(rows)} rows: "
            "point mining.eval_data at the dataset that was evaluated"
        )
    references, keys = extract_references(rows)
    if result.item_keys is not None:
        mismatched = [i for i, (a, b) in enumerate(zip(result.item_keys, keys, strict=True)) if a != b]
        if mismatched:
            raise EvaluationError(
                f"the evaluation's items do not match the dataset (first differing row {mismatched[0] + 1} "
                f"of {len(mismatched)}): point mining.eval_data at the dataset that was evaluated"
            )
    predictions = (
        result.predictions
        if result.predictions is not None and len(result.predictions) == len(rows)
        else None
    )
    failures: list[Failure] = []
    for i, (row, score) in enumerate(zip(rows, scores, strict=True)):
        if score >= threshold:
            continue
        prompt = row.get(prompt_field)
        if not isinstance(prompt, str) or not prompt.strip():
            raise EvaluationError(f"row {i + 1}: column {prompt_field!r} must be non-empty text")
        system = row.get("system")
        failures.append(
            Failure(
                index=i,
                key=keys[i],
                prompt=prompt,
                reference=references[i][0],
                score=float(score),
                prediction=predictions[i] if predictions is not None else None,
                system=system if isinstance(system, str) and system else None,
            )
        )
    if max_failures is not None and len(failures) > max_failures:
        failures = sorted(
            sorted(failures, key=lambda f: (f.score, f.index))[:max_failures], key=lambda f: f.index
        )
    return failures
