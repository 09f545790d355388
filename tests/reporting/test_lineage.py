"""Lineage over reproduce chains: parents and children across every manifest of an output dir."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from reporting_support import stub_run
from rich.console import Console

from provenir.core.errors import ManifestError
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.reporting.lineage import build_lineage, lineage_svg
from provenir.train.reproduce import reproduce


def render(tree: object) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(tree)
    return console.export_text()


@pytest.fixture()
def family(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A -> B -> C (reproduce of a reproduce), A -> D, and an unrelated run E."""
    out = tmp_path / "artifacts"
    a = stub_run(out)
    b = reproduce(RunStore(out).manifest_path(a.run_id)).replay
    c = reproduce(RunStore(out).manifest_path(b.run_id)).replay
    d = reproduce(RunStore(out).manifest_path(a.run_id)).replay
    e = stub_run(out, seed=5)
    return out, {"A": a.run_id, "B": b.run_id, "C": c.run_id, "D": d.run_id, "E": e.run_id}


def test_tree_has_ancestors_siblings_and_children(family: tuple[Path, dict[str, str]]) -> None:
    out, ids = family
    lineage = build_lineage(out, ids["C"])
    assert lineage.root == ids["A"]
    assert set(lineage.nodes) == {ids["A"], ids["B"], ids["C"], ids["D"]}  # E is unrelated
    assert lineage.ancestors() == [ids["A"], ids["B"]]
    assert lineage.nodes[ids["A"]].children == [ids["B"], ids["D"]]  # oldest child first
    assert lineage.nodes[ids["C"]].relation == "reproduce"
    assert build_lineage(out, ids["A"]).descendants() == [ids["B"], ids["C"], ids["D"]]
    assert [n.run_id for _, n in lineage.walk()] == [ids["A"], ids["B"], ids["C"], ids["D"]]
    assert [d for d, _ in lineage.walk()] == [0, 1, 2, 1]

    text = render(lineage.rich_tree())
    lines = [line for line in text.splitlines() if line.strip()]
    order = [next(i for i, line in enumerate(lines) if ids[k][:8] in line) for k in "ABCD"]
    assert order == sorted(order)  # printed depth first
    assert "<- this run" in lines[order[2]]
    assert text.count("reproduce") == 3
    # indentation grows with depth
    indent = {k: len(lines[order[i]]) - len(lines[order[i]].lstrip(" │├└─")) for i, k in enumerate("ABCD")}
    assert indent["A"] < indent["B"] < indent["C"] and indent["B"] == indent["D"]

    lonely = build_lineage(out, ids["E"])
    assert list(lonely.nodes) == [ids["E"]] and lonely.ancestors() == [] and lonely.descendants() == []


def test_svg_draws_every_run_and_edge(family: tuple[Path, dict[str, str]]) -> None:
    out, ids = family
    svg = lineage_svg(build_lineage(out, ids["B"]))
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}rect")) == 4
    assert len(root.findall(f"{ns}path")) == 3  # one edge per parent link
    texts = " ".join(t.text or "" for t in root.iter(f"{ns}text"))
    for k in "ABCD":
        assert ids[k][:8] in texts
    assert "(this run)" in texts and texts.count("reproduce") == 3


def test_missing_ancestor_is_shown_not_hidden(family: tuple[Path, dict[str, str]]) -> None:
    out, ids = family
    RunStore(out).manifest_path(ids["B"]).unlink()
    lineage = build_lineage(out, ids["C"])
    assert lineage.nodes[ids["B"]].missing and lineage.nodes[ids["C"]].parent == ids["B"]
    assert lineage.ancestors() == [ids["A"], ids["B"]]
    assert "manifest not found in this output dir" in render(lineage.rich_tree())


def test_names_print_literally_and_self_loops_end(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    m = stub_run(out)
    edited = RunManifest.load(RunStore(out).manifest_path(m.run_id))
    edited.name, edited.provenance = "[bold red]x[/]", [m.run_id]  # a hand-edited, looping record
    edited.seal().save(RunStore(out).manifest_path(m.run_id))
    lineage = build_lineage(out, m.run_id)
    assert [n.run_id for _, n in lineage.walk()] == [m.run_id]
    assert "[bold red]x[/]" in render(lineage.rich_tree())


def test_unknown_run(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no run"):
        build_lineage(tmp_path, "123e4567-e89b-42d3-a456-426614174000")
    with pytest.raises(ManifestError, match="invalid run id"):
        build_lineage(tmp_path, "../x")
