"""Executors without a cluster: the local map, option precedence, and the one-line error without ray."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from provenir.core.config import ExecutorConfig
from provenir.core.errors import ConfigError
from provenir.scale.executor import LocalExecutor, executor_config, open_executor


def test_local_executor_keeps_input_order_and_builds_worker_state_once() -> None:
    built: list[int] = []

    def factory() -> int:
        built.append(1)
        return 100

    ex = LocalExecutor()
    assert ex.map_ordered(lambda x: x * 2, [3, 1, 2], stage="s") == [6, 2, 4]
    assert ex.map_with_workers(factory, lambda s, x: s + x, [1, 2, 3], stage="w") == [101, 102, 103]
    assert built == [1]
    assert ex.record().to_dict()["executor"] == "local"


def test_command_line_options_override_the_config_section() -> None:
    base = ExecutorConfig.from_dict({"executor": "ray", "ray": {"num_workers": 4, "address": "auto"}})
    assert executor_config(base).ray.num_workers == 4
    merged = executor_config(base, executor="local", workers=3, address="ray://head:10001")
    assert (merged.executor, merged.ray.num_workers, merged.ray.address) == ("local", 3, "ray://head:10001")
    with pytest.raises(ConfigError):
        executor_config(executor="spark")


def test_default_is_local() -> None:
    with open_executor() as ex:
        assert ex.name == "local"


def test_executor_ray_without_ray_installed_is_one_line_naming_the_extra(tmp_path) -> None:
    """ray is blocked from importing in a fresh interpreter: the CLI exits 2 with one line."""
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "hi"}\n', encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["ray"] = None  # import ray now raises ModuleNotFoundError, as if not installed
        from provenir.cli.main import main
        main(["scan", {str(data)!r}, "--executor", "ray"])
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "provenir[ray]" in lines[0] and "executor: ray" in lines[0]
