"""The torch part of the environment equals torch's own answers and carries no absolute path."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provenir.core.environment import environment_diff
from provenir.train.torch_environment import capture_torch_environment

torch = pytest.importorskip("torch")

KEYS = {
    "version",
    "cuda",
    "cudnn",
    "nccl",
    "hip",
    "blas",
    "lapack",
    "cpu_capability",
    "num_threads",
    "num_interop_threads",
    "deterministic_algorithms",
    "deterministic_warn_only",
    "cudnn_deterministic",
    "cudnn_benchmark",
    "cuda_matmul_allow_tf32",
    "cudnn_allow_tf32",
    "float32_matmul_precision",
    "gpu_count",
    "gpus",
    "gpu_driver",
}


def test_torch_fields_are_torchs_own_answers() -> None:
    env = capture_torch_environment()
    assert set(env) == KEYS
    assert env["version"] == torch.__version__
    assert env["cuda"] == torch.version.cuda
    assert env["hip"] == torch.version.hip
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["num_threads"] == torch.get_num_threads()
    assert env["num_interop_threads"] == torch.get_num_interop_threads()
    assert env["deterministic_algorithms"] == torch.are_deterministic_algorithms_enabled()
    assert env["cudnn_deterministic"] == torch.backends.cudnn.deterministic
    assert env["cudnn_benchmark"] == torch.backends.cudnn.benchmark
    assert env["cuda_matmul_allow_tf32"] == torch.backends.cuda.matmul.allow_tf32
    assert env["cudnn_allow_tf32"] == torch.backends.cudnn.allow_tf32
    assert env["float32_matmul_precision"] == torch.get_float32_matmul_precision()
    blas = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    assert env["blas"] == (blas.group(1) if blas else None)
    assert (
        env["gpu_count"]
        == len(env["gpus"])
        == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only path")
def test_cpu_only_torch_records_no_gpu() -> None:
    env = capture_torch_environment()
    assert env["gpus"] == [] and env["gpu_driver"] is None and env["nccl"] is None
    if not torch.backends.cudnn.is_available():
        assert env["cudnn"] is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_fields_are_torchs_own_answers() -> None:
    env = capture_torch_environment()
    for index, gpu in enumerate(env["gpus"]):
        props = torch.cuda.get_device_properties(index)
        assert gpu == {
            "name": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "total_memory_bytes": props.total_memory,
        }
    assert env["cudnn"] == torch.backends.cudnn.version()
    if torch.version.cuda:
        assert env["nccl"] == ".".join(map(str, torch.cuda.nccl.version()))
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert env["gpu_driver"] == smi[0]


def test_settings_changes_are_recorded_and_diffed() -> None:
    before = capture_torch_environment()
    threads = torch.get_num_threads()
    precision = torch.get_float32_matmul_precision()
    # warn_only kept as it was: an earlier test in this process (Trainer's full_determinism) may have set it.
    warn_only = before["deterministic_warn_only"]
    try:
        torch.set_num_threads(1 if threads != 1 else 2)
        torch.set_float32_matmul_precision("medium" if precision != "medium" else "high")
        torch.use_deterministic_algorithms(not before["deterministic_algorithms"], warn_only=warn_only)
        after = capture_torch_environment()
    finally:
        torch.set_num_threads(threads)
        torch.set_float32_matmul_precision(precision)
        torch.use_deterministic_algorithms(before["deterministic_algorithms"], warn_only=warn_only)
    expected = [
        f"torch.deterministic_algorithms: {before['deterministic_algorithms']!r} -> "
        f"{after['deterministic_algorithms']!r}",
        f"torch.float32_matmul_precision: {precision} -> {after['float32_matmul_precision']}",
        f"torch.num_threads: {threads} -> {after['num_threads']}",
    ]
    # torch ties cuBLAS TF32 to the float32 matmul precision: "highest" is the only one without it
    tf32 = after["float32_matmul_precision"] != "highest"
    assert after["cuda_matmul_allow_tf32"] is tf32
    if before["cuda_matmul_allow_tf32"] is not tf32:
        expected.insert(0, f"torch.cuda_matmul_allow_tf32: {not tf32!r} -> {tf32!r}")
    assert environment_diff({"torch": before}, {"torch": after}) == expected
    assert capture_torch_environment() == before  # restored, and capturing changed nothing


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_no_absolute_path_in_the_torch_environment() -> None:
    home = str(Path.home())
    for text in _strings(capture_torch_environment()):
        assert not text.startswith("/") and (home in ("/", "") or home not in text), text


def test_importing_the_module_does_not_import_torch() -> None:
    code = "import sys, provenir.train.torch_environment; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
