"""What a run ran on, down to what changes floating-point results, and its git commit.

The manifest's ``environment`` holds, besides the interpreter, OS and tracked package versions,
the CPU model and the instruction-set flags that select different math kernels, how many CPUs the
process may use, and the environment variables that set thread counts or numeric modes: a replay
that differs in any of these can give different bits from the same seed. No absolute path is
recorded (a manifest must not carry a user's home directory).

Versions come from package metadata and CPU facts from the OS, so recording them never imports
torch; the torch build and its settings are recorded by ``provenir.train.torch_environment``.

:func:`environment_diff` names the fields in which two recorded environments differ::

    environment_diff(original.environment, replay.environment)
    # ['cpu.model: Intel(R) Xeon(R) ... -> AMD EPYC ...', 'packages.torch: 2.13.0 -> 2.14.0']
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from provenir.core.extras import TRAINING_STACK

TRACKED_PACKAGES = ("provenir", *TRAINING_STACK, "bitsandbytes", "tokenizers")

# Instruction sets whose presence makes BLAS, oneDNN and torch's own kernels take a different code
# path (vector width, fused multiply-add, reduced-precision dot products), hence different rounding.
X86_FLOAT_FLAGS = frozenset(
    {
        "sse4_1",
        "sse4_2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512_bf16",
        "avx512_fp16",
        "avx512_vnni",
        "amx_bf16",
        "amx_tile",
        "amx_int8",
    }
)
ARM_FLOAT_FLAGS = frozenset({"asimd", "neon", "fphp", "asimdhp", "sve", "sve2", "bf16", "i8mm"})

# Variables that set thread counts (reduction order), kernel choice or hashing, recorded when set.
RESULT_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "TORCH_NUM_THREADS",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "ATEN_CPU_CAPABILITY",
    "CUBLAS_WORKSPACE_CONFIG",
    "NVIDIA_TF32_OVERRIDE",
    "PYTHONHASHSEED",
)

CPUINFO = Path("/proc/cpuinfo")


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package, ``None`` where it is not installed."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _read_cpuinfo() -> str | None:
    try:
        return CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    """One ``{field: value}`` per processor block of ``/proc/cpuinfo`` text."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current.setdefault(key.strip(), value.strip())
    if current:
        blocks.append(current)
    return blocks


