"""Experiment tracking: send a run's config, metrics and manifest hashes to wandb, MLflow or TensorBoard.

::

    from provenir.train.tracking import build_tracker
    from provenir.train.tracking_callback import TrackingCallback

    tracker = build_tracker(config, run_dir)          # None when observability_backend is "none"
    if tracker is not None:
        tracker.start(config, run_id)
        result = backend.fit(config, data, run_dir, callbacks=[TrackingCallback(tracker)])
    ...                                               # train, seal the manifest
    if tracker is not None:
        tracker.finish(manifest)                      # also after a failed run

Each tracker uses its library directly rather than transformers' ``report_to`` integrations, so
exactly this is recorded and nothing else:

- at ``start``: the fully resolved config, plus ``provenir.run_id``, ``provenir.config_hash`` and
  ``provenir.data_path``;
- at every ``log_metrics``: the numbers given, at the trainer's global step;
- at ``finish``: the manifest's metrics as ``final/<name>``, and ``manifest_hash``, ``config_hash``,
  ``dataset_hash``, ``adapter_hash`` and ``status`` (tags in MLflow, summary in wandb, text in
  TensorBoard); the run is closed as finished or failed.

Nothing leaves the machine by default: wandb runs offline unless ``WANDB_MODE`` says otherwise,
MLflow writes to ``sqlite:///<output_dir>/mlflow.db`` with its telemetry off, TensorBoard writes
event files under ``<run_dir>/tensorboard``. No environment variable, host metadata, console
output or git remote is recorded. wandb, mlflow and tensorboard are imported only when a tracker
is built; transformers only by :mod:`provenir.train.tracking_callback`, which holds
:class:`~provenir.train.tracking_callback.TrackingCallback`.
"""

from __future__ import annotations

import json
import numbers
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from provenir.core.config import RunConfig
from provenir.core.errors import ConfigError
from provenir.core.extras import require_extra
from provenir.core.manifest import RunManifest

__all__ = [
    "MlflowTracker",
    "TensorBoardTracker",
    "Tracker",
    "WandbTracker",
    "build_tracker",
    "final_metrics",
    "flatten_config",
    "manifest_record",
    "numeric_metrics",
    "run_record",
]


@runtime_checkable
class Tracker(Protocol):
    """One experiment-tracking run: opened by ``start``, fed by ``log_metrics``, closed by ``finish``."""

    def start(self, config: RunConfig, run_id: str) -> None:
        """Open the run and record the resolved config, run id, config hash and dataset path."""
        ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Record ``metrics`` at optimiser step ``step``."""
        ...

    def finish(self, manifest: RunManifest) -> None:
        """Record the manifest's metrics and hashes and close the run (also for ``status: failed``)."""
        ...


# -- what every tracker records -------------------------------------------------------------------


def run_record(config: RunConfig, run_id: str) -> dict[str, str]:
    """Provenir's identity of a run, logged next to the config: run id, config hash, dataset path."""
    data = config.data.path or " + ".join(f"{s.path} (weight {s.weight:g})" for s in config.data.sources)
    return {"run_id": run_id, "config_hash": config.config_hash(), "data_path": data}


def manifest_record(manifest: RunManifest) -> dict[str, str]:
    """The sealed manifest's identity: its hash, the input and output hashes, and the status.

    ``adapter_hash`` is absent when the run produced no weights (a failed run). Only the error's
    exception type is kept, never its message: a message can quote anything, a credential included.
    """
    record = {
        "manifest_hash": manifest.manifest_hash,
        "config_hash": manifest.config_hash,
        "dataset_hash": manifest.dataset_hash,
        "adapter_hash": manifest.adapter_hash,
        "status": manifest.status,
        "error_type": manifest.error.split(":", 1)[0] if manifest.error else None,
    }
    return {k: v for k, v in record.items() if v}


def final_metrics(manifest: RunManifest) -> dict[str, float]:
    """The manifest's metrics as ``final/<name>``, apart from the per-step series the callback logs."""
    return {f"final/{k}": float(v) for k, v in sorted(manifest.metrics.items())}


def numeric_metrics(logs: Mapping[str, Any]) -> dict[str, float]:
    """The real-number entries of a trainer log as floats (strings, lists and None are dropped)."""
    # numbers.Real covers int, float, bool and numpy scalars; torch tensors never reach on_log.
    return {k: float(v) for k, v in logs.items() if isinstance(v, numbers.Real)}


def flatten_config(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"peft": {"rank": 4}}`` -> ``{"peft.rank": "4"}``; non-string values as JSON."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_config(value, name + "."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value)
    return out


def _require(module: str, backend: str, package: str) -> Any:
    """Import ``module`` or raise a MissingExtraError naming the package and the extra to install."""
    return require_extra(module, "tracking", purpose=f"observability_backend: {backend} ({package})")


