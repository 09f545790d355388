"""One progress bar for every long loop: judging a batch, the flywheel's stages, training steps.

Rich is imported only when a bar is shown, so a disabled bar costs nothing (``core`` imports
nothing heavy). A disabled bar accepts every call and does nothing, so callers never branch.

::

    with ProgressBar("judging 40 pairs", 40, show=None) as bar:   # None: only on a terminal
        for item in items:
            ...
            bar.advance()
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

__all__ = ["ProgressBar"]


class ProgressBar:
    """A rich bar: description, bar, ``done/total``, elapsed time, then any named ``fields``.

    Args:
        description: the text before the bar.
        total: steps to completion.
        show: draw it; ``None`` draws it only when the output stream is a terminal.
        stderr: draw on stderr (the default) or stdout.
        completed: steps already done (a resumed loop).
        fields: extra text columns after the time, by name, each with its first value;
            change them with :meth:`update`.
        auto_refresh: let rich redraw from its own thread; ``False`` redraws only on
            :meth:`refresh` (cheaper in a tight loop).
    """

    def __init__(
        self,
        description: str,
        total: int,
        *,
        show: bool | None = None,
        stderr: bool = True,
        completed: int = 0,
        fields: dict[str, str] | None = None,
        auto_refresh: bool = True,
    ) -> None:
        stream = sys.stderr if stderr else sys.stdout
        self.enabled = stream.isatty() if show is None else show
        self._progress: Any = None
        self._task: Any = None
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            *(TextColumn(f"{{task.fields[{name}]}}") for name in fields or {}),
            console=Console(stderr=stderr),
            transient=False,
            auto_refresh=auto_refresh,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, completed=completed, **(fields or {}))

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more as done."""
        if self._progress is not None:
            self._progress.advance(self._task, steps)

    def update(self, *, completed: int | None = None, **fields: str) -> None:
        """Set the steps done and/or the text of named fields."""
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, **fields)

    def refresh(self) -> None:
        """Redraw now (needed with ``auto_refresh=False``)."""
        if self._progress is not None:
            self._progress.refresh()

    def close(self) -> None:
        """Draw the final state and stop; further calls do nothing."""
        if self._progress is not None:
            self._progress.refresh()
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