def _sysctl(name: str) -> str | None:
    try:
        out = subprocess.run(
            ["sysctl", "-n", name], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def cpu_model(cpuinfo: str | None = None) -> str | None:
    """The CPU's model name as the OS reports it, ``None`` when the OS does not say.

    ``cpuinfo`` is ``/proc/cpuinfo`` text (read from the system when omitted). Linux x86 gives
    ``model name``; Linux arm often has only ``Hardware`` or the ``CPU implementer``/``CPU part``
    ids, which are recorded as the ids (never mapped to a guessed marketing name).
    """
    text = cpuinfo if cpuinfo is not None else _read_cpuinfo()
    if text:
        blocks = _cpuinfo_blocks(text)
        for key in ("model name", "Hardware"):
            for block in blocks:
                if block.get(key):
                    return block[key]
        # big.LITTLE parts differ per core: name every distinct one, in core order.
        ids: list[str] = []
        for block in blocks:
            part = block.get("CPU part")
            if part:
                impl = block.get("CPU implementer")
                ident = f"implementer {impl} part {part}" if impl else f"part {part}"
                if ident not in ids:
                    ids.append(ident)
        if ids:
            return "; ".join(ids)
    if sys.platform == "darwin":
        brand = _sysctl("machdep.cpu.brand_string")
        if brand:
            return brand
    return platform.processor() or None


def cpu_flags(cpuinfo: str | None = None) -> list[str] | None:
    """The floating-point-relevant instruction sets every CPU has, sorted; ``None`` when unknown.

    Read from the ``flags`` (x86) or ``Features`` (arm) lines of ``/proc/cpuinfo``, so only
    Linux reports them; an empty list means the CPU has none of :data:`X86_FLOAT_FLAGS` or
    :data:`ARM_FLOAT_FLAGS`.
    """
    text = cpuinfo if cpuinfo is not None else _read_cpuinfo()
    if not text:
        return None
    present: set[str] | None = None
    for block in _cpuinfo_blocks(text):
        line = block.get("flags", block.get("Features"))
        if line is None:
            continue
        flags = set(line.split())
        # Only what every core has is safe to use, and that is what libraries dispatch on.
        present = flags if present is None else present & flags
    if present is None:
        return None
    return sorted(present & (X86_FLOAT_FLAGS | ARM_FLOAT_FLAGS))


def usable_cpu_count() -> int | None:
    """How many CPUs this process may run on (its affinity mask), ``None`` where the OS won't say."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return None
    try:
        return len(getaffinity(0))
    except OSError:
        return None


def capture_cpu() -> dict[str, Any]:
    """``model``, float-relevant ``flags``, ``logical_cpus`` and ``usable_cpus`` of this machine."""
    text = _read_cpuinfo()
    return {
        "model": cpu_model(text),
        "flags": cpu_flags(text),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable_cpu_count(),
    }


def result_env_vars(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The :data:`RESULT_ENV_VARS` that are set in ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    return {name: env[name] for name in RESULT_ENV_VARS if name in env}


def capture_environment() -> dict[str, Any]:
    """Interpreter, OS, CPU, result-changing environment variables and tracked package versions.

    Keys: ``python``, ``implementation``, ``platform``, ``machine``, ``cpu`` (see
    :func:`capture_cpu`), ``env_vars`` (see :func:`result_env_vars`) and ``packages``.
    """
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": capture_cpu(),
        "env_vars": result_env_vars(),
        "packages": package_versions(),
    }


_ABSENT = object()


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, str):
        return value if value else "''"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_record_list(value: Any) -> bool:
    return isinstance(value, list) and not all(map(_is_scalar, value))


def _diff(path: str, old: Any, new: Any, out: list[str]) -> None:
    # A record missing on one side reads as a record of absent fields, so each field gets a line.
    if isinstance(old, Mapping) and new is _ABSENT:
        new = {}
    if isinstance(new, Mapping) and old is _ABSENT:
        old = {}
    if _is_record_list(old) and new is _ABSENT:
        new = []
    if _is_record_list(new) and old is _ABSENT:
        old = []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            _diff(f"{path}.{key}" if path else str(key), old.get(key, _ABSENT), new.get(key, _ABSENT), out)
        return
    if isinstance(old, list) and isinstance(new, list):
        if old == new:
            return
        if _is_record_list(old) or _is_record_list(new):
            # Lists of records (one per GPU): compare them position by position.
            for i in range(max(len(old), len(new))):
                a = old[i] if i < len(old) else _ABSENT
                b = new[i] if i < len(new) else _ABSENT
                _diff(f"{path}.{i}", a, b, out)
            return
        added = [v for v in new if v not in old]
        removed = [v for v in old if v not in new]
        if added or removed:
            parts = []
            if added:
                parts.append("added " + ", ".join(_show(v) for v in added))
            if removed:
                parts.append("removed " + ", ".join(_show(v) for v in removed))
            out.append(f"{path}: {'; '.join(parts)}")
            return
    elif old == new and type(old) is type(new):
        return
    out.append(f"{path}: {_show(old)} -> {_show(new)}")


def environment_diff(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Every field in which ``current`` differs from ``recorded``, as ``path: old -> new`` lines.

    Nested fields are named by dotted paths (``cpu.model``, ``packages.torch``, ``torch.gpus.0.name``);
    a field present on one side only shows ``(absent)`` on the other. Lists of names (``cpu.flags``)
    read ``cpu.flags: added avx512f; removed amx_bf16``. Equal environments give ``[]``. No field
    is skipped: everything :func:`capture_environment` records can change results.

    >>> environment_diff({"packages": {"torch": "2.13.0"}}, {"packages": {"torch": "2.14.0"}})
    ['packages.torch: 2.13.0 -> 2.14.0']
    """
    out: list[str] = []
    _diff("", recorded, current, out)
    return out


def git_state(cwd: str | Path | None = None) -> tuple[str | None, bool | None]:
    """``(HEAD commit, working tree dirty)`` of the repository at ``cwd``, or ``(None, None)``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return (sha or None), bool(status.strip())
