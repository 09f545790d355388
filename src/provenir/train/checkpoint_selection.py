"""Choose the weights that become the adapter: the last step's, or the best complete checkpoint's.

``eval.load_best`` picks, among the checkpoints under ``<run>/checkpoints`` that carry a completion
marker (:mod:`provenir.train.checkpoints`) and were evaluated, the one whose ``eval.best_metric``
is best (the earliest on a tie). Its files are verified against the marker before a single weight
is read; a checkpoint altered since it was saved is refused, and unfinished ones are never
candidates. The choice is returned as a :class:`~provenir.core.selected_checkpoint.SelectedCheckpoint`
for the manifest.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from provenir.core.errors import BackendError
from provenir.core.selected_checkpoint import FINAL_WEIGHTS, SelectedCheckpoint


def metric_key(metric: str) -> str:
    """The key Trainer logs ``metric`` under (``eval_`` prefixed, as transformers does)."""
    return metric if metric.startswith("eval_") else f"eval_{metric}"


def greater_is_better(metric: str, configured: bool | None) -> bool:
    """``configured``, else transformers' rule: lower is better for a loss, higher otherwise."""
    return configured if configured is not None else not metric_key(metric).endswith("loss")


def evaluated_steps(log_history: list[dict[str, Any]], metric: str) -> dict[int, float]:
    """Step -> finite value of ``metric`` for every evaluation in ``log_history`` (the last one per step)."""
    key = metric_key(metric)
    values: dict[int, float] = {}
    for entry in log_history:
        value = entry.get(key)
        if isinstance(value, int | float) and math.isfinite(value) and "step" in entry:
            values[int(entry["step"])] = float(value)
    return values


def last_step_selection(
    log_history: list[dict[str, Any]], step: int, stopped_early: bool, metric: str | None
) -> SelectedCheckpoint:
    """The weights as training left them, with ``metric`` at that step when it was evaluated there."""
    value = evaluated_steps(log_history, metric).get(step) if metric else None
    return SelectedCheckpoint(
        name=FINAL_WEIGHTS,
        step=step,
        reason="last_step",
        metric=metric_key(metric) if metric and value is not None else None,
        value=value,
        stopped_early=stopped_early,
    )


def best_checkpoint(
    run_dir: Path,
    log_history: list[dict[str, Any]],
    metric: str,
    higher_is_better: bool,
    stopped_early: bool,
) -> tuple[Path, SelectedCheckpoint]:
    """The complete, verified, evaluated checkpoint with the best ``metric``, and the record of the choice.

    Raises :class:`~provenir.core.errors.ReproducibilityError` when the chosen checkpoint's files
    changed since it was saved, and :class:`BackendError` when no complete checkpoint was evaluated.
    """
    from provenir.train.checkpoints import marked_checkpoints, verify_checkpoint

    values = evaluated_steps(log_history, metric)
    # Unfinished checkpoints (no marker) are never candidates. Lower sorts first: the value is
    # negated when higher is better, and a tie goes to the earlier step.
    candidates = [
        (-values[step] if higher_is_better else values[step], step, path, marker)
        for step, path, marker in marked_checkpoints(run_dir)
        if step in values
    ]
    if not candidates:
        raise BackendError(
            f"eval.load_best: no complete checkpoint under {run_dir / 'checkpoints'} was evaluated on "
            f"{metric_key(metric)}"
        )
    _, step, path, marker = min(candidates, key=lambda c: (c[0], c[1]))
    pin = verify_checkpoint(path, marker)  # refuses files changed since the marker was written
    return path, SelectedCheckpoint(
        name=path.name,
        step=step,
        reason="best_metric",
        metric=metric_key(metric),
        value=values[step],
        stopped_early=stopped_early,
        checkpoint=pin,
    )


def load_checkpoint_weights(model: Any, folder: Path) -> None:
    """Load the trained weights saved in checkpoint ``folder`` into ``model`` (PEFT adapter or full model)."""
    from safetensors.torch import load_file

    adapter = folder / "adapter_model.safetensors"
    if adapter.is_file():
        from peft import set_peft_model_state_dict

        result: Any = set_peft_model_state_dict(model, load_file(str(adapter)))
        if result.unexpected_keys:
            raise BackendError(
                f"{folder.name}: its adapter does not fit the model ({result.unexpected_keys[0]} unexpected)"
            )
        return
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        from transformers.trainer_utils import load_sharded_checkpoint

        load_sharded_checkpoint(model, str(folder), strict=False)
        return
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise BackendError(f"{folder.name}: no adapter_model.safetensors or model.safetensors to load")
    state = load_file(str(weights))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise BackendError(f"{folder.name}: its weights do not fit the model ({unexpected[0]} unexpected)")
    # save_pretrained leaves tied weights (the LM head sharing the embeddings) out of the file.
    loaded = {t.data_ptr() for name, t in model.state_dict().items() if name in state}
    untied = [name for name in missing if model.state_dict()[name].data_ptr() not in loaded]
    if untied:
        raise BackendError(f"{folder.name}: {untied[0]} is missing from its weights")
