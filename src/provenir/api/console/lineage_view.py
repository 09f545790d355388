"""What the console's lineage page shows about one run: the provenance tree it belongs to
(parents by reproduce, resume, RLAIF or export, and children), drawn with links, and the
inputs it was trained from (base model, datasets) with the other runs that used the same ones.

The tree is :func:`provenir.reporting.lineage.build_lineage`'s and the drawing
:func:`~provenir.reporting.lineage.lineage_svg`'s (the report's), with each box a link to that
run's lineage. Inputs are the manifest's typed ``inputs`` pins, matched by content digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provenir.api.server_paths import hide_text
from provenir.api.settings import ApiSettings
from provenir.core.manifest import RunManifest
from provenir.reporting.lineage import Lineage, LineageNode, build_lineage, lineage_svg, load_manifests


@dataclass
class InputUse:
    """One input of the run (the base model or a dataset source) and the other runs that used
    content with the same digest."""

    kind: str
    label: str
    digest: str
    detail: str
    also_used_by: list[RunManifest] = field(default_factory=list)


@dataclass
class LineageView:
    """Everything the lineage page shows."""

    focus: RunManifest
    lineage: Lineage
    svg: str
    parents: list[LineageNode]
    children: list[LineageNode]
    inputs: list[InputUse]
    inputs_missing: str | None


def _node_href(node: LineageNode) -> str | None:
    return None if node.missing else f"/ui/runs/{node.run_id}/lineage"


def _inputs(focus: RunManifest, runs: dict[str, RunManifest], roots: list[str]) -> list[InputUse]:
    def users(match: Any) -> list[RunManifest]:
        others = [m for rid, m in runs.items() if rid != focus.run_id and m.inputs is not None and match(m)]
        return sorted(others, key=lambda m: (m.timestamp, m.run_id), reverse=True)

    assert focus.inputs is not None
    out: list[InputUse] = []
    model = focus.inputs.model
    if model is not None:
        digest = model.digest
        out.append(
            InputUse(
                "base model",
                hide_text(model.source, roots),
                digest,
                f"{model.kind}, {len(model.files)} files"
                + (f", revision {model.resolved_revision}" if model.resolved_revision else ""),
                users(lambda m: m.inputs.model is not None and m.inputs.model.digest == digest),
            )
        )
    for source in focus.inputs.datasets:
        sha = source.sha256
        out.append(
            InputUse(
                f"dataset ({source.role})",
                hide_text(source.uri, roots),
                sha,
                f"{source.rows} rows",
                users(lambda m, sha=sha: any(d.sha256 == sha for d in m.inputs.datasets)),
            )
        )
    return out


def lineage_view(settings: ApiSettings, run_id: str, roots: list[str]) -> LineageView:
    """The lineage page of ``run_id`` (:class:`ManifestError` when the store has no such run)."""
    runs = load_manifests(settings.store.root)
    lineage = build_lineage(settings.store.root, run_id, manifests=runs)
    focus = runs[run_id]
    nodes = lineage.nodes
    return LineageView(
        focus=focus,
        lineage=lineage,
        svg=lineage_svg(lineage, href=_node_href),
        parents=[nodes[r] for r in lineage.ancestors()],
        children=[nodes[c] for c in nodes[run_id].children],
        inputs=_inputs(focus, runs, roots) if focus.inputs is not None else [],
        inputs_missing=None
        if focus.inputs is not None
        else f"not recorded in this manifest (schema {focus.schema_version})",
    )
