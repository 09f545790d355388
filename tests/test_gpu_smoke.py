"""bench/gpu_smoke.sh: valid bash, and a clear refusal (exit 3, nothing run) where no CUDA GPU is visible.

The script's real paths (QLoRA 4-bit, bf16, DDP over NCCL) need a CUDA machine; these tests hide
any GPU (``CUDA_VISIBLE_DEVICES=""``) so they check the refusal everywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_smoke.sh"
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BASH), str(SCRIPT), *args],
        env={**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": "", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_script_is_valid_bash() -> None:
    check = subprocess.run([str(BASH), "-n", str(SCRIPT)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_without_a_cuda_gpu_it_refuses_with_exit_3_and_runs_nothing(tmp_path: Path) -> None:
    out = run(SMOKE_DIR=str(tmp_path / "smoke"))
    assert out.returncode == 3, out.stderr
    assert "gpu_smoke: no CUDA GPU visible to torch" in out.stderr and out.stderr.count("\n") == 1
    assert out.stdout == "" and not (tmp_path / "smoke").exists()


def test_no_torch_is_the_same_refusal_and_a_bad_path_a_usage_error(tmp_path: Path) -> None:
    missing = run(PYTHON=str(tmp_path / "no-python"))
    assert missing.returncode == 3 and "no CUDA GPU: torch cannot be imported" in missing.stderr
    unknown = run("qlora", "fp8")
    assert unknown.returncode == 2 and "unknown path 'fp8' (choose from: qlora bf16 ddp)" in unknown.stderr
