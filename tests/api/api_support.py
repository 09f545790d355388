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


#: Names and algorithms of :func:`make_sortable_store`: repeats, case, non-ASCII and empty values.
SORT_NAMES = ("beta", "alpha", "Zed", "ünïcode", "", "alpha-2")
SORT_ALGORITHMS = ("sft", "dpo", "grpo", "")


def make_sortable_store(artifacts: Path, n: int = 30) -> None:
    """``n`` manifests whose sort keys repeat (so equal keys straddle page boundaries), three per
    start time (ties broken by run id), one without a start time, plus three unreadable files."""
    for i in range(n):
        make_manifest(
            artifacts,
            i,
            name=SORT_NAMES[i % len(SORT_NAMES)],
            algorithm=SORT_ALGORITHMS[i % len(SORT_ALGORITHMS)],
            timestamp="" if i == 7 else (T0 + timedelta(minutes=i // 3)).isoformat(),
        )
    for i in (n, n + 1, n + 2):
        RunStore(artifacts).manifest_path(run_id_for(i)).write_text("{ not json")


def expected_order(summaries: list[dict[str, Any]], sort: str, order: str) -> list[str]:
    """Run ids of ``summaries`` as a sorted listing must give them, computed here in Python: by
    the sort column, then start time, then run id, all in ``order``; runs without a value to sort
    on (unreadable, or an empty value) after all the others, in the same order among themselves."""
    column = "timestamp" if sort == "started" else sort

    def key(r: dict[str, Any]) -> tuple[str, ...]:
        return (r[column], r["timestamp"], r["run_id"])

    def missing(r: dict[str, Any]) -> bool:
        return r["status"] == "unreadable" or r[column] == ""

    out: list[str] = []
    for without_value in (False, True):
        group = [r for r in summaries if missing(r) == without_value]
        out += [r["run_id"] for r in sorted(group, key=key, reverse=order == "desc")]
    return out
