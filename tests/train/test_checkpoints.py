"""Completion markers: resume skips half-written checkpoints and refuses altered ones."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from test_resume import resume_config  # the SIGKILL resume test's run: 6 steps, a checkpoint every 2
from transformers import TrainerCallback, TrainerState, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from provenir.core.abstractions import TrainData, TrainResult
from provenir.core.config import RunConfig
from provenir.core.errors import BackendError, ReproducibilityError
from provenir.core.inputs import file_set_digest
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.train.backends.trl_backend import TRLBackend
from provenir.train.checkpoints import (
    INCOMPLETE_DIR,
    MARKER_NAME,
    CheckpointMarkerCallback,
    checkpoint_files,
    find_resume_checkpoint,
    set_aside,
    write_marker,
)
from provenir.train.runner import RunOptions, train

NO_MARKER = "incomplete (no completion marker; the process was probably stopped while saving it)"


def fake_checkpoint(run_dir: Path, step: int, *, marked: bool = True) -> Path:
    folder = run_dir / "checkpoints" / f"checkpoint-{step}"
    (folder / "shards").mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"weights %d" % step)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (folder / "shards" / "rng_state_1.pth").write_bytes(b"rng")
    if marked:
        write_marker(folder)
    return folder


# -- the marker ---------------------------------------------------------------------------------


def test_marker_pins_every_other_file(tmp_path: Path) -> None:
    folder = fake_checkpoint(tmp_path, 10)
    marker = json.loads((folder / MARKER_NAME).read_text())
    assert set(marker["files"]) == {
        "adapter_model.safetensors",
        "trainer_state.json",
        "shards/rng_state_1.pth",
    }
    assert marker["digest"] == file_set_digest(marker["files"]) and marker["name"] == "checkpoint-10"
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []  # atomic: no temp left

    point = find_resume_checkpoint(tmp_path)
    assert point.checkpoint == folder and point.messages == [] and point.pin is not None
    assert point.pin.files == checkpoint_files(folder) and point.pin.digest == marker["digest"]


def test_newest_complete_checkpoint_wins_and_unfinished_ones_are_named(tmp_path: Path) -> None:
    fake_checkpoint(tmp_path, 2, marked=False)  # older than the chosen one: irrelevant, not reported
    chosen = fake_checkpoint(tmp_path, 8)
    fake_checkpoint(tmp_path, 10, marked=False)
    garbled = fake_checkpoint(tmp_path, 12, marked=False)
    (garbled / MARKER_NAME).write_text('{"format": "provenir-checkp')
    (tmp_path / "checkpoints" / "README.md").write_text("not a checkpoint")

    point = find_resume_checkpoint(tmp_path)
    assert point.checkpoint == chosen and point.pin is not None and point.pin.name == "checkpoint-8"
    assert point.messages == [
        "skipping checkpoint-12: incomplete (unreadable completion marker: JSONDecodeError)",
        f"skipping checkpoint-10: {NO_MARKER}",
    ]
    moved = set_aside(tmp_path, point.skipped)
    assert moved == [tmp_path / INCOMPLETE_DIR / "checkpoint-12", tmp_path / INCOMPLETE_DIR / "checkpoint-10"]
    assert find_resume_checkpoint(tmp_path).messages == []
    fake_checkpoint(tmp_path, 10, marked=False)  # a second crash at the same step keeps the first
    assert set_aside(tmp_path, [tmp_path / "checkpoints" / "checkpoint-10"]) == [
        tmp_path / INCOMPLETE_DIR / "checkpoint-10.1"
    ]


def test_no_checkpoint_means_step_zero(tmp_path: Path) -> None:
    assert find_resume_checkpoint(tmp_path).checkpoint is None
    fake_checkpoint(tmp_path, 4, marked=False)
    point = find_resume_checkpoint(tmp_path)
    assert point.checkpoint is None and point.pin is None
    assert point.messages == [f"skipping checkpoint-4: {NO_MARKER}"]


def test_changed_file_is_refused_with_its_name_and_hashes(tmp_path: Path) -> None:
    folder = fake_checkpoint(tmp_path, 10)
    before = checkpoint_files(folder)["adapter_model.safetensors"]
    (folder / "adapter_model.safetensors").write_bytes(b"weights 1O")
    after = checkpoint_files(folder)["adapter_model.safetensors"]
    with pytest.raises(ReproducibilityError) as err:
        find_resume_checkpoint(tmp_path)
    assert str(err.value) == (
        f"checkpoint-10: adapter_model.safetensors changed since it was saved "
        f"(sha256 {before[:12]}… -> {after[:12]}…); refusing to resume from it"
    )


def test_deleted_or_added_file_is_refused(tmp_path: Path) -> None:
    folder = fake_checkpoint(tmp_path, 10)
    (folder / "shards" / "rng_state_1.pth").unlink()
    with pytest.raises(
        ReproducibilityError, match=r"^checkpoint-10: shards/rng_state_1.pth was deleted since"
    ):
        find_resume_checkpoint(tmp_path)
    write_marker(folder)
    # A file written after the marker: the marker was not the checkpoint's last file.
    (folder / "optimizer.pt").write_bytes(b"late")
    with pytest.raises(
        ReproducibilityError,
        match=r"^checkpoint-10: optimizer.pt was added since it was saved; refusing to resume from it$",
    ):
        find_resume_checkpoint(tmp_path)


def test_edited_or_moved_marker_is_refused(tmp_path: Path) -> None:
    folder = fake_checkpoint(tmp_path, 10)
    marker = json.loads((folder / MARKER_NAME).read_text())
    marker["files"]["adapter_model.safetensors"] = "0" * 64
    (folder / MARKER_NAME).write_text(json.dumps(marker))
    with pytest.raises(ReproducibilityError, match="marker's digest does not match its file list"):
        find_resume_checkpoint(tmp_path)
    write_marker(folder)
    folder.rename(folder.with_name("checkpoint-12"))
    with pytest.raises(
        ReproducibilityError, match="checkpoint-12: its completion marker was written for checkpoint-10"
    ):
        find_resume_checkpoint(tmp_path)


def test_callback_marks_the_saved_checkpoint_on_the_main_process_only(tmp_path: Path) -> None:
    args = TrainingArguments(output_dir=str(tmp_path / "checkpoints"), use_cpu=True, report_to="none")
    folder = fake_checkpoint(tmp_path, 6, marked=False)
    callback = CheckpointMarkerCallback()
    callback.on_save(args, TrainerState(global_step=6, is_world_process_zero=False), None)
    assert not (folder / MARKER_NAME).exists()
    callback.on_save(args, TrainerState(global_step=6, is_world_process_zero=True), None)
    assert find_resume_checkpoint(tmp_path).checkpoint == folder
    # A step whose folder is gone (rotated away, or saved elsewhere) is left alone.
    callback.on_save(args, TrainerState(global_step=8, is_world_process_zero=True), None)
    assert not (tmp_path / "checkpoints" / "checkpoint-8").exists()


# -- real training ------------------------------------------------------------------------------

KILLED_WHILE_SAVING = """
import os, signal, sys
from transformers import Trainer
from provenir.core.config import RunConfig
from provenir.train.backends.trl_backend import TRLBackend
from provenir.train.runner import RunOptions, train

