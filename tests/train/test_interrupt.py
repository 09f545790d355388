"""Ctrl-C during `provenir train`: says where it stopped, how to resume, keeps the log; resume works."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.manifest import RunManifest
from provenir.train.checkpoints import MARKER_NAME

pytestmark = pytest.mark.slow


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "provenir.cli.main", *args]


def wait_for(pattern: str, root: Path, proc: subprocess.Popen[str], timeout_s: float = 240) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"training ended (rc {proc.returncode}) before {pattern} appeared")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"{pattern} did not appear within {timeout_s} s")


def test_ctrl_c_marks_the_run_failed_keeps_the_log_and_prints_the_resume_command(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    config = RunConfig.from_dict(
        {
            "output_dir": "artifacts",
            "max_steps": 12,
            "save_steps": 3,
            "logging_steps": 1,
            "batch_size": 2,
            "gradient_checkpointing": False,
            "data": {"max_samples": 16},
        }
    )
    config.to_yaml(tmp_path / "run.yaml")
    proc = subprocess.Popen(
        cli("train", "run.yaml"), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for(f"artifacts/runs/*/checkpoints/checkpoint-3/{MARKER_NAME}", tmp_path, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)

    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    [manifest_path] = (tmp_path / "artifacts" / "manifests").glob("*.json")
    run_id = manifest_path.stem
    manifest = RunManifest.load(manifest_path)
    assert manifest.status == "failed" and manifest.finished_at is not None
    manifest.verify()
    lines = stderr.strip().splitlines()
    step = int(lines[-2].split("interrupted at step ", 1)[1].split(";", 1)[0])
    assert 3 <= step < 12
    assert (
        lines[-2]
        == f"interrupted at step {step}; the run is marked failed (artifacts/manifests/{run_id}.json)"
    )
    assert manifest.error == f"KeyboardInterrupt: interrupted at step {step} (Ctrl-C)"
    command = f"provenir train artifacts/runs/{run_id}/config.yaml --resume-run {run_id}"
    assert lines[-1].startswith("resume it from checkpoint-") and lines[-1].endswith(f"with: {command}")

    # The log Trainer wrote so far is kept, one entry per logged step.
    log_file = tmp_path / "artifacts" / "runs" / run_id / "train_log.jsonl"
    logged = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert logged and all("loss" in e for e in logged)
    assert [e["step"] for e in logged] == list(range(1, len(logged) + 1))
    assert len(logged) >= 2

    resumed = subprocess.run(
        cli(*command.split()[1:]), cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    final = RunManifest.load(manifest_path)
    assert final.run_id == run_id and final.status == "completed"
    assert final.resumed_from is not None and final.resumed_from.startswith("checkpoint-")
    assert final.metrics["global_step"] == 12
    log = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert max(e.get("step", 0) for e in log) == 12


def test_ctrl_c_without_checkpoint_says_it_cannot_be_resumed(tmp_path: Path, tiny_model_path: Path) -> None:
    config = RunConfig.from_dict(
        {
            "output_dir": "artifacts",
            "max_steps": 400,
            "logging_steps": 1,
            "batch_size": 2,
            "gradient_checkpointing": False,
            "data": {"max_samples": 16},
        }
    )
    config.to_yaml(tmp_path / "run.yaml")
    proc = subprocess.Popen(
        cli("train", "run.yaml"), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    log_file = wait_for("artifacts/runs/*/train_log.jsonl", tmp_path, proc)
    while not log_file.read_text().strip() and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert lines[-2].startswith("interrupted at step ") and "the run is marked failed" in lines[-2]
    assert lines[-1] == "no checkpoint was saved, so it cannot be resumed (set save_steps to save some)"
    assert log_file.read_text().strip()


def test_a_run_that_fails_mid_training_keeps_the_log_so_far(tmp_path: Path, tiny_model_path: Path) -> None:
    from transformers import TrainerCallback

    from provenir.core.errors import BackendError
    from provenir.train.backends.trl_backend import TRLBackend
    from provenir.train.runner import RunOptions, train

    class FailAtStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.global_step == 3:
                raise RuntimeError("disk on fire")

    config = RunConfig.from_dict(
        {
            "output_dir": str(tmp_path / "artifacts"),
            "max_steps": 6,
            "logging_steps": 1,
            "batch_size": 2,
            "gradient_checkpointing": False,
            "data": {"max_samples": 8},
        }
    )
    backend = TRLBackend(callbacks=[FailAtStep3()], progress=False)
    with pytest.raises(BackendError, match="disk on fire"):
        train(config, RunOptions(backend=backend))
    [manifest_path] = (tmp_path / "artifacts" / "manifests").glob("*.json")
    assert RunManifest.load(manifest_path).status == "failed"
    log_file = tmp_path / "artifacts" / "runs" / manifest_path.stem / "train_log.jsonl"
    # Step 3 failed in on_step_end, before Trainer logged it: steps 1 and 2 were logged.
    assert [json.loads(line)["step"] for line in log_file.read_text().splitlines()] == [1, 2]
    assert len(backend.callbacks) == 1  # the run's own log recorder was taken off again
