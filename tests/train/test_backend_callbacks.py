"""The run driver hands a run's Trainer callbacks to ``fit``; backends written to the seed's interface still run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provenir.core.abstractions import TrainData, TrainingBackend, TrainResult
from provenir.core.config import RunConfig
from provenir.core.store import RunStore
from provenir.train.runner import RunOptions, train


class CallbackTaker:
    """A backend whose ``fit`` takes callbacks, keeping what it was given."""

    loads_model = False

    def __init__(self) -> None:
        self.received: list[list[Any]] = []

    def fit(
        self, config: RunConfig, dataset: TrainData, run_dir: Path, *, callbacks: Sequence[Any] = ()
    ) -> TrainResult:
        self.received.append(list(callbacks))
        return TrainResult(adapter_dir=None, log_history=[{"step": 1, "loss": 0.5}], device="none")


class SeedBackend(TrainingBackend):
    """The seed page's plugin shape: ``fit(self, config, dataset)``, nothing else."""

    loads_model = False

    def fit(self, config, dataset):  # type: ignore[no-untyped-def, override]
        return TrainResult(adapter_dir=None, log_history=[{"step": 1, "loss": 0.25}], device="none")


def config(tmp_path: Path, **extra: Any) -> RunConfig:
    return RunConfig.from_dict({"backend": "stub", "output_dir": str(tmp_path / "artifacts"), **extra})


def test_fit_receives_the_runs_callbacks_for_that_call_only(tmp_path: Path) -> None:
    from provenir.train.tracking_callback import TrackingCallback
    from provenir.train.train_log import TRAIN_LOG, TrainLogCallback

    backend = CallbackTaker()
    first = train(config(tmp_path, observability_backend="tensorboard"), RunOptions(backend=backend))
    second = train(config(tmp_path), RunOptions(backend=backend))

    tracking, recorder = backend.received[0]
    assert isinstance(tracking, TrackingCallback) and isinstance(recorder, TrainLogCallback)
    assert recorder.path == RunStore(tmp_path / "artifacts").run_dir(first.run_id) / TRAIN_LOG
    # The second run has no tracker: only its own log recorder, nothing left over from the first.
    (only,) = backend.received[1]
    assert isinstance(only, TrainLogCallback) and only is not recorder
    assert only.path == RunStore(tmp_path / "artifacts").run_dir(second.run_id) / TRAIN_LOG
    assert first.status == second.status == "completed"


def test_a_seed_style_backend_runs_without_callbacks(tmp_path: Path) -> None:
    manifest = train(config(tmp_path), RunOptions(backend=SeedBackend()))
    assert manifest.status == "completed"
    log = RunStore(tmp_path / "artifacts").run_dir(manifest.run_id) / "train_log.jsonl"
    assert log.read_text() == '{"loss": 0.25, "step": 1}\n'
