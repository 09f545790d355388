"""Protocols that pluggable components implement. Structural typing: no base class to inherit.

A backend trains; it does not hash, sign or write manifests: the run driver in
:mod:`provenir.train.runner` does that for every backend alike, so a plugin cannot forget it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from provenir.core.distributed_run import DistributedRun
from provenir.core.inputs import CheckpointPin
from provenir.core.selected_checkpoint import SelectedCheckpoint

if TYPE_CHECKING:
    from provenir.core.config import RunConfig
    from provenir.core.inputs import DatasetSourcePin, RowsPin

DataSchema = Literal["sft", "preference", "prompt"]


@dataclass
class TrainData:
    """The data a backend trains on, already loaded and validated.

    ``train`` and ``eval`` are ``datasets.Dataset`` objects or lists of dicts with the
    canonical columns of ``schema``: ``prompt``/``response`` (sft),
    ``prompt``/``chosen``/``rejected`` (preference), ``prompt`` (+ optional ``reference``).
    """

    train: Any
    schema: DataSchema
    eval: Any | None = None
    path: str | None = None
    dataset_hash: str | None = None
    eval_dataset_hash: str | None = None
    contamination: dict[str, Any] | None = None  # summary of the eval/train n-gram check, when run
    sources: list[DatasetSourcePin] = field(default_factory=list)  # every source read, as loaded
    # Set by the run driver once the exact rows are stored in the run folder: what every rank reads.
    train_rows_pin: RowsPin | None = None
    eval_rows_pin: RowsPin | None = None

    def __len__(self) -> int:
        return len(self.train)


@dataclass
class TrainResult:
    """What a backend hands back to the run driver."""

    adapter_dir: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    device: str = "cpu"
    resumed_from: str | None = None
    train_runtime_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The files of the checkpoint this run continued from (resumed_from is its name).
    resumed_checkpoint: CheckpointPin | None = None
    #: Environment facts the backend observed while training (e.g. torch's settings as the
    #: trainer set them); merged into the manifest's ``environment``.
    environment: dict[str, Any] = field(default_factory=dict)
    #: Which weights ``adapter_dir`` holds and why (last step, or the best checkpoint); recorded
    #: in the manifest as ``selected_checkpoint``. ``None``: the backend does not say.
    selected_checkpoint: SelectedCheckpoint | None = None
    #: Runs launched through torchrun: nodes, world size, restarts and every rank; the manifest's
    #: ``distributed``.
    distributed: DistributedRun | None = None


@runtime_checkable
class TrainingBackend(Protocol):
    """Trains a model for a :class:`RunConfig` on :class:`TrainData`.

    ``run_dir`` is the run's own folder; a backend whose ``fit`` does not accept it
    (``def fit(self, config, dataset)``) is still usable and reports its outputs through
    ``TrainResult.adapter_dir``. A backend that loads no base model sets ``loads_model = False``
    so the run driver does not pin (hash) one; without the attribute a model is assumed.

    ``callbacks`` are the run's ``transformers.TrainerCallback`` objects (live tracking,
    in-training evaluation, the streamed ``train_log.jsonl``), handed over by the run driver for
    this call only; a backend that runs a Trainer attaches them to it. A backend whose ``fit``
    takes no ``callbacks`` parameter gets none, and the run driver replays its
    ``TrainResult.log_history`` to the tracker after training instead.
    """

    def fit(
        self, config: RunConfig, dataset: TrainData, run_dir: Path, *, callbacks: Sequence[Any] = ()
    ) -> TrainResult: ...
