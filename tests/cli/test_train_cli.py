"""The CLI as a user runs it: a subprocess, real exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def provenir(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provenir.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert fragment in lines[0]


@pytest.mark.parametrize(
    ("yaml_text", "fragment"),
    [
        ("bogus_key: 1\n", "bogus_key: unknown key"),
        ("peft:\n  rank: sixteen\n", "peft.rank: must be an integer"),
        ("peft:\n  rank: -4\n", "peft.rank: must be > 0"),
        ("peft: [\n", "invalid YAML"),
        ("backend: nope\n", "unknown backend 'nope'"),
        ("data:\n  path: /no/such/file.jsonl\n", "dataset not found"),
        ("algorithm: dpo\nbackend: stub\n", "needs column(s) 'chosen', 'rejected'"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, yaml_text: str, fragment: str) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml_text)
    assert_one_line_error(provenir("train", str(cfg), cwd=tmp_path), fragment)


def test_missing_config_file(tmp_path: Path) -> None:
    assert_one_line_error(provenir("train", "missing.yaml", cwd=tmp_path), "config file not found")


def test_bad_override(tmp_path: Path) -> None:
    assert_one_line_error(provenir("train", "--set", "peft.rank", cwd=tmp_path), "expected key.path=value")


def test_train_verify_reproduce_with_stub(tmp_path: Path) -> None:
    proc = provenir("train", "--set", "backend=stub", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [manifest] = (tmp_path / "artifacts" / "manifests").glob("*.json")
    assert "completed" in proc.stdout and str(manifest.name) in proc.stdout

    verify = provenir("manifest", "verify", str(manifest), cwd=tmp_path)
    assert verify.returncode == 0 and "ok" in verify.stdout

    listing = provenir("runs", "list", "--json", cwd=tmp_path)
    assert json.loads(listing.stdout.splitlines()[0])["run_id"] == manifest.stem

    repro = provenir("reproduce", str(manifest), cwd=tmp_path)
    assert repro.returncode == 0 and "bitwise identical" in repro.stdout

    # Edit one output file: verify now fails with one line and exit 2.
    [adapter] = (tmp_path / "artifacts" / "runs" / manifest.stem / "adapter").glob("*.bin")
    adapter.write_bytes(adapter.read_bytes()[:-1] + b"\x00")
    assert_one_line_error(
        provenir("manifest", "verify", str(manifest), cwd=tmp_path), "changed (hash differs)"
    )


def test_config_schema_and_show(tmp_path: Path) -> None:
    schema = json.loads(provenir("config", "schema", cwd=tmp_path).stdout)
    assert schema["title"] == "RunConfig"
    shown = provenir("config", "show", "--set", "seed=3", cwd=tmp_path)
    assert "seed: 3" in shown.stdout and "config_hash:" in shown.stdout
