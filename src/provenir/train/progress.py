"""A rich progress bar with the running loss, as a transformers TrainerCallback."""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

from provenir.core.progress import ProgressBar


class RichProgressCallback(TrainerCallback):
    """Shows ``step/max_steps``, elapsed time and the last logged loss; prints nothing off the main process."""

    #: Seconds between redraws. Rich's own refresh thread redraws 10x a second, which costs a
    #: few percent of a small model's training loop on two cores; we redraw from the loop instead.
    REDRAW_EVERY_S = 0.5

    def __init__(self, description: str = "training") -> None:
        self.description = description
        self._progress: ProgressBar | None = None
        self._last_draw = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        # On stdout, always: stderr is kept for problems (tests/train/test_quiet_training.py).
        self._progress = ProgressBar(
            self.description,
            state.max_steps,
            show=True,
            stderr=False,
            completed=state.global_step,
            fields={"loss": ""},
            auto_refresh=False,
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._progress is not None:
            self._progress.update(completed=state.global_step)
            now = time.monotonic()
            if now - self._last_draw >= self.REDRAW_EVERY_S or state.global_step >= state.max_steps:
                self._progress.refresh()
                self._last_draw = now

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if self._progress is not None and logs and "loss" in logs:
            self._progress.update(loss=f"loss {logs['loss']:.4f}")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
