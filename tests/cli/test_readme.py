"""The README's "Using it" commands work as pasted, in one fresh artifacts folder, in order."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ACTIVATE = ". .venv/bin/activate"


def using_it_lines() -> list[str]:
    """Every non-empty line of the bash blocks under the README's "## Using it" heading."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Using it\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, "README.md has no '## Using it' section"
    blocks = re.findall(r"```bash\n(.*?)```", match.group(1), re.S)
    assert blocks, "the 'Using it' section has no bash block"
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_using_it_starts_by_activating_the_venv_and_then_runs_provenir_only() -> None:
    lines = using_it_lines()
    assert shlex.split(lines[0], comments=True) == shlex.split(ACTIVATE)
    for line in lines[1:]:
        assert shlex.split(line, comments=True)[0] == "provenir", line
    # One artifacts folder: nothing points at a sub-folder the demo does not write.
    assert not any("artifacts/" in line.split("#")[0] for line in lines)


@pytest.mark.slow
def test_using_it_commands_run_as_pasted(tmp_path: Path, tiny_model_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the README runs from the repository root
    env = {**os.environ, "PROVENIR_OUTPUT_DIR": str(tmp_path / "artifacts")}
    run_id = None
    for line in using_it_lines()[1:]:
        args = shlex.split(line, comments=True)[1:]
        if run_id is not None:
            args = [a.replace("<run_id>", run_id) for a in args]
        # Shortened compute, same commands: 2 training steps, 8 generated tokens per eval prompt.
        if args[0] == "train":
            args += ["--set", "max_steps=2"]
        if args[0] == "eval":
            args += ["--max-new-tokens", "8"]
        proc = subprocess.run(
            [sys.executable, "-m", "provenir.cli.main", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, line
        if args[0] == "train":
            [manifest] = (tmp_path / "artifacts" / "manifests").glob("*.json")
            run_id = manifest.stem
        if args[0] == "reproduce":
            assert "bitwise identical" in proc.stdout
    assert run_id is not None, "the 'Using it' section trains no run"
