"""With only the base package installed, every command works or says in one line which extra to install.

A virtual environment is built once per test session with pip (its cache makes that a few
seconds): the base ``dependencies`` of pyproject.toml, then this checkout with ``--no-deps``.
Each command's typical invocation must exit 0, or exit 2 with exactly one line
``error: ... pip install 'provenir[EXTRA]'`` naming the extras expected: never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HINT = re.compile(r"^error: .*pip install 'provenir\[([a-z,]+)\]'\)?$")


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="session")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding provenir (a copy of this checkout's package) and its base dependencies only."""
    venv = tmp_path_factory.mktemp("base-install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    installed = _pip(python, *deps)
    if installed.returncode != 0:  # no index and no cache: an environment limit, not a finding
        pytest.skip(f"cannot install the base dependencies here: {installed.stderr.strip()[-300:]}")
    # Installed from a copy: building in the checkout would leave a src/provenir.egg-info there,
    # whose metadata then shadows the real install's entry points for every later test.
    project = tmp_path_factory.mktemp("base-install-project")
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    editable = _pip(python, "--no-deps", "-e", str(project))
    assert editable.returncode == 0, editable.stderr
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u; print([m for m in ('torch', 'numpy') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]", "the base venv must not see any extra"
    return venv


@pytest.fixture(scope="module")
def workdir(base_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a small dataset, a predictions file, and one stub run in ./artifacts."""
    work = tmp_path_factory.mktemp("base-commands")
    (work / "rows.jsonl").write_text(
        json.dumps({"prompt": "Call +1 415 555 0100", "response": "ok"}) + "\n", encoding="utf-8"
    )
    (work / "preds.jsonl").write_text(json.dumps({"prediction": "ok"}) + "\n", encoding="utf-8")
    proc = provenir(base_venv, work, "train", "--set", "backend=stub")
    assert proc.returncode == 0, proc.stderr  # training with the stub backend needs no extra
    return work


def provenir(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", str(cwd)),
        "PROVENIR_OUTPUT_DIR": str(cwd / "artifacts"),
        "HF_HUB_OFFLINE": "1",
        "LC_ALL": "C.UTF-8",
    }
    return subprocess.run(
        [str(venv / "bin" / "provenir"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


# (command line, extras the one-line hint must name; None: the command works without any extra)
CASES: list[tuple[list[str], str | None]] = [
    (["--help"], None),
    (["config", "schema"], None),
    (["config", "show", str(EXAMPLES / "sft_tiny.yaml")], None),
    (["train", str(EXAMPLES / "sft_tiny.yaml"), "--set", "max_steps=2"], "train"),
    (["runs", "list"], None),
    (["manifest", "verify", "latest"], None),
    (["manifest", "show", "latest"], None),
    (["reproduce", "latest"], None),
    (["eval", "latest", "--data", "builtin:prompts-sample"], "train,eval"),
    (["eval", "--predictions", "preds.jsonl", "--data", "rows.jsonl"], "eval"),
    (["rlaif", str(EXAMPLES / "rlaif_offline.yaml")], "train,eval"),
    (["flywheel", str(EXAMPLES / "flywheel_offline.yaml")], "eval"),
    (["scan", "rows.jsonl"], "governance"),
    (["serve"], "api"),
    (["report", "latest", "--out", "report.html"], "report"),
    (["lineage", "latest"], None),
    (["compare", "latest", "latest"], None),
    (["model-card", "--manifest", "latest"], "governance"),
    (["audit"], None),
    (["audit", "verify"], None),
    (["templates", "list"], None),
    (["templates", "render", "alpaca", "--prompt", "hi"], None),
    (["data", "inspect", "rows.jsonl"], None),
    (["data", "contamination", "rows.jsonl", "rows.jsonl"], "train|eval"),
    (["manifest", "keygen", "signing.pem"], "signing"),
    (["manifest", "keygen", "model.pem", "--algorithm", "ecdsa-p256"], "signing"),
    (["sign-model", "latest", "--key", "model.pem"], "signing"),
    (["verify-model", "latest", "--public-key", "model.pem.pub"], "signing"),
]


@pytest.mark.parametrize(
    ("args", "extras"), CASES, ids=[" ".join(Path(a).name for a in args[:2]) for args, _ in CASES]
)
def test_command_works_or_names_its_extra(
    base_venv: Path, workdir: Path, args: list[str], extras: str | None
) -> None:
    proc = provenir(base_venv, workdir, *args)
    shown = f"provenir {' '.join(args)}\nstdout: {proc.stdout[-500:]}\nstderr: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stdout + proc.stderr, shown
    if extras is None:
        assert proc.returncode == 0, shown
        return
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, shown
    match = HINT.match(lines[0])
    assert match, shown
    assert match.group(1) in extras.split("|"), shown