class _Lifecycle:
    """Call-order checks shared by the trackers: log only while open; finish once.

    A tracker is open only once ``start`` has returned, so ``finish`` after a ``start`` that raised
    (or with no ``start`` at all) has nothing to close and does nothing: the runner can call it on
    every failure path.
    """

    def __init__(self) -> None:
        self._open = False
        self._closed = False
        self._last_step = 0

    def _opening(self) -> None:
        if self._open or self._closed:
            raise RuntimeError(f"{type(self).__name__}.start() called twice; use one tracker per run")

    def _opened(self) -> None:
        self._open = True

    def _logging(self, step: int) -> None:
        if not self._open:
            raise RuntimeError(f"{type(self).__name__}.log_metrics() called outside start() ... finish()")
        self._last_step = max(self._last_step, int(step))

    def _closing(self) -> bool:
        """True when ``finish`` should act: not before a successful start, and only the first time."""
        if not self._open or self._closed:
            return False
        self._open, self._closed = False, True
        return True


# -- wandb ----------------------------------------------------------------------------------------


class WandbTracker(_Lifecycle):
    """Weights & Biases, offline by default: the run is written under ``<directory>/wandb``.

    ``WANDB_MODE`` is honoured when set (``online`` is an explicit opt-in to uploading);
    otherwise the mode is forced to ``offline`` and ``wandb sync`` can upload the run later.

    wandb 0.31 offline writes only the ``run-<id>.wandb`` transaction log (no wandb-summary.json or
    config.yaml), and ``run.finish()`` can return before the wandb-core service has flushed it.
    The file is complete after ``wandb.teardown()`` or at interpreter exit (wandb's atexit hook).
    ``finish`` does not tear the service down itself: that would also end any other wandb run the
    calling program has open; a program that must read the file at once should call it.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        """``directory``: the run's folder; wandb adds ``wandb/offline-run-<time>-<run_id>`` below it."""
        super().__init__()
        self._wandb = _require("wandb", "wandb", "wandb")
        self.directory = Path(directory)
        self.mode = os.environ.get("WANDB_MODE") or "offline"
        self.run: Any = None

    def start(self, config: RunConfig, run_id: str) -> None:
        """Open an offline wandb run whose id is the Provenir run id and whose config is the RunConfig."""
        self._opening()
        self.directory.mkdir(parents=True, exist_ok=True)
        settings = self._wandb.Settings(
            # Nothing beyond what we log: no console capture (printed text can hold secrets), no git
            # metadata (a remote URL can embed a token), no host/argv metadata, no system sampler
            # (it probes cloud metadata endpoints over the network), no code or pip freeze.
            console="off",
            disable_git=True,
            x_disable_meta=True,
            x_disable_stats=True,
            x_disable_machine_info=True,
            x_save_requirements=False,
            save_code=False,
            disable_code=True,
        )
        self.run = self._wandb.init(
            mode=self.mode,
            dir=str(self.directory),
            project=config.name,
            name=config.name,
            id=run_id,
            job_type=config.algorithm,
            config={**config.model_dump(mode="json"), "provenir": run_record(config, run_id)},
            settings=settings,
            # A run of its own even when the calling program has another wandb run open.
            reinit="create_new",
        )
        self._opened()

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """``run.log(metrics, step=step)``; steps must not go backwards (wandb drops such rows)."""
        self._logging(step)
        self.run.log({k: float(v) for k, v in metrics.items()}, step=int(step))

    def finish(self, manifest: RunManifest) -> None:
        """Write final metrics and ``provenir/<hash>`` to the summary; exit code 1 for a failed run."""
        if not self._closing():
            return
        summary: dict[str, Any] = dict(final_metrics(manifest))
        summary.update({f"provenir/{k}": v for k, v in manifest_record(manifest).items()})
        self.run.summary.update(summary)
        self.run.finish(exit_code=0 if manifest.status == "completed" else 1)


# -- MLflow ---------------------------------------------------------------------------------------


