"""Listing runs from the manifests folder (the REST API keeps an index; the CLI reads files)."""

from __future__ import annotations

import os
from typing import Any

from provenir.core.errors import ManifestError
from provenir.core.manifest import RunManifest, manifests_dir


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


def list_runs(output_dir: str | os.PathLike[str] = "artifacts") -> list[dict[str, Any]]:
    """Summaries of every readable manifest, newest first; unreadable files are listed as such."""
    folder = manifests_dir(output_dir)
    rows: list[dict[str, Any]] = []
    if not folder.is_dir():
        return rows
    for path in folder.glob("*.json"):
        try:
            rows.append(summarize(RunManifest.load(path)))
        except ManifestError as exc:
            rows.append({**unreadable_summary(path.stem), "error": str(exc)})
    rows.sort(key=lambda r: r["timestamp"], reverse=True)
    return rows
