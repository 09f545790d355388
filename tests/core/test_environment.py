"""The recorded environment: what changes floating-point results, no absolute path, and its diff."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenir.core.environment import (
    ARM_FLOAT_FLAGS,
    RESULT_ENV_VARS,
    X86_FLOAT_FLAGS,
    capture_environment,
    cpu_flags,
    cpu_model,
    environment_diff,
    result_env_vars,
)

CPUINFO = Path("/proc/cpuinfo")
linux_only = pytest.mark.skipif(not CPUINFO.is_file(), reason="needs /proc/cpuinfo")


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every ``(dotted path, string)`` in a nested dict/list, keys included."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{k}", str(k)
            yield from strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{path}.{i}")
    elif isinstance(value, str):
        yield path, value


def proc_cpuinfo_field(name: str) -> list[str]:
    """The value of ``name`` on every processor line of /proc/cpuinfo, read without provenir."""
    out = []
    for line in CPUINFO.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            out.append(value.strip())
    return out


def test_environment_keys_and_no_interpreter_path() -> None:
    env = capture_environment()
    assert set(env) == {"python", "implementation", "platform", "machine", "cpu", "env_vars", "packages"}
    assert "executable" not in env
    assert set(env["cpu"]) == {"model", "flags", "logical_cpus", "usable_cpus"}
    assert env["cpu"]["logical_cpus"] == os.cpu_count()
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["packages"]["torch"]  # installed in the dev environment


def test_no_absolute_path_or_home_dir_anywhere_in_the_environment() -> None:
    home = str(Path.home())
    found = list(strings(capture_environment()))
    assert found  # the walk saw the strings
    for path, text in found:
        assert not text.startswith("/"), f"{path} holds an absolute path: {text}"
        if home not in ("/", ""):
            assert home not in text, f"{path} holds the home directory: {text}"
        assert sys.executable not in text, path


@linux_only
def test_cpu_model_is_what_proc_cpuinfo_says() -> None:
    names = proc_cpuinfo_field("model name")
    if not names:
        pytest.skip("this CPU's /proc/cpuinfo has no 'model name' line (arm)")
    assert capture_environment()["cpu"]["model"] == names[0]


@linux_only
def test_cpu_flags_are_float_relevant_flags_that_proc_cpuinfo_lists() -> None:
    lines = proc_cpuinfo_field("flags") or proc_cpuinfo_field("Features")
    every_cpu = set.intersection(*(set(line.split()) for line in lines))
    flags = capture_environment()["cpu"]["flags"]
    assert flags == sorted(flags)
    assert set(flags) <= every_cpu
    assert set(flags) == every_cpu & (X86_FLOAT_FLAGS | ARM_FLOAT_FLAGS)  # none left out either


@linux_only
def test_usable_cpus_is_the_affinity_mask() -> None:
    assert capture_environment()["cpu"]["usable_cpus"] == len(os.sched_getaffinity(0))


X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse sse2 sse4_1 sse4_2 avx avx2 fma avx512f amx_bf16 amx_tile

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse sse2 sse4_1 sse4_2 avx avx2 fma avx512f amx_bf16
"""

ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp sve bf16 i8mm
CPU implementer\t: 0x41
CPU part\t: 0xd0c

