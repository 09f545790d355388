"""Keep third-party chatter out of Provenir's output, only while Provenir is working.

Training and generation go through transformers, TRL, PEFT, datasets and bitsandbytes, which
print progress bars ("Loading weights", "Tokenizing train dataset"), advisory log lines, notes
about optional packages (bitsandbytes' ``kernels``) and FutureWarnings about each other's
deprecated names. None of it is actionable for a Provenir user, and Provenir shows its own
progress. :func:`quiet_libraries` silences exactly that, for the duration of a Provenir call:

* the loggers of those libraries are raised to ERROR, then put back to their own level;
* their progress bars are switched off, then back on if they were on;
* warnings *attributed to* their modules (FutureWarning, DeprecationWarning, UserWarning) are
  ignored through :func:`warnings.catch_warnings`, so the filters in force before are restored
  on exit and a caller's own warnings are never touched.

Errors still surface: libraries raise exceptions, and ERROR-level records pass. Set
``PROVENIR_LIBRARY_LOGS=1`` to see everything (debugging a library).

Libraries reset their logger level when they are first imported, so code that imports one
inside a quiet scope enters :func:`quiet_libraries` again after the import; a nested entry
re-applies the settings to whatever was imported since.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

#: Loggers lowered to ERROR inside a quiet scope.
LIBRARY_LOGGERS = (
    "accelerate",
    "bitsandbytes",
    "datasets",
    "huggingface_hub",
    "peft",
    "torch",
    "transformers",
    "trl",
)
#: Warnings attributed to these top-level modules are ignored inside a quiet scope.
_LIBRARY_MODULES = (
    r"(accelerate|bitsandbytes|datasets|huggingface_hub|peft|pyarrow|safetensors|tokenizers|torch"
    r"|transformers|trl)(\..*)?$"
)
_QUIET_CATEGORIES: tuple[type[Warning], ...] = (
    FutureWarning,
    DeprecationWarning,
    PendingDeprecationWarning,
    UserWarning,
)
#: Set to 1 to leave the libraries' own output alone.
SHOW_ENV = "PROVENIR_LIBRARY_LOGS"


class _Scope:
    """What one outermost quiet scope changed, so that exit restores exactly that."""

    def __init__(self) -> None:
        # logger name -> (level before, level set here); a library that re-configures its
        # logger on import is noticed because the level no longer is the one set here.
        self.levels: dict[str, tuple[int, int]] = {}
        self.bars: dict[str, Any] = {}  # library -> its "enable" function, called on exit
        self.catcher = warnings.catch_warnings()

    def enter(self) -> None:
        self.catcher.__enter__()
        for category in _QUIET_CATEGORIES:
            warnings.filterwarnings("ignore", category=category, module=_LIBRARY_MODULES)
        self.settle()

    def settle(self) -> None:
        for name in LIBRARY_LOGGERS:
            logger = logging.getLogger(name)
            saved = self.levels.get(name)
            if saved is None or logger.level != saved[1]:
                self.levels[name] = (logger.level, logging.ERROR)
            logger.setLevel(logging.ERROR)
        self._bars_off()

    def _bars_off(self) -> None:
        hub = sys.modules.get("huggingface_hub.utils")
        if hub is not None and "huggingface_hub" not in self.bars:
            disabled = getattr(hub, "are_progress_bars_disabled", None)
            if callable(disabled) and not disabled():
                hub.disable_progress_bars()
                self.bars["huggingface_hub"] = hub.enable_progress_bars
        tf = sys.modules.get("transformers.utils.logging")
        if tf is not None and "transformers" not in self.bars and tf.is_progress_bar_enabled():
            # transformers' switch also flips huggingface_hub's; the hub's own state is
            # restored after it (exit runs in reverse order).
            tf.disable_progress_bar()
            self.bars["transformers"] = tf.enable_progress_bar
        ds = sys.modules.get("datasets.utils.tqdm")
        if (
            ds is not None
            and "datasets" not in self.bars
            and not ds.are_progress_bars_disabled()
            # HF_DATASETS_DISABLE_PROGRESS_BARS=0 is the user asking for bars: it has priority.
            and getattr(ds, "HF_DATASETS_DISABLE_PROGRESS_BARS", None) is not False
        ):
            ds.disable_progress_bars()
            self.bars["datasets"] = ds.enable_progress_bars

    def exit(self) -> None:
        try:
            for enable in reversed(list(self.bars.values())):
                with contextlib.suppress(Exception):
                    enable()
            for name, (before, ours) in self.levels.items():
                logger = logging.getLogger(name)
                # A library imported since the last settle() set its own level: leave that one.
                if logger.level == ours:
                    logger.setLevel(before)
        finally:
            self.catcher.__exit__(None, None, None)


_lock = threading.RLock()
_scope: _Scope | None = None
_depth = 0


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence the ML libraries' logs, progress bars and warnings for the ``with`` block.

    Re-entrant: the outermost scope saves and restores, an inner one re-applies the settings
    (call it again right after importing a library inside a scope).

    >>> with quiet_libraries():
    ...     model = AutoModelForCausalLM.from_pretrained(folder)  # doctest: +SKIP
    """
    global _scope, _depth
    if os.environ.get(SHOW_ENV, "").strip() in {"1", "true", "yes"}:
        yield
        return
    with _lock:
        if _scope is None:
            _scope = _Scope()
            _scope.enter()
        else:
            _scope.settle()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _scope is not None:
                scope, _scope = _scope, None
                scope.exit()
