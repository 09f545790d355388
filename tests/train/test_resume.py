"""Kill a training process mid-run, resume it, and get the adapter an uninterrupted run gets."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import ReproducibilityError
from provenir.core.manifest import RunManifest
from provenir.train.runner import RunOptions, train

pytestmark = pytest.mark.slow

CRASHING_RUN = """
import os, signal, sys
from transformers import TrainerCallback
from provenir.core.config import RunConfig
from provenir.train.backends.trl_backend import TRLBackend
from provenir.train.runner import RunOptions, train

class KillAfterCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 4:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no exception handlers: a real crash

config = RunConfig.from_yaml(sys.argv[1])
train(config, RunOptions(backend=TRLBackend(callbacks=[KillAfterCheckpoint()], progress=False)))
"""


def resume_config(output_dir: Path) -> RunConfig:
    return RunConfig.from_dict(
        {
            "output_dir": str(output_dir),
            "max_steps": 6,
            "save_steps": 2,
            "batch_size": 4,
            "gradient_checkpointing": False,
            "learning_rate": 1e-3,
            "data": {"max_samples": 16},
        }
    )


def test_killed_run_resumes_to_the_uninterrupted_adapter(tmp_path: Path, tiny_model_path: Path) -> None:
    uninterrupted = train(resume_config(tmp_path / "straight"))

    config = resume_config(tmp_path / "crashy")
    config_file = tmp_path / "run.yaml"
    config.to_yaml(config_file)
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, str(config_file)], capture_output=True, text=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    [crashed_path] = (tmp_path / "crashy" / "manifests").glob("*.json")
    crashed = RunManifest.load(crashed_path)
    assert crashed.status == "running"  # the process died without finishing its manifest

    resumed = train(config, RunOptions(resume=True))
    assert resumed.run_id == crashed.run_id
    assert resumed.resumed_from == "checkpoint-4"
    assert resumed.status == "completed" and resumed.metrics["global_step"] == 6
    assert resumed.timestamp == crashed.timestamp
    assert resumed.adapter_hash == uninterrupted.adapter_hash
    log_file = tmp_path / "crashy" / "runs" / resumed.run_id / "train_log.jsonl"
    log = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert max(e.get("step", 0) for e in log) == 6

    with pytest.raises(ReproducibilityError, match="nothing to resume"):
        train(config, RunOptions(resume=True))


def test_resume_refuses_other_config(tmp_path: Path) -> None:
    config = RunConfig.from_dict({"backend": "stub", "output_dir": str(tmp_path)})
    with pytest.raises(ReproducibilityError, match="nothing to resume"):
        train(config, RunOptions(resume=True))
