"""The Trainer callback that streams a run's logged numbers to its experiment tracker.

A module of its own because it subclasses ``transformers.TrainerCallback``: importing
:mod:`provenir.train.tracking` (trackers, the runner, the CLI) stays free of transformers.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from provenir.train.tracking import Tracker, numeric_metrics


class TrackingCallback(TrainerCallback):
    """Forwards each trainer log's numbers (loss, learning_rate, grad_norm, ...) to a Tracker.

    Only the main process logs, at ``state.global_step``::

        TRLBackend(callbacks=[TrackingCallback(tracker)])
    """

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        metrics = numeric_metrics(logs)
        if metrics:
            self.tracker.log_metrics(metrics, step=state.global_step)
