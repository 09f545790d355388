"""Which weights became a run's adapter, and why: the typed ``selected_checkpoint`` of a manifest.

Without ``eval.load_best`` the adapter is the model as training left it (``reason: last_step``).
With it, the adapter is the complete, verified checkpoint whose evaluation scored best
(``reason: best_metric``); the checkpoint's files, as verified before loading, are recorded.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from provenir.core.inputs import CheckpointPin

#: ``SelectedCheckpoint.name`` of the weights as training left them (no checkpoint folder).
FINAL_WEIGHTS = "final"


class SelectedCheckpoint(BaseModel):
    """The weights saved as the run's adapter (or model)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="checkpoint-N when loaded from a checkpoint folder, 'final' for the weights as training "
        "left them."
    )
    step: int = Field(description="Optimiser step of those weights.")
    reason: Literal["last_step", "best_metric"] = Field(
        description="last_step: the weights at the end of training; best_metric: eval.load_best chose the "
        "complete checkpoint with the best metric among the evaluated ones."
    )
    metric: str | None = Field(
        None, description="The metric compared (eval.best_metric), or the one read at the last step."
    )
    value: float | None = Field(
        None, description="The metric's value at that step; None when it was not evaluated there."
    )
    stopped_early: bool = Field(
        False, description="Training stopped before its planned last step (early stopping)."
    )
    checkpoint: CheckpointPin | None = Field(
        None, description="best_metric: the files of the loaded checkpoint, as verified against its marker."
    )
