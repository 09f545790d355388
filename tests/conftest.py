"""Shared fixtures: the built tiny model (once per session) and offline hub settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test may reach a model hub; these make any accidental attempt fail fast.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    """The built-in tiny Llama, built once per machine and cached under $PROVENIR_HOME."""
    from provenir.train.tiny_model import ensure_tiny_model

    return ensure_tiny_model()


@pytest.fixture()
def artifacts(tmp_path: Path) -> Path:
    """A fresh artifacts root."""
    return tmp_path / "artifacts"
