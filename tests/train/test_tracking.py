"""Experiment tracking: every backend's logged values are read back with that library's own reader."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import MissingExtraError
from provenir.core.manifest import RunManifest, new_run_id
from provenir.core.store import RunStore
from provenir.train.tracking import (
    MlflowTracker,
    TensorBoardTracker,
    Tracker,
    WandbTracker,
    build_tracker,
)

LOSSES = [2.0, 1.5, 1.25, 1.0]
# Planted in the environment and in the failed run's error message: no tracker may write it anywhere.
SECRET = "sk-provenir-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PROVENIR_TEST_API_KEY", SECRET)


def make_config(tmp_path: Path, backend: str = "none") -> RunConfig:
    return RunConfig.from_dict(
        {
            "name": "track-test",
            "output_dir": str(tmp_path / "artifacts"),
            "observability_backend": backend,
            "peft": {"rank": 4},
        }
    )


def make_manifest(config: RunConfig, run_id: str, status: str) -> RunManifest:
    completed = status == "completed"
    return RunManifest(
        run_id=run_id,
        name=config.name,
        backend="stub",
        algorithm="sft",
        config_hash=config.config_hash(),
        dataset_hash="d" * 64,
        seed=config.seed,
        config=config.model_dump(mode="json"),
        status=status,
        metrics={"train_loss": 1.4375, "final_loss": 1.0} if completed else {},
        adapter_hash="a" * 64 if completed else None,
        error=None if completed else f"BackendError: upstream rejected token {SECRET}",
    ).seal()


def drive(tracker: Tracker, config: RunConfig, run_id: str, manifest: RunManifest) -> None:
    tracker.start(config, run_id)
    for step, loss in enumerate(LOSSES, start=1):
        tracker.log_metrics({"loss": loss, "learning_rate": 1e-3 * step}, step=step)
    tracker.finish(manifest)


def assert_secret_not_written(root: Path) -> None:
    files = [f for f in root.rglob("*") if f.is_file()]
    assert files, f"nothing was written under {root}"
    leaked = [f for f in files if SECRET.encode() in f.read_bytes()]
    assert not leaked, f"secret written to {leaked}"


# -- wandb ----------------------------------------------------------------------------------------


@pytest.fixture()
def wandb_service() -> Iterator[None]:
    yield
    import wandb

    # wandb.init starts a wandb-core service process that otherwise lives until interpreter exit
    # (also when a test fails before its own teardown; a second teardown does nothing).
    wandb.teardown()


def read_wandb_records(path: Path) -> list[Any]:
    """Every record of a ``.wandb`` transaction log, decoded with wandb's own protobuf schema.

    wandb 0.31 offline writes no files/wandb-summary.json or config.yaml and ships no Python reader;
    the log is LevelDB's log format: a 7-byte file header, then 32 KiB blocks of chunks, each with a
    7-byte header (crc32c, little-endian length, type: 1 full, 2 first, 3 middle, 4 last).
    """
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a wandb transaction log"
    block, pos, pending, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is zero padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def _item_key(item: Any) -> str:
    return ".".join(item.nested_key) if item.nested_key else item.key


def wandb_view(run_folder: Path) -> dict[str, Any]:
    """history rows, final config, merged summary and exit code of one offline run folder."""
    (log,) = run_folder.glob("run-*.wandb")
    view: dict[str, Any] = {"history": [], "config": {}, "summary": {}, "exit_code": None, "run_id": None}
    for record in read_wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            view["history"].append({_item_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "run":
            view["run_id"] = record.run.run_id
            view["config"].update({_item_key(i): json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "config":
            view["config"].update({_item_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "summary":
            view["summary"].update({_item_key(i): json.loads(i.value_json) for i in record.summary.update})
        elif kind == "exit":
            view["exit_code"] = record.exit.exit_code
    return view


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_wandb_offline_run_reads_back(tmp_path: Path, wandb_service: None, status: str) -> None:
    config, run_id = make_config(tmp_path, "wandb"), new_run_id()
    rdir = RunStore(config.output_dir).run_dir(run_id)
    tracker = build_tracker(config, rdir)
    assert isinstance(tracker, WandbTracker) and tracker.mode == "offline"
    manifest = make_manifest(config, run_id, status)
    drive(tracker, config, run_id, manifest)
    import wandb

    # run.finish() can return before wandb-core has written the .wandb file (seen: a 7-byte file,
    # complete ~ms later); teardown waits for the service to flush and exit.
    wandb.teardown()

    (folder,) = (rdir / "wandb").glob(f"offline-run-*-{run_id}")
    view = wandb_view(folder)
    assert view["run_id"] == run_id
    assert [(row["_step"], row["loss"]) for row in view["history"]] == list(enumerate(LOSSES, start=1))
    assert view["config"]["peft"]["rank"] == 4
    assert view["config"]["data"]["path"] == config.data.path
    assert view["config"]["provenir"] == {
        "run_id": run_id,
        "config_hash": config.config_hash(),
        "data_path": config.data.path,
    }
    summary = view["summary"]
    assert summary["provenir/manifest_hash"] == manifest.manifest_hash
    assert summary["provenir/config_hash"] == config.config_hash()
    assert summary["provenir/dataset_hash"] == "d" * 64
    assert summary["provenir/status"] == status
    assert summary["loss"] == LOSSES[-1]
    if status == "completed":
        assert view["exit_code"] == 0
        assert summary["provenir/adapter_hash"] == "a" * 64
        assert summary["final/train_loss"] == 1.4375
    else:
        assert view["exit_code"] == 1
        assert "provenir/adapter_hash" not in summary
        assert summary["provenir/error_type"] == "BackendError"
    assert_secret_not_written(tmp_path)


def test_wandb_honours_an_explicit_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert WandbTracker(tmp_path).mode == "disabled"
    monkeypatch.delenv("WANDB_MODE")
    assert WandbTracker(tmp_path).mode == "offline"


# -- MLflow ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_mlflow_sqlite_run_reads_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # to see that nothing (./mlruns) is written to the working directory
    config, run_id = make_config(tmp_path, "mlflow"), new_run_id()
    tracker = build_tracker(config, RunStore(config.output_dir).run_dir(run_id))
    assert isinstance(tracker, MlflowTracker)
    database = Path(config.output_dir).resolve() / "mlflow.db"
    assert tracker.tracking_uri == f"sqlite:///{database}"
    manifest = make_manifest(config, run_id, status)
    drive(tracker, config, run_id, manifest)

    assert database.is_file()
    assert not (tmp_path / "mlruns").exists()
    client = MlflowClient(tracking_uri=f"sqlite:///{database}")
    experiment = client.get_experiment_by_name("track-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == run_id
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == list(enumerate(LOSSES, start=1))
    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    assert params["peft.rank"] == "4"
    assert params["peft.target_modules"] == '["q_proj", "v_proj"]'
    assert params["provenir.run_id"] == run_id
    assert params["provenir.config_hash"] == config.config_hash()
    assert params["provenir.data_path"] == config.data.path
    assert tags["provenir.manifest_hash"] == manifest.manifest_hash
    assert tags["provenir.config_hash"] == config.config_hash()
    assert tags["provenir.dataset_hash"] == "d" * 64
    assert tags["provenir.status"] == status
    if status == "completed":
        assert run.info.status == "FINISHED"
        assert tags["provenir.adapter_hash"] == "a" * 64
        assert metrics["final/train_loss"] == 1.4375
        (final,) = client.get_metric_history(run.info.run_id, "final/train_loss")
        assert final.step == len(LOSSES)
    else:
        assert run.info.status == "FAILED"
        assert "provenir.adapter_hash" not in tags
        assert tags["provenir.error_type"] == "BackendError"
    assert_secret_not_written(tmp_path)


def test_mlflow_runs_share_one_database_per_artifacts_root(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    config = make_config(tmp_path, "mlflow")
    for _ in range(2):
        run_id = new_run_id()
        tracker = build_tracker(config, RunStore(config.output_dir).run_dir(run_id))
        assert tracker is not None
        drive(tracker, config, run_id, make_manifest(config, run_id, "completed"))
    client = MlflowClient(tracking_uri=f"sqlite:///{Path(config.output_dir).resolve()}/mlflow.db")
    experiment = client.get_experiment_by_name("track-test")
    assert len(client.search_runs([experiment.experiment_id])) == 2


# -- TensorBoard ----------------------------------------------------------------------------------


def tensorboard_text(accumulator: Any, tag: str) -> str:
    (event,) = accumulator.Tensors(tag)
    return event.tensor_proto.string_val[0].decode()


def load_events(log_dir: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    return accumulator


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_tensorboard_event_files_read_back(tmp_path: Path, status: str) -> None:
    config, run_id = make_config(tmp_path, "tensorboard"), new_run_id()
    rdir = RunStore(config.output_dir).run_dir(run_id)
    tracker = build_tracker(config, rdir)
    assert isinstance(tracker, TensorBoardTracker) and tracker.log_dir == rdir / "tensorboard"
    manifest = make_manifest(config, run_id, status)
    drive(tracker, config, run_id, manifest)

    events = load_events(rdir / "tensorboard")
    assert [(e.step, e.value) for e in events.Scalars("loss")] == list(enumerate(LOSSES, start=1))
    assert [e.step for e in events.Scalars("learning_rate")] == [1, 2, 3, 4]
    assert "rank: 4" in tensorboard_text(events, "provenir/config")
    run_text = tensorboard_text(events, "provenir/run")
    assert f"`{run_id}`" in run_text and f"`{config.config_hash()}`" in run_text
    manifest_text = tensorboard_text(events, "provenir/manifest")
    assert f"| manifest_hash | `{manifest.manifest_hash}` |" in manifest_text
    assert f"| status | `{status}` |" in manifest_text
    if status == "completed":
        assert [(e.step, e.value) for e in events.Scalars("final/train_loss")] == [(4, 1.4375)]
        assert f"| adapter_hash | `{'a' * 64}` |" in manifest_text
    else:
        assert "final/train_loss" not in events.Tags()["scalars"]
        assert "adapter_hash" not in manifest_text
    assert_secret_not_written(tmp_path)


def test_tracker_call_order_is_checked_and_finish_is_idempotent(tmp_path: Path) -> None:
    config, run_id = make_config(tmp_path), new_run_id()
    tracker = TensorBoardTracker(tmp_path / "tb")
    with pytest.raises(RuntimeError, match="outside start"):
        tracker.log_metrics({"loss": 1.0}, step=1)
    tracker.finish(make_manifest(config, run_id, "failed"))  # nothing was opened: nothing to close
    assert not (tmp_path / "tb").exists()
    drive(tracker, config, run_id, make_manifest(config, run_id, "completed"))
    tracker.finish(make_manifest(config, run_id, "completed"))  # e.g. a `finally` after a normal finish
    assert len(load_events(tmp_path / "tb").Tensors("provenir/manifest")) == 1
    with pytest.raises(RuntimeError, match="twice"):
        tracker.start(config, run_id)


def test_finish_after_a_failed_start_is_safe(tmp_path: Path) -> None:
    config, run_id = make_config(tmp_path), new_run_id()
    (tmp_path / "tb").write_text("a file where the log folder should go")
    tracker = TensorBoardTracker(tmp_path / "tb")
    with pytest.raises(FileExistsError):
        tracker.start(config, run_id)
    tracker.finish(make_manifest(config, run_id, "failed"))  # the runner's failure path
    with pytest.raises(RuntimeError, match="outside start"):
        tracker.log_metrics({"loss": 1.0}, step=1)


# -- choosing a tracker ---------------------------------------------------------------------------


def test_build_tracker_none_returns_none(tmp_path: Path) -> None:
    assert build_tracker(make_config(tmp_path, "none"), tmp_path) is None


@pytest.mark.parametrize(
    ("backend", "module", "package"),
    [
        ("wandb", "wandb", "wandb"),
        ("mlflow", "mlflow.tracking", "mlflow-skinny"),
        ("tensorboard", "tensorboard", "tensorboard"),
    ],
)
def test_missing_library_is_an_error_naming_the_package_and_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, module: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingExtraError) as caught:
        build_tracker(make_config(tmp_path, backend), tmp_path)
    assert str(caught.value) == (
        f"observability_backend: {backend} ({package}) needs {module}, which is not installed: "
        "pip install 'provenir[tracking]'"
    )


def test_importing_tracking_loads_no_tracking_or_training_library() -> None:
    code = (
        "import sys, provenir.train.tracking; "
        "heavy = [m for m in ('wandb', 'mlflow', 'tensorboard', 'torch', 'transformers') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the trainer callback -------------------------------------------------------------------------


def test_callback_forwards_numbers_only_from_the_main_process() -> None:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

    from provenir.train.tracking_callback import TrackingCallback

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[dict[str, float], int]] = []

        def start(self, config: RunConfig, run_id: str) -> None: ...

        def log_metrics(self, metrics: dict[str, float], step: int) -> None:
            self.calls.append((metrics, step))

        def finish(self, manifest: RunManifest) -> None: ...

    recorder = Recorder()
    assert isinstance(recorder, Tracker)
    callback = TrackingCallback(recorder)
    assert isinstance(callback, TrainerCallback)
    args = TrainingArguments(output_dir="unused", report_to="none")
    logs = {"loss": 0.5, "grad_norm": 2, "learning_rate": 1e-4, "note": "text", "missing": None}
    callback.on_log(args, TrainerState(global_step=7), TrainerControl(), logs=logs)
    callback.on_log(
        args, TrainerState(global_step=8, is_world_process_zero=False), TrainerControl(), logs=logs
    )
    assert recorder.calls == [({"loss": 0.5, "grad_norm": 2.0, "learning_rate": 1e-4}, 7)]


@pytest.mark.slow
def test_callback_in_a_real_trl_run_forwards_every_logged_loss(tmp_path: Path, tiny_model_path: Path) -> None:
    from provenir.train.backends.trl_backend import TRLBackend
    from provenir.train.runner import RunOptions, train
    from provenir.train.tracking_callback import TrackingCallback

    out = tmp_path / "artifacts"
    config = RunConfig.from_dict(
        {
            "output_dir": str(out),
            "max_steps": 3,
            "batch_size": 4,
            "gradient_checkpointing": False,
            "data": {"max_samples": 12},
            "observability_backend": "tensorboard",
        }
    )
    # The runner starts the tracker, streams through a TrackingCallback, and finishes after sealing.
    backend = TRLBackend(progress=False)
    manifest = train(config, RunOptions(backend=backend))
    rdir = RunStore(out).run_dir(manifest.run_id)
    assert not any(isinstance(cb, TrackingCallback) for cb in backend.callbacks)  # not left behind

    logged = [json.loads(line) for line in (rdir / "train_log.jsonl").read_text().splitlines()]
    trainer_losses = [(e["step"], e["loss"]) for e in logged if "loss" in e]
    assert [step for step, _ in trainer_losses] == [1, 2, 3]
    events = load_events(rdir / "tensorboard")
    tracked = [(e.step, e.value) for e in events.Scalars("loss")]
    assert [s for s, _ in tracked] == [s for s, _ in trainer_losses]
    # TensorBoard stores float32.
    assert [v for _, v in tracked] == pytest.approx([v for _, v in trainer_losses], rel=1e-6)
    assert {"grad_norm", "learning_rate", "train_loss"} <= set(events.Tags()["scalars"])
    (final,) = events.Scalars("final/train_loss")
    assert final.value == pytest.approx(manifest.metrics["train_loss"], rel=1e-6)
    assert manifest.manifest_hash and manifest.manifest_hash in tensorboard_text(events, "provenir/manifest")


def test_runner_sends_stub_run_to_tensorboard(tmp_path: Path) -> None:
    """Through the run driver: a backend without callbacks has its log replayed, then finished."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from provenir.train.runner import train

    config = RunConfig.from_dict(
        {"backend": "stub", "output_dir": str(tmp_path), "observability_backend": "tensorboard"}
    )
    manifest = train(config)
    events = EventAccumulator(str(RunStore(tmp_path).run_dir(manifest.run_id) / "tensorboard"))
    events.Reload()
    text = " ".join(str(events.Tensors(tag)) for tag in events.Tags().get("tensors", []))
    assert manifest.manifest_hash in text