class MlflowTracker(_Lifecycle):
    """MLflow with a local SQLite store (``sqlite:///<output_dir>/mlflow.db``), never the file store.

    The experiment is named after the run's ``name``; the MLflow run is named by the Provenir run id
    and tagged ``provenir.run_id``. Config fields are params (``peft.rank``), manifest hashes tags.
    """

    def __init__(self, tracking_uri: str, artifact_location: str | os.PathLike[str] | None = None) -> None:
        """``tracking_uri``: e.g. ``sqlite:////abs/path/mlflow.db``; ``artifact_location``: a folder for
        the experiment's artifacts (default: next to the database), so nothing lands in the cwd."""
        super().__init__()
        # MLflow 3 sends usage telemetry unless told not to; an explicit user setting still wins.
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        for module, package in (("sqlalchemy", "sqlalchemy"), ("alembic", "alembic")):
            _require(module, "mlflow", package)
        tracking = _require("mlflow.tracking", "mlflow", "mlflow-skinny")
        self.tracking_uri = tracking_uri
        self.artifact_location = artifact_location
        self.client: Any = tracking.MlflowClient(tracking_uri=tracking_uri)
        self.mlflow_run_id: str | None = None

    @classmethod
    def for_output_dir(cls, output_dir: str | os.PathLike[str]) -> MlflowTracker:
        """The tracker writing to ``<output_dir>/mlflow.db`` with artifacts in ``<output_dir>/mlartifacts``."""
        root = Path(output_dir).resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{root.as_posix()}/mlflow.db", artifact_location=root / "mlartifacts")

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        location = Path(self.artifact_location).resolve().as_uri() if self.artifact_location else None
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except MlflowException:
            # Another process created it between our lookup and create.
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def start(self, config: RunConfig, run_id: str) -> None:
        """Create the MLflow run and log the flattened config plus ``provenir.*`` as params."""
        from mlflow.entities import Param

        self._opening()
        experiment_id = self._experiment_id(config.name)
        run = self.client.create_run(experiment_id, run_name=run_id, tags={"provenir.run_id": run_id})
        self.mlflow_run_id = run.info.run_id
        params = flatten_config(config.model_dump(mode="json"))
        params.update({f"provenir.{k}": v for k, v in run_record(config, run_id).items()})
        items = [Param(k, v) for k, v in sorted(params.items())]
        for i in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
            self.client.log_batch(self.mlflow_run_id, params=items[i : i + 100])
        self._opened()

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """One ``log_batch`` of ``metrics`` at ``step``."""
        from mlflow.entities import Metric

        self._logging(step)
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, int(step)) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(self.mlflow_run_id, metrics=batch)

    def finish(self, manifest: RunManifest) -> None:
        """Log ``final/*`` metrics, tag ``provenir.<hash>``, and end the run FINISHED or FAILED."""
        if not self._closing():
            return
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, self._last_step) for k, v in final_metrics(manifest).items()]
        tags = [RunTag(f"provenir.{k}", v) for k, v in manifest_record(manifest).items()]
        self.client.log_batch(self.mlflow_run_id, metrics=metrics, tags=tags)
        self.client.set_terminated(
            self.mlflow_run_id, "FINISHED" if manifest.status == "completed" else "FAILED"
        )


# -- TensorBoard ----------------------------------------------------------------------------------


class TensorBoardTracker(_Lifecycle):
    """TensorBoard event files under ``log_dir``, written with tensorboard's own writer.

    tensorboard's writer needs neither torch nor TensorFlow. Metrics are scalars; the config and
    the manifest hashes are text summaries (``provenir/config``, ``provenir/run``,
    ``provenir/manifest``), which the TEXT tab renders as Markdown.
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        """``log_dir``: folder for the event files, normally ``<run_dir>/tensorboard``."""
        super().__init__()
        _require("tensorboard", "tensorboard", "tensorboard")
        self.log_dir = Path(log_dir)
        self._writer: Any = None

    def start(self, config: RunConfig, run_id: str) -> None:
        """Open the event file and write the config (YAML) and run identity as text at step 0."""
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._opening()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = EventFileWriter(str(self.log_dir))
        self._text("provenir/config", "```yaml\n" + config.to_yaml() + "```", step=0)
        self._text("provenir/run", _markdown_table(run_record(config, run_id)), step=0)
        self._opened()

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """One event holding a scalar per metric at ``step``."""
        self._logging(step)
        self._scalars(metrics, int(step))

    def finish(self, manifest: RunManifest) -> None:
        """Write ``final/*`` scalars and the manifest hashes as text at the last step, then close."""
        if not self._closing():
            return
        try:
            if manifest.metrics:
                self._scalars(final_metrics(manifest), self._last_step)
            self._text("provenir/manifest", _markdown_table(manifest_record(manifest)), step=self._last_step)
        finally:
            self._writer.close()  # flushes the queue to disk

    def _scalars(self, metrics: Mapping[str, float], step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        # simple_value scalars, as torch's SummaryWriter writes them: every reader understands them.
        values = [Summary.Value(tag=k, simple_value=float(v)) for k, v in metrics.items()]
        if values:
            self._write(Summary(value=values), step)

    def _text(self, tag: str, markdown: str, step: int) -> None:
        from tensorboard.plugins.text.summary_v2 import text_pb

        self._write(text_pb(tag, markdown), step)

    def _write(self, summary: Any, step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))


def _markdown_table(values: Mapping[str, str]) -> str:
    return "| key | value |\n|---|---|\n" + "".join(f"| {k} | `{v}` |\n" for k, v in values.items())


# -- choosing one ---------------------------------------------------------------------------------


def build_tracker(config: RunConfig, run_dir: str | os.PathLike[str]) -> Tracker | None:
    """The tracker ``config.observability_backend`` names, or ``None`` for ``"none"``.

    ``run_dir`` is the run's folder (``<output_dir>/runs/<run_id>``): wandb writes under
    ``<run_dir>/wandb`` and TensorBoard under ``<run_dir>/tensorboard``; MLflow shares one database
    per artifacts root, ``<output_dir>/mlflow.db``, so runs can be compared. A missing library is a
    :class:`~provenir.core.errors.MissingExtraError` naming the package and the extra.
    """
    backend = config.observability_backend
    if backend == "none":
        return None
    if backend == "wandb":
        return WandbTracker(run_dir)
    if backend == "mlflow":
        return MlflowTracker.for_output_dir(config.output_dir)
    if backend == "tensorboard":
        return TensorBoardTracker(Path(run_dir) / "tensorboard")
    raise ConfigError(f"observability_backend: unknown backend {backend!r}")  # pragma: no cover - Literal
