"""Fixtures for the console tests: one store of real stub-backend runs per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from console_support import ConsoleStore, build_store


@pytest.fixture(scope="session")
def console_store(tmp_path_factory: pytest.TempPathFactory) -> ConsoleStore:
    """Baseline, candidate, a reproduction of the baseline and an edited manifest (read-only use)."""
    return build_store(tmp_path_factory.mktemp("console") / "artifacts")


@pytest.fixture()
def fresh_store(tmp_path: Path) -> Path:
    """An empty artifacts root for tests that write."""
    return tmp_path / "artifacts"
