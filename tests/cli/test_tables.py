"""Piped output keeps every id and value whole; every command that prints a table takes --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from provenir.cli.main import build_app


def provenir(*args: str, cwd: Path, output_dir: Path) -> subprocess.CompletedProcess[str]:
    # stdout is a pipe, so not a terminal; COLUMNS=40 would make an 80-column layout even narrower.
    env = {**os.environ, "PROVENIR_OUTPUT_DIR": str(output_dir), "COLUMNS": "40"}
    proc = subprocess.run(
        [sys.executable, "-m", "provenir.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifacts folder with a stub run and its replay (a parent and a child)."""
    root = tmp_path_factory.mktemp("tables")
    out = root / "artifacts"
    provenir(
        "train",
        "--set",
        "backend=stub",
        "--set",
        "name=a-run-name-long-enough-to-be-cut",
        cwd=root,
        output_dir=out,
    )
    provenir("reproduce", "latest", cwd=root, output_dir=out)
    return out


def manifests(out: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted((out / "manifests").glob("*.json"))]


def test_runs_list_piped_keeps_full_ids_hashes_and_times(store: Path) -> None:
    text = provenir("runs", "list", cwd=store.parent, output_dir=store).stdout
    assert "…" not in text
    for m in manifests(store):
        row = next(line for line in text.splitlines() if str(m["run_id"]) in line)
        assert str(m["adapter_hash"]) in row and str(m["timestamp"]) in row and str(m["name"]) in row


def test_lineage_piped_keeps_full_ids(store: Path) -> None:
    text = provenir("lineage", "latest", cwd=store.parent, output_dir=store).stdout
    for m in manifests(store):
        assert str(m["run_id"]) in text
    data = json.loads(provenir("lineage", "latest", "--json", cwd=store.parent, output_dir=store).stdout)
    assert {n["run_id"] for n in data["nodes"]} == {m["run_id"] for m in manifests(store)}
    assert data["nodes"][0]["depth"] == 0 and data["nodes"][1]["relation"] == "reproduce"


def test_compare_piped_keeps_full_hashes(store: Path) -> None:
    a, b = manifests(store)
    text = provenir("compare", str(a["run_id"]), str(b["run_id"]), cwd=store.parent, output_dir=store).stdout
    assert "…" not in text
    for m in (a, b):
        assert str(m["run_id"]) in text and str(m["adapter_hash"]) in text and str(m["config_hash"]) in text


def test_templates_list_piped_keeps_whole_descriptions(tmp_path: Path) -> None:
    text = provenir("templates", "list", cwd=tmp_path, output_dir=tmp_path).stdout
    rows = json.loads(provenir("templates", "list", "--json", cwd=tmp_path, output_dir=tmp_path).stdout)
    assert "…" not in text and len(rows) >= 7
    for row in rows:
        assert any(row["name"] in line and row["format"] in line for line in text.splitlines()), row


def test_reproduce_json(store: Path) -> None:
    data = json.loads(provenir("reproduce", "latest", "--json", cwd=store.parent, output_dir=store).stdout)
    assert data["identical"] is True and data["original_adapter_hash"] == data["replay_adapter_hash"]
    assert data["replay_run_id"] in {m["run_id"] for m in manifests(store)}


# Commands whose normal output is a table (or rows of one): each must offer --json.
TABLE_COMMANDS = [
    ("runs", "list"),
    ("templates", "list"),
    ("data", "contamination"),
    ("eval",),
    ("rlaif",),
    ("flywheel",),
    ("compare",),
    ("lineage",),
    ("reproduce",),
    ("audit",),
    ("scan",),
]


@pytest.mark.parametrize("path", TABLE_COMMANDS, ids=" ".join)
def test_every_table_command_takes_json(path: tuple[str, ...]) -> None:
    command = typer.main.get_command(build_app())
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    assert "--json" in options
