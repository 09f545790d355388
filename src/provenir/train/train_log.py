"""``train_log.jsonl`` written while training runs, so a run that stops early keeps what it logged.

The run driver rewrites the file from the backend's full log when training completes (and
hashes it into the manifest's outputs). Until then :class:`TrainLogCallback` keeps it current:
a run interrupted with Ctrl-C, killed, or failed half way leaves every entry Trainer logged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from provenir.core.atomic import atomic_write_text

#: The log's file name inside a run folder.
TRAIN_LOG = "train_log.jsonl"


def log_lines(entries: list[dict[str, Any]]) -> str:
    """The JSON-lines text of ``entries`` (keys sorted), as the run driver writes it."""
    return "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)


class TrainLogCallback(TrainerCallback):
    """Keeps ``path`` equal to ``state.log_history`` as Trainer logs; remembers the last step.

    On train begin the file is rewritten from the history (a resumed run starts from its
    checkpoint's history, dropping entries logged after that checkpoint by the stopped run);
    each log entry is then appended and flushed. Only the main process writes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        #: The last completed optimizer step, ``None`` before training began.
        self.step: int | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step = state.global_step
        if state.is_world_process_zero:
            atomic_write_text(self.path, log_lines(list(state.log_history)))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step = state.global_step

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero and state.log_history:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(log_lines(state.log_history[-1:]))
                fh.flush()
