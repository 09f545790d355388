"""Where Provenir keeps per-machine state: ``$PROVENIR_HOME``, default ``~/.cache/provenir``.

Built models and the file digest cache live under it; nothing in it is needed to verify a run,
so deleting it only costs rebuilding and rehashing.
"""

from __future__ import annotations

import os
from pathlib import Path


def provenir_home() -> Path:
    """``$PROVENIR_HOME`` if set, else ``~/.cache/provenir`` (read on every call, so tests can move it)."""
    return Path(os.environ.get("PROVENIR_HOME", Path.home() / ".cache" / "provenir"))
