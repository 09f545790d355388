"""Provenance across every manifest of an artifacts folder: who a run came from, and what came from it.

A manifest records its ancestors (``provenance``, oldest first) and how it relates to its direct
parent (``relation``: ``reproduce``, ``rlaif``, ``resume``, ...). Each run therefore has at most
one parent, so the runs sharing an oldest ancestor form a tree. :func:`build_lineage` finds that
tree for one run, :meth:`Lineage.rich_tree` prints it and :func:`lineage_svg` draws it::

    from provenir.reporting.lineage import build_lineage

    lineage = build_lineage("artifacts", run_id)
    rich.print(lineage.rich_tree())

Ancestors whose manifest is not in the folder appear as ``missing`` nodes, so a gap in the
record is visible rather than silently closed.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from provenir.core.errors import ManifestError
from provenir.core.manifest import RunManifest, validate_run_id
from provenir.core.store import RunStore

if TYPE_CHECKING:
    from rich.tree import Tree


@dataclass
class LineageNode:
    """One run in a lineage tree (``missing`` when only a descendant's provenance names it)."""

    run_id: str
    parent: str | None
    name: str = "?"
    relation: str | None = None
    status: str = "missing"
    timestamp: str = ""
    adapter_hash: str | None = None
    missing: bool = True
    children: list[str] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        """First 8 characters of the run id: enough to tell runs apart by eye."""
        return self.run_id[:8]


@dataclass
class Lineage:
    """The tree of runs that share ``root`` as oldest ancestor; ``focus`` is the run asked about."""

    root: str
    focus: str
    nodes: dict[str, LineageNode]

    def ancestors(self) -> list[str]:
        """Run ids from the root down to the focus's parent."""
        chain: list[str] = []
        node = self.nodes[self.focus]
        seen = {self.focus}
        while node.parent is not None and node.parent not in seen:
            seen.add(node.parent)
            chain.append(node.parent)
            node = self.nodes[node.parent]
        return chain[::-1]

    def descendants(self) -> list[str]:
        """Every run below the focus, depth first."""
        out: list[str] = []
        stack = list(reversed(self.nodes[self.focus].children))
        while stack:
            rid = stack.pop()
            if rid in out:
                continue
            out.append(rid)
            stack.extend(reversed(self.nodes[rid].children))
        return out

    def walk(self) -> list[tuple[int, LineageNode]]:
        """``(depth, node)`` for every node from the root, depth first, children oldest first."""
        out: list[tuple[int, LineageNode]] = []
        seen: set[str] = set()
        stack: list[tuple[int, str]] = [(0, self.root)]
        while stack:
            depth, rid = stack.pop()
            if rid in seen:  # a hand-edited provenance could loop; never recurse forever
                continue
            seen.add(rid)
            out.append((depth, self.nodes[rid]))
            stack.extend((depth + 1, c) for c in reversed(self.nodes[rid].children))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: root, focus, and every node from the root, depth first."""
        return {
            "root": self.root,
            "focus": self.focus,
            "nodes": [{"depth": depth, **asdict(node)} for depth, node in self.walk()],
        }

    def rich_tree(self, *, full_ids: bool = False) -> Tree:
        """The tree as a :class:`rich.tree.Tree`, the focus run highlighted.

        ``full_ids``: whole run ids and timestamps (for piped output) instead of short ones.
        """
        from rich.text import Text
        from rich.tree import Tree

        def label(node: LineageNode) -> Text:
            # Text objects, not markup strings: a run name like "[red]x" must print as is.
            text = Text()
            shown = node.run_id if full_ids else node.short_id
            text.append(shown, style="bold cyan" if node.run_id == self.focus else "cyan")
            if node.missing:
                text.append("  (manifest not found in this output dir)", style="yellow")
                return text
            text.append(f"  {node.name}")
            if node.relation:
                text.append(f"  {node.relation}", style="magenta")
            text.append(f"  {node.status}", style="green" if node.status == "completed" else "red")
            if node.timestamp:
                text.append(f"  {node.timestamp if full_ids else node.timestamp[:19]}", style="dim")
            if node.run_id == self.focus:
                text.append("  <- this run", style="bold")
            return text

        trees: dict[str, Tree] = {}
        top: Tree | None = None
        for _, node in self.walk():
            if node.parent is None or node.parent not in trees:
                top = Tree(label(node))
                trees[node.run_id] = top
            else:
                trees[node.run_id] = trees[node.parent].add(label(node))
        assert top is not None
        return top


def _parent_of(manifest: RunManifest) -> str | None:
    return manifest.provenance[-1] if manifest.provenance else None


def load_manifests(output_dir: str | os.PathLike[str]) -> dict[str, RunManifest]:
    """Every readable manifest of the store at ``output_dir``, by run id (unreadable ones skipped)."""
    store = RunStore(output_dir)
    out: dict[str, RunManifest] = {}
    for run_id in store.run_ids():
        try:
            m = RunManifest.load(store.manifest_path(run_id))
        except ManifestError:
            continue
        out[m.run_id] = m
    return out


def build_lineage(
    output_dir: str | os.PathLike[str],
    run_id: str,
    *,
    manifests: dict[str, RunManifest] | None = None,
) -> Lineage:
    """The lineage tree containing ``run_id``: its ancestors, their other descendants and its own.

    Raises :class:`ManifestError` when ``run_id`` has no manifest in ``output_dir``.
    """
    validate_run_id(run_id)
    runs = manifests if manifests is not None else load_manifests(output_dir)
    if run_id not in runs:
        raise ManifestError(f"no run {run_id!r} in {RunStore(output_dir).manifests_dir}")
    focus = runs[run_id]
    root = focus.provenance[0] if focus.provenance else run_id
    members = {rid: m for rid, m in runs.items() if rid == root or root in m.provenance}
    nodes: dict[str, LineageNode] = {}
    for rid, m in members.items():
        nodes[rid] = LineageNode(
            run_id=rid,
            parent=_parent_of(m),
            name=m.name,
            relation=m.relation,
            status=m.status,
            timestamp=m.timestamp,
            adapter_hash=m.adapter_hash,
            missing=False,
        )
        # Ancestors named in provenance but absent from the folder become placeholders.
        chain = m.provenance
        for i, ancestor in enumerate(chain):
            if ancestor not in nodes and ancestor not in members:
                nodes[ancestor] = LineageNode(run_id=ancestor, parent=chain[i - 1] if i else None)
    for node in sorted(nodes.values(), key=lambda n: (n.timestamp, n.run_id)):
        if node.parent is not None and node.parent in nodes and node.parent != node.run_id:
            nodes[node.parent].children.append(node.run_id)
    return Lineage(root=root, focus=run_id, nodes=nodes)


# -- drawing ------------------------------------------------------------------------------------

_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _PAD = 190, 54, 50, 16, 12


def lineage_svg(lineage: Lineage, *, href: Callable[[LineageNode], str | None] | None = None) -> str:
    """A standalone SVG drawing of the tree: one box per run, left to right from the root.

    Every label is XML-escaped (run names and relations come from manifest files), and the
    drawing references nothing outside itself. ``href`` (for a drawing inlined in a web page)
    makes each box whose node it gives a URL for a link, titled with the run it leads to.
    """
    placed = lineage.walk()
    # Leaves take successive rows; a parent sits level with its first child (a tidy, compact tree).
    rows: dict[str, float] = {}
    next_row = 0
    for _, node in reversed(placed):
        kids = [c for c in node.children if c in rows]
        if kids:
            rows[node.run_id] = max(rows[c] for c in kids)
        else:
            rows[node.run_id] = next_row
            next_row += 1
    # Reversed post-order numbers leaves bottom-up; flip so the oldest branch is on top.
    top = max(rows.values(), default=0)
    for rid in rows:
        rows[rid] = top - rows[rid]
    max_depth = max((d for d, _ in placed), default=0)
    width = _PAD * 2 + (max_depth + 1) * _BOX_W + max_depth * _GAP_X
    height = _PAD * 2 + (int(top) + 1) * _BOX_H + int(top) * _GAP_Y

    def xy(depth: int, rid: str) -> tuple[float, float]:
        return _PAD + depth * (_BOX_W + _GAP_X), _PAD + rows[rid] * (_BOX_H + _GAP_Y)

    depth_of = {node.run_id: d for d, node in placed}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">'
    ]
    for depth, node in placed:
        if node.parent is None or node.parent not in depth_of:
            continue
        px, py = xy(depth_of[node.parent], node.parent)
        cx, cy = xy(depth, node.run_id)
        x1, y1, x2, y2 = px + _BOX_W, py + _BOX_H / 2, cx, cy + _BOX_H / 2
        mid = (x1 + x2) / 2
        parts.append(
            f'<path d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" fill="none" stroke="#888" stroke-width="1.5"/>'
        )
        if node.relation:
            parts.append(
                f'<text x="{mid}" y="{(y1 + y2) / 2 - 4}" text-anchor="middle" fill="#6a3d9a" font-size="10">'
                f"{html.escape(node.relation[:16])}</text>"
            )
    for depth, node in placed:
        x, y = xy(depth, node.run_id)
        is_focus = node.run_id == lineage.focus
        fill = "#fff3cd" if node.missing else ("#dbeafe" if is_focus else "#f5f5f5")
        stroke = "#1d4ed8" if is_focus else ("#b45309" if node.missing else "#999")
        dash = ' stroke-dasharray="4 3"' if node.missing else ""
        link = href(node) if href is not None else None
        if link is not None:
            label = f"run {node.run_id}" + ("" if node.missing else f" ({node.name}, {node.status})")
            parts.append(f'<a href="{html.escape(link)}"><title>{html.escape(label)}</title>')
        parts.append(
            f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{2 if is_focus else 1}"{dash}/>'
        )
        line2 = "manifest not found" if node.missing else f"{node.name[:22]} · {node.status}"
        parts.append(
            f'<text x="{x + 8}" y="{y + 20}" font-weight="bold">{html.escape(node.short_id)}'
            f"{' (this run)' if is_focus else ''}</text>"
        )
        parts.append(f'<text x="{x + 8}" y="{y + 38}" fill="#333">{html.escape(line2)}</text>')
        if link is not None:
            parts.append("</a>")
    parts.append("</svg>")
    return "\n".join(parts)
