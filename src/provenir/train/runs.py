"""Listing the runs of a :class:`~provenir.core.store.RunStore` (the REST API keeps an index; the CLI reads files)."""

from __future__ import annotations

import os
from typing import Any

from provenir.core.errors import ManifestError
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore


def summarize(manifest: RunManifest) -> dict[str, Any]:
    """The fields a run listing shows."""
    return {
        "run_id": manifest.run_id,
        "name": manifest.name,
        "algorithm": manifest.algorithm,
        "backend": manifest.backend,
        "status": manifest.status,
        "timestamp": manifest.timestamp,
        "adapter_hash": manifest.adapter_hash,
        "provenance": manifest.provenance,
        "relation": manifest.relation,
    }


def unreadable_summary(run_id: str) -> dict[str, Any]:
    """The listing row of a manifest file that cannot be read or trusted."""
    return {
        "run_id": run_id,
        "name": "?",
        "algorithm": "?",
        "backend": "?",
        "status": "unreadable",
        "timestamp": "",
        "adapter_hash": None,
        "provenance": [],
        "relation": None,
    }


def list_runs(output_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Summaries of every run in the store at ``output_dir`` (default: the default store), newest
    first; manifests that cannot be read are listed as such."""
    store = RunStore(output_dir)
    rows: list[dict[str, Any]] = []
    for run_id in store.run_ids():
        try:
            rows.append(summarize(RunManifest.load(store.manifest_path(run_id))))
        except ManifestError as exc:
            rows.append({**unreadable_summary(run_id), "error": str(exc)})
    rows.sort(key=lambda r: r["timestamp"], reverse=True)
    return rows