save_rng_state = Trainer._save_rng_state

def killed_during_the_step_4_save(self, output_dir):
    if self.state.global_step == 4:
        # Weights and optimizer are on disk; RNG and trainer state are not: a real crash mid-save.
        os.kill(os.getpid(), signal.SIGKILL)
    save_rng_state(self, output_dir)

Trainer._save_rng_state = killed_during_the_step_4_save
train(RunConfig.from_yaml(sys.argv[1]), RunOptions(backend=TRLBackend(progress=False)))
"""


class RecordingBackend(TRLBackend):
    """The trl backend, keeping the TrainResult it hands to the run driver."""

    result: TrainResult | None = None

    def fit(
        self, config: RunConfig, dataset: TrainData, run_dir: Path, *, callbacks: Sequence[Any] = ()
    ) -> TrainResult:
        self.result = super().fit(config, dataset, run_dir, callbacks=callbacks)
        return self.result


class StopAfterFirstCheckpoint(TrainerCallback):
    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        raise RuntimeError("stopped after the first checkpoint")


@pytest.mark.slow
def test_kill_during_a_save_resumes_from_the_last_complete_checkpoint(
    tmp_path: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uninterrupted = train(resume_config(tmp_path / "straight"))
    straight_ckpt = (
        RunStore(tmp_path / "straight").run_dir(uninterrupted.run_id) / "checkpoints" / "checkpoint-6"
    )
    # on_save ran after Trainer wrote everything, RNG and trainer state included.
    assert {"rng_state.pth", "trainer_state.json", "optimizer.pt", "adapter_model.safetensors"} <= set(
        json.loads((straight_ckpt / MARKER_NAME).read_text())["files"]
    )

    config = resume_config(tmp_path / "crashy")
    config.to_yaml(tmp_path / "run.yaml")
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_SAVING, str(tmp_path / "run.yaml")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    [manifest_file] = (tmp_path / "crashy" / "manifests").glob("*.json")
    rdir = RunStore(tmp_path / "crashy").run_dir(RunManifest.load(manifest_file).run_id)
    checkpoints = rdir / "checkpoints"
    assert (checkpoints / "checkpoint-2" / MARKER_NAME).is_file()
    killed = checkpoints / "checkpoint-4"
    assert (killed / "adapter_model.safetensors").is_file() and not (killed / "trainer_state.json").exists()
    assert not (killed / MARKER_NAME).exists()
    # And a newer checkpoint cut short inside a file, as a save killed mid-write leaves it.
    cut = checkpoints / "checkpoint-6"
    shutil.copytree(checkpoints / "checkpoint-2", cut)
    (cut / MARKER_NAME).unlink()
    weights = (cut / "adapter_model.safetensors").read_bytes()
    (cut / "adapter_model.safetensors").write_bytes(weights[: len(weights) // 2])
    assert get_last_checkpoint(str(checkpoints)) == str(cut)  # what resume used to pick

    capsys.readouterr()
    backend = RecordingBackend(progress=False)
    resumed = train(config, RunOptions(resume=True, backend=backend))
    lines = capsys.readouterr().err.splitlines()
    assert f"skipping checkpoint-6: {NO_MARKER}; moved to {rdir / INCOMPLETE_DIR / 'checkpoint-6'}" in lines
    assert f"skipping checkpoint-4: {NO_MARKER}; moved to {rdir / INCOMPLETE_DIR / 'checkpoint-4'}" in lines
    assert resumed.resumed_from == "checkpoint-2"
    assert resumed.status == "completed" and resumed.metrics["global_step"] == 6
    assert resumed.adapter_hash == uninterrupted.adapter_hash

    assert backend.result is not None and backend.result.resumed_checkpoint is not None
    pin = backend.result.resumed_checkpoint
    assert pin.name == "checkpoint-2" and pin.files == checkpoint_files(checkpoints / "checkpoint-2")
    assert resumed.inputs is not None and resumed.inputs.resumed_checkpoint == pin  # sealed in the manifest
    # The partial checkpoints were not used: set aside untouched, their steps saved afresh.
    stale = rdir / INCOMPLETE_DIR / "checkpoint-6" / "adapter_model.safetensors"
    assert stale.read_bytes() == weights[: len(weights) // 2]
    point = find_resume_checkpoint(rdir)
    assert point.checkpoint == checkpoints / "checkpoint-6" and point.messages == []
    assert (checkpoints / "checkpoint-4" / MARKER_NAME).is_file()


@pytest.mark.slow
def test_altered_checkpoint_is_refused_by_the_cli(tmp_path: Path, tiny_model_path: Path) -> None:
    config = resume_config(tmp_path / "artifacts")
    config_file = tmp_path / "run.yaml"
    config.to_yaml(config_file)
    with pytest.raises(BackendError, match="stopped after the first checkpoint"):
        train(config, RunOptions(backend=TRLBackend(callbacks=[StopAfterFirstCheckpoint()], progress=False)))
    [manifest_file] = (tmp_path / "artifacts" / "manifests").glob("*.json")
    rdir = RunStore(tmp_path / "artifacts").run_dir(RunManifest.load(manifest_file).run_id)
    weights = rdir / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of the last tensor: the file still loads
    weights.write_bytes(bytes(data))
    state_before = (weights.parent / "trainer_state.json").read_bytes()

    proc = subprocess.run(
        [sys.executable, "-m", "provenir.cli.main", "train", str(config_file), "--resume"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "Traceback" not in proc.stdout, proc.stderr[-2000:]
    assert errors[0].startswith(
        "error: checkpoint-2: adapter_model.safetensors changed since it was saved (sha256 "
    )
    assert errors[0].endswith("; refusing to resume from it")
    # Nothing trained: no later checkpoint, no adapter, the checkpoint's state untouched.
    assert sorted(p.name for p in (rdir / "checkpoints").iterdir() if p.is_dir()) == ["checkpoint-2"]
    assert not (rdir / "adapter").exists()
    assert (weights.parent / "trainer_state.json").read_bytes() == state_before
    manifest = RunManifest.load(manifest_file)
    assert manifest.status == "failed" and "adapter_model.safetensors changed" in (manifest.error or "")


@pytest.mark.slow
def test_two_process_checkpoints_are_marked_and_the_pin_crosses_the_launcher(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    from provenir.data.loading import load_train_data
    from provenir.data.pinned_rows import TRAIN_ROWS_FILE, write_rows
    from provenir.train.distributed import DistributedLauncher

    settings: dict[str, Any] = {
        "output_dir": str(tmp_path / "artifacts"),
        "device": "cpu",
        "max_steps": 2,
        "save_steps": 2,
        "batch_size": 4,
        "gradient_checkpointing": False,
        "data": {"max_samples": 16},
    }
    rdir = tmp_path / "run"
    single = RunConfig.from_dict(settings)
    data = load_train_data(single)
    assert TRLBackend(progress=False).fit(single, data, rdir).resumed_checkpoint is None
    first = json.loads((rdir / "checkpoints" / "checkpoint-2" / MARKER_NAME).read_text())

    # Continued by two ranks: rank 0's pin comes back through worker_result.json.
    ddp = RunConfig.from_dict(
        {**settings, "max_steps": 4, "distributed": {"strategy": "ddp", "num_processes": 2}}
    )
    ddp.to_yaml(rdir / "config.yaml")
    data.train_rows_pin = write_rows(rdir, TRAIN_ROWS_FILE, data.train)  # what the run driver stores
    result = DistributedLauncher().fit(ddp, data, rdir)
    pin = result.resumed_checkpoint
    assert result.extra["world_size"] == 2 and result.resumed_from == "checkpoint-2" and pin is not None
    assert pin.files == first["files"] and pin.digest == first["digest"]
    # Each rank writes its own RNG state into checkpoint-4; the marker waited for both.
    marker = json.loads((rdir / "checkpoints" / "checkpoint-4" / MARKER_NAME).read_text())
    assert {"rng_state_0.pth", "rng_state_1.pth", "trainer_state.json"} <= set(marker["files"])
    assert find_resume_checkpoint(rdir).checkpoint == rdir / "checkpoints" / "checkpoint-4"
