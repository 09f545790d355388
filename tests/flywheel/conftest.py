"""Fixtures of the flywheel tests (the data itself is in flywheel_assets.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flywheel_assets import make_scored


@pytest.fixture()
def scored(tmp_path: Path) -> dict[str, Any]:
    """Dataset file, predictions file, a real EvalResult on them and its saved eval.json."""
    return make_scored(tmp_path)
