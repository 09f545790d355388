"""`make demo` run twice keeps both runs (and every run that was there before), each verified and replayed.

The Makefile's install steps are skipped by pointing ``VENV`` at a folder whose stamp is current
and whose ``bin/provenir`` runs this checkout; ``DEMO_ARGS`` switches the demo run to the stub
backend so the recipe itself, not training, is what is timed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_twice_keeps_every_run(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    launcher = venv / "bin" / "provenir"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m provenir.cli.main "$@"\n')
    launcher.chmod(0o755)
    (venv / ".stamp-demo").touch()  # newer than pyproject.toml: nothing to install
    out = tmp_path / "artifacts"
    env = {**os.environ, "PROVENIR_OUTPUT_DIR": str(out)}

    def make_demo() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "make",
                "--no-print-directory",
                "-C",
                str(ROOT),
                "demo",
                f"VENV={venv}",
                "DEMO_ARGS=--set backend=stub",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    # A run the user already had in the folder.
    before = subprocess.run(
        [str(launcher), "train", "--set", "backend=stub", "--set", "name=mine"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert before.returncode == 0, before.stderr
    [mine] = [p.stem for p in (out / "manifests").glob("*.json")]

    demo_runs = []
    for _ in range(2):
        proc = make_demo()
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "bitwise identical" in proc.stdout
        demo_runs.append((venv / "demo-run-id").read_text().strip())
        assert f"ok {demo_runs[-1]}: hash ok" in proc.stdout  # it verified its own run
    ids = {p.stem for p in (out / "manifests").glob("*.json")}
    assert mine in ids and set(demo_runs) <= ids and len(set(demo_runs)) == 2
    assert len(ids) == 5  # the user's run, two demo runs and their two replays
