"""Entry point of one rank under ``torchrun`` or Ray Train (see :mod:`provenir.train.distributed`, :mod:`provenir.train.ray_train`).

Every rank trains on the exact rows the run driver stored in the run folder (hash-checked, never
reloaded from the source); rank 0 saves the adapter and writes ``worker_result.json`` for the launcher,
and every rank, once trained, writes its :class:`~provenir.core.distributed_run.RankRecord`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from provenir.core.abstractions import TrainData
from provenir.core.atomic import atomic_write_json
from provenir.core.config import RunConfig
from provenir.core.distributed_run import RankRecord, environment_digest
from provenir.core.environment import capture_environment
from provenir.core.inputs import RowsPin
from provenir.data.loading import schema_for
from provenir.data.pinned_rows import read_rows
from provenir.plugins.registry import PluginRegistry
from provenir.train.distributed import RESULT_FILE, write_rank_record
from provenir.train.runner import takes_callbacks


def stored_train_data(
    config: RunConfig, run_dir: Path, train_pin: RowsPin, eval_pin: RowsPin | None
) -> TrainData:
    """The rows the run driver stored, hash-checked: no rank reloads or rescans the source."""
    return TrainData(
        train=read_rows(run_dir, train_pin),
        schema=schema_for(config),
        eval=read_rows(run_dir, eval_pin) if eval_pin is not None else None,
        train_rows_pin=train_pin,
        eval_rows_pin=eval_pin,
    )


def this_rank(environment_sha256: str, environ: Mapping[str, str] | None = None) -> RankRecord:
    """This process as torchrun started it: ranks, host, restarts, and the torch.distributed backend it ran.

    ``environment_sha256`` is taken when the rank starts, before training sets any variable of
    its own (Trainer's full determinism sets ``CUBLAS_WORKSPACE_CONFIG``), so it describes the
    environment the rank was given, as the run driver's ``environment`` does.
    """
    env = os.environ if environ is None else environ
    import torch.distributed as dist

    backend = str(dist.get_backend()) if dist.is_available() and dist.is_initialized() else None
    return RankRecord(
        rank=int(env.get("RANK", "0")),
        local_rank=int(env.get("LOCAL_RANK", "0")),
        # torchrun says GROUP_RANK; Ray Train says NODE_RANK.
        group_rank=int(env.get("GROUP_RANK", env.get("NODE_RANK", "0"))),
        world_size=int(env.get("WORLD_SIZE", "1")),
        host=socket.gethostname(),
        restart_count=int(env.get("TORCHELASTIC_RESTART_COUNT", "0")),
        dist_backend=backend,
        environment_sha256=environment_sha256,
    )


def main(argv: list[str] | None = None, callbacks: Sequence[Any] = ()) -> None:
    """Train this rank's share; every rank records itself, rank 0 reports the result.

    ``callbacks``: Trainer callbacks of the launcher (Ray Train's checkpoint reports), passed to
    a backend whose ``fit`` takes them, after Provenir's own.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--train-rows", required=True, type=RowsPin.model_validate_json)
    parser.add_argument("--eval-rows", type=RowsPin.model_validate_json)
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    environment_sha256 = environment_digest(capture_environment())
    config = RunConfig.from_yaml(args.config)
    backend = PluginRegistry.create("backend", config.backend)
    if hasattr(backend, "progress"):
        backend.progress = rank == 0
    data = stored_train_data(config, args.run_dir, args.train_rows, args.eval_rows)
    if callbacks and takes_callbacks(backend):
        result = backend.fit(config, data, args.run_dir, callbacks=list(callbacks))
    else:
        result = backend.fit(config, data, args.run_dir)
    write_rank_record(args.run_dir, this_rank(environment_sha256))
    if rank == 0:
        payload = dataclasses.asdict(result)
        payload["adapter_dir"] = str(result.adapter_dir) if result.adapter_dir else None
        pin = result.resumed_checkpoint  # a pydantic model: asdict would leave it to default=str
        payload["resumed_checkpoint"] = pin.model_dump(mode="json") if pin else None
        chosen = result.selected_checkpoint
        payload["selected_checkpoint"] = chosen.model_dump(mode="json") if chosen else None
        atomic_write_json(args.run_dir / RESULT_FILE, json.loads(json.dumps(payload, default=str)))


if __name__ == "__main__":
    main()
