"""Errors a newcomer meets first: one line, exit 2, within seconds, nothing half-written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import ConfigError, DataError
from provenir.train.runner import train


def provenir(
    *args: str, cwd: Path, env: dict[str, str] | None = None, wrap: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(wrap or []), sys.executable, "-m", "provenir.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], fragment: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert fragment in lines[0], lines[0]
    return lines[0]


def files_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


def _unprivileged() -> list[str] | None:
    """A command prefix that drops root's right to write anywhere, or None when not needed/possible."""
    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    # A user namespace maps us to an ordinary user: permission bits apply again.
    probe = subprocess.run([unshare, "--user", "--map-user=1000", "true"], capture_output=True)
    return [unshare, "--user", "--map-user=1000", "--map-group=1000"] if probe.returncode == 0 else None


def test_read_only_output_dir_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    wrap = _unprivileged()
    if wrap is None:
        pytest.skip("running as root without user namespaces: permission bits cannot be enforced")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        proc = provenir(
            "train", "--set", "backend=stub", "--set", "output_dir=locked/artifacts", cwd=tmp_path, wrap=wrap
        )
        assert_one_line_error(proc, "cannot write to output_dir locked/artifacts: Permission denied")
        assert files_under(locked) == []
    finally:
        locked.chmod(0o755)


def test_file_in_the_way_of_output_dir(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    proc = provenir("train", "--set", "backend=stub", "--set", "output_dir=taken/artifacts", cwd=tmp_path)
    assert_one_line_error(proc, "cannot write to output_dir taken/artifacts: Not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_output_dir_is_checked_before_data_is_read(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    config = RunConfig.from_dict(
        {"backend": "stub", "output_dir": str(tmp_path / "taken" / "out"), "data": {"path": "/no/data.jsonl"}}
    )
    with pytest.raises(ConfigError, match="cannot write to output_dir"):
        train(config)
    # A writable output_dir that is refused later (here: the data) is left as it was found.
    config = RunConfig.from_dict(
        {"backend": "stub", "output_dir": str(tmp_path / "new" / "out"), "data": {"path": "/no/data.jsonl"}}
    )
    with pytest.raises(DataError, match="dataset not found"):
        train(config)
    assert not (tmp_path / "new").exists()


def test_missing_local_model_path_says_it_does_not_exist(tmp_path: Path) -> None:
    proc = provenir("train", "--set", "model_name_or_path=/no/such/model", cwd=tmp_path)
    assert_one_line_error(proc, "model path /no/such/model does not exist")


def test_evaluating_a_run_whose_model_is_gone_says_so(tmp_path: Path) -> None:
    # The stub backend loads no model, so the run completes; evaluation must load it and cannot.
    trained = provenir(
        "train",
        "--set",
        "backend=stub",
        "--set",
        "model_name_or_path=/no/such/model",
        "--set",
        "data.eval_split=0.2",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    [manifest] = (tmp_path / "artifacts" / "manifests").glob("*.json")
    started = time.monotonic()
    proc = provenir("eval", str(manifest), cwd=tmp_path)
    assert_one_line_error(proc, "model path /no/such/model does not exist")
    assert "Repo id must be in the form" not in proc.stderr
    assert time.monotonic() - started < 10


def test_load_policy_checks_model_and_weights_folders(tmp_path: Path, tiny_model_path: Path) -> None:
    from provenir.train.generation import load_policy

    with pytest.raises(ConfigError, match="model path ./gone does not exist"):
        load_policy(RunConfig.from_dict({"model_name_or_path": "./gone"}))
    with pytest.raises(ConfigError, match="weights folder .* does not exist"):
        load_policy(RunConfig(), tmp_path / "runs" / "x" / "adapter")


@pytest.mark.parametrize("offline", ["1", None])
def test_unknown_hub_model_fails_within_seconds(tmp_path: Path, offline: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["HF_HOME"] = str(tmp_path / "hf")  # an empty cache
    if offline:
        env["HF_HUB_OFFLINE"] = offline
    started = time.monotonic()
    proc = provenir(
        "train",
        "--set",
        "model_name_or_path=someone/no-such-model",
        "--set",
        "max_steps=1",
        cwd=tmp_path,
        env=env,
    )
    elapsed = time.monotonic() - started
    assert_one_line_error(proc, "model someone/no-such-model is not a local folder and is not in the local")
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_hub_dataset_with_unreachable_hub_fails_within_seconds(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
        and "proxy" not in k.lower()
    }
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    started = time.monotonic()
    proc = provenir(
        "train", "--set", "backend=stub", "--set", "data.path=someone/no-such-data", cwd=tmp_path, env=env
    )
    elapsed = time.monotonic() - started
    assert_one_line_error(proc, "the Hugging Face hub is unreachable (cannot connect to 127.0.0.1:9")
    assert "HF_HUB_OFFLINE=1" in proc.stderr
    assert elapsed < 10, f"took {elapsed:.1f} s"
