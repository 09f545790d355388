"""Helpers shared by the REST API tests: manifests built directly (no training needed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def run_id_for(i: int) -> str:
    """A deterministic valid run id."""
    return str(uuid.UUID(int=i + 1, version=4))


def make_manifest(artifacts: Path, i: int, **fields: Any) -> RunManifest:
    """Seal and save manifest number ``i`` (timestamps one minute apart, so ``i`` orders them)."""
    values: dict[str, Any] = {
        "run_id": run_id_for(i),
        "name": f"run-{i % 3}",
        "status": ("completed", "failed", "running")[i % 3],
        "backend": "stub",
        "algorithm": "sft",
        "config_hash": "c" * 64,
        "dataset_hash": "d" * 64,
        "seed": i,
        "config": {"name": f"run-{i % 3}"},
        "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
        "metrics": {"train_loss": 1.0 / (i + 1)},
    }
    values.update(fields)
    manifest = RunManifest(**values).seal()
    manifest.save(RunStore(artifacts).manifest_path(manifest.run_id))
    return manifest
