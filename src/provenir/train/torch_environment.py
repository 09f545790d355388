"""What the torch build and its settings add to a run's environment.

The manifest's ``environment["torch"]`` records the torch, CUDA, cuDNN, NCCL and HIP versions, the
BLAS and CPU kernel family the build dispatches to, thread counts, every determinism and TF32
switch, and each GPU with its compute capability and the driver version: all of these can change
floating-point results between two runs with the same seed. Capture it after the backend has
applied its determinism settings, so the record shows what training ran with::

    from provenir.train.torch_environment import capture_torch_environment

    manifest.environment["torch"] = capture_torch_environment()

torch is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

NVIDIA_SMI_TIMEOUT_S = 5.0


def gpu_driver_version() -> str | None:
    """The NVIDIA driver version from ``nvidia-smi`` (or ``pynvml``), ``None`` when unknown."""
    exe = shutil.which("nvidia-smi")
    if exe is not None:
        try:
            out = subprocess.run(
                [exe, "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=NVIDIA_SMI_TIMEOUT_S,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        if lines:
            return lines[0]  # one driver serves every GPU of a machine
    try:
        import pynvml  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            driver = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # pynvml raises its own NVMLError family when no driver is loaded
        return None
    return driver.decode() if isinstance(driver, bytes) else str(driver)


def _build_setting(config: str, name: str) -> str | None:
    # torch.__config__.show() lists build settings as "NAME=value, "; the rest of it carries
    # absolute compiler paths, so only the named settings are recorded.
    match = re.search(rf"\b{name}=([^,\s]+)", config)
    return match.group(1) if match else None


def _gpus() -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        return []
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        gpus.append(
            {
                "name": props.name,
                "compute_capability": f"{props.major}.{props.minor}",
                "total_memory_bytes": int(props.total_memory),
            }
        )
    return gpus


def _nccl_version() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return None
    try:
        ver = torch.cuda.nccl.version()
    except (AttributeError, RuntimeError):  # a build without NCCL
        return None
    return ".".join(map(str, ver)) if isinstance(ver, tuple) else str(ver)


def capture_torch_environment() -> dict[str, Any]:
    """The torch build, its numeric settings and the GPUs it sees, for ``environment["torch"]``.

    Keys: ``version``, ``cuda``, ``cudnn``, ``nccl``, ``hip`` (``None`` when the build or machine
    lacks them), ``blas``, ``lapack`` (from the build settings), ``cpu_capability`` (the kernel
    family torch dispatches to, e.g. ``AVX512``), ``num_threads``, ``num_interop_threads``,
    ``deterministic_algorithms``, ``deterministic_warn_only``, ``cudnn_deterministic``,
    ``cudnn_benchmark``, ``cuda_matmul_allow_tf32``, ``cudnn_allow_tf32``,
    ``float32_matmul_precision``, ``gpu_count``, ``gpus`` (``name``, ``compute_capability``,
    ``total_memory_bytes`` each) and ``gpu_driver`` (``None`` without GPUs or when unknown).
    """
    import torch

    config = torch.__config__.show()
    gpus = _gpus()
    return {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "nccl": _nccl_version(),
        "hip": torch.version.hip,
        "blas": _build_setting(config, "BLAS_INFO"),
        "lapack": _build_setting(config, "LAPACK_INFO"),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "gpu_count": len(gpus),
        "gpus": gpus,
        "gpu_driver": gpu_driver_version() if gpus else None,
    }