processor\t: 1
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp sve bf16 i8mm
CPU implementer\t: 0x41
CPU part\t: 0xd40
"""


def test_cpu_model_and_flags_from_given_cpuinfo_text() -> None:
    assert cpu_model(X86_CPUINFO) == "Intel(R) Xeon(R) Platinum 8480+"
    # amx_tile is on one core only, so nothing may rely on it
    assert cpu_flags(X86_CPUINFO) == ["amx_bf16", "avx", "avx2", "avx512f", "fma", "sse4_1", "sse4_2"]
    # arm without a model name: the part ids as the kernel gives them, never a guessed name
    assert cpu_model(ARM_CPUINFO) == "implementer 0x41 part 0xd0c; implementer 0x41 part 0xd40"
    assert cpu_flags(ARM_CPUINFO) == ["asimd", "asimdhp", "bf16", "fphp", "i8mm", "sve"]
    assert cpu_model("processor\t: 0\nHardware\t: BCM2835\n") == "BCM2835"
    assert cpu_flags("processor\t: 0\n") is None  # unknown, not "no flags"


def test_result_env_vars_records_only_those_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in RESULT_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    monkeypatch.setenv("PROVENIR_UNRELATED", "x")
    expected = {"OMP_NUM_THREADS": "3", "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "PYTHONHASHSEED": "0"}
    assert capture_environment()["env_vars"] == expected
    assert result_env_vars({"TORCH_NUM_THREADS": "1", "HOME": "/root"}) == {"TORCH_NUM_THREADS": "1"}


RECORDED: dict[str, Any] = {
    "python": "3.11.7",
    "machine": "x86_64",
    "executable": "/usr/bin/python3",
    "cpu": {
        "model": "Intel(R) Xeon(R) Platinum 8480+",
        "flags": ["amx_bf16", "avx", "avx2"],
        "usable_cpus": 8,
    },
    "env_vars": {"OMP_NUM_THREADS": "4"},
    "packages": {"torch": "2.13.0", "trl": "1.16.0", "peft": None},
    "torch": {"gpus": [{"name": "NVIDIA H100", "compute_capability": "9.0"}], "cudnn": 91002},
}


def test_environment_diff_of_equal_environments_is_empty() -> None:
    assert environment_diff(RECORDED, RECORDED) == []
    assert environment_diff(capture_environment(), capture_environment()) == []
    assert environment_diff({}, {}) == []


def test_environment_diff_names_every_changed_added_and_removed_field() -> None:
    current: dict[str, Any] = {
        "python": "3.11.7",
        "machine": "x86_64",
        "cpu": {
            "model": "AMD EPYC 9654",
            "flags": ["avx", "avx2", "avx512f"],
            "usable_cpus": 8,
            "logical_cpus": 16,
        },
        "env_vars": {},
        "packages": {"torch": "2.14.0", "trl": "1.16.0", "peft": "0.21.2"},
        "torch": {
            "gpus": [
                {"name": "NVIDIA H200", "compute_capability": "9.0"},
                {"name": "NVIDIA H200", "compute_capability": "9.0"},
            ],
            "cudnn": 91002,
        },
    }
    assert environment_diff(RECORDED, current) == [
        "cpu.flags: added avx512f; removed amx_bf16",
        "cpu.logical_cpus: (absent) -> 16",
        "cpu.model: Intel(R) Xeon(R) Platinum 8480+ -> AMD EPYC 9654",
        "env_vars.OMP_NUM_THREADS: 4 -> (absent)",
        "executable: /usr/bin/python3 -> (absent)",
        "packages.peft: None -> 0.21.2",
        "packages.torch: 2.13.0 -> 2.14.0",
        "torch.gpus.0.name: NVIDIA H100 -> NVIDIA H200",
        "torch.gpus.1.compute_capability: (absent) -> 9.0",
        "torch.gpus.1.name: (absent) -> NVIDIA H200",
    ]


def test_environment_diff_of_a_whole_section_present_on_one_side() -> None:
    # A manifest written before the torch section existed: every torch field reads as absent.
    old = {k: v for k, v in RECORDED.items() if k != "torch"}
    assert environment_diff(old, RECORDED) == [
        "torch.cudnn: (absent) -> 91002",
        "torch.gpus.0.compute_capability: (absent) -> 9.0",
        "torch.gpus.0.name: (absent) -> NVIDIA H100",
    ]
    assert environment_diff({"cpu": {"flags": ["avx"]}}, {"cpu": {"flags": None}}) == [
        "cpu.flags: [avx] -> None"
    ]
    assert environment_diff({"cpu": {"flags": ["avx"]}}, {}) == ["cpu.flags: [avx] -> (absent)"]
    # equal under == but not the same value: a switch that became a count is a change
    assert environment_diff({"n": True}, {"n": 1}) == ["n: True -> 1"]
