"""Launching data-parallel training: DDP, FSDP and DeepSpeed through ``torchrun``.

The launching process checks resources *before* starting anything (asking for 8 GPUs on a
machine with none is a one-line error, not a hang), writes the resolved config into the run
folder, starts ``torchrun`` running :mod:`provenir.train.worker` on every rank, waits, and reads
back the result rank 0 wrote. Known traps this avoids: ``accelerate launch --cpu
--num_processes 2`` silently runs one process (we use torchrun + gloo instead), and FSDP through
Trainer silently falls back to DDP without a GPU (we refuse FSDP/DeepSpeed on CPU, and the worker
checks ``trainer.is_fsdp_enabled``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenir.core.abstractions import TrainData, TrainResult
from provenir.core.config import RunConfig
from provenir.core.distributed_run import DistributedRun, RankRecord
from provenir.core.errors import BackendError, ConfigError
from provenir.core.inputs import CheckpointPin, RowsPin
from provenir.core.selected_checkpoint import SelectedCheckpoint
from provenir.train.rendezvous import (
    Rendezvous,
    SchedulerJob,
    resolve_nodes,
    resolve_rendezvous,
    scheduler_job,
    slurm_hostnames,
)

RESULT_FILE = "worker_result.json"
#: Folder, inside the run folder, of the launch description other nodes join from and the ranks' records.
DISTRIBUTED_DIR = "distributed"
LAUNCH_FILE = f"{DISTRIBUTED_DIR}/launch.json"


def rank_record_path(run_dir: Path, rank: int) -> Path:
    """Where rank ``rank`` writes its :class:`~provenir.core.distributed_run.RankRecord`."""
    return run_dir / DISTRIBUTED_DIR / f"rank-{rank:05d}.json"


@dataclass(frozen=True)
class LaunchPlan:
    """What will be started: processes per node, nodes (MIN..MAX), device and torch.distributed backend."""

    nproc_per_node: int
    min_nodes: int
    max_nodes: int
    device: str
    dist_backend: str
    max_restarts: int = 0
    job: SchedulerJob | None = None

    @property
    def num_nodes(self) -> int:
        """The most nodes that may train (an elastic run may start with fewer)."""
        return self.max_nodes

    @property
    def world_size(self) -> int:
        """The most processes that may train."""
        return self.nproc_per_node * self.max_nodes


def cuda_device_count() -> int:
    """Visible CUDA GPUs (0 when torch has no CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def plan_launch(
    config: RunConfig,
    gpus: int | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    joining: bool = False,
) -> LaunchPlan:
    """Validate the distributed section against this machine; a :class:`ConfigError` explains any mismatch.

    ``environ`` (default ``os.environ``) is read for a Slurm or SkyPilot job (see
    :mod:`provenir.train.rendezvous`). Unless ``joining``, a node the scheduler numbers other than 0
    is refused: it joins the run node 0 starts (``python -m provenir.train.join``) instead of
    starting a second one.
    """
    d = config.distributed
    job = scheduler_job(os.environ if environ is None else environ, slurm_hostnames)
    min_nodes, max_nodes = resolve_nodes(d, job)
    if max_nodes > 1 and not joining:
        if d.node_rank > 0:
            raise ConfigError(
                f"distributed.node_rank: {d.node_rank}: only the first node runs `provenir train`; "
                "the others join its run with `python -m provenir.train.join`"
            )
        if job is not None and job.node_rank:
            raise ConfigError(
                f"this is node {job.node_rank} of the {job.scheduler} job: run `provenir train` on node 0 "
                "and `python -m provenir.train.join --output-dir DIR` here"
            )
    # Counting GPUs imports torch: not needed for device: cpu (a joining CPU node starts faster).
    if config.device == "cuda" and d.num_gpus == 0:
        raise ConfigError("device: cuda contradicts distributed.num_gpus: 0 (which means CPU); drop one")
    cpu_asked = config.device == "cpu" or d.num_gpus == 0
    visible = gpus if gpus is not None or cpu_asked else cuda_device_count()
    on_cpu = cpu_asked or (config.device == "auto" and visible == 0)
    if on_cpu:
        if d.strategy in ("fsdp", "deepspeed"):
            raise ConfigError(
                f"distributed.strategy: {d.strategy} needs CUDA GPUs and none are in use "
                "(Trainer would silently fall back to DDP); use strategy: ddp with device: cpu"
            )
        if d.num_processes is None and d.num_gpus > 1:
            shown = cuda_device_count() if visible is None else visible
            raise ConfigError(
                f"distributed.num_gpus: {d.num_gpus} requested but {shown} CUDA GPUs are visible; "
                "for data parallelism on CPU set device: cpu and distributed.num_processes"
            )
        return LaunchPlan(d.num_processes or 1, min_nodes, max_nodes, "cpu", "gloo", d.max_restarts, job)
    visible = visible or 0  # counted above: the device is not cpu
    if config.device == "cuda" and visible == 0:
        raise ConfigError("device: cuda requested but no CUDA GPU is visible to torch")
    nproc = d.num_processes or d.num_gpus
    if nproc > visible:
        raise ConfigError(
            f"distributed.num_gpus: {nproc} processes need {nproc} GPUs but {visible} are visible on this node"
        )
    return LaunchPlan(nproc, min_nodes, max_nodes, "cuda", "nccl", d.max_restarts, job)


def worker_arguments(
    config_path: Path, run_dir: Path, train_rows: RowsPin, eval_rows: RowsPin | None = None
) -> list[str]:
    """``-m provenir.train.worker`` and its arguments.

    The stored-rows pins travel on the command line, so every rank reads the exact rows the
    manifest records (and checks their hash) instead of reloading and rescanning the source.
    """
    # Imported here, not at the top: the worker imports this module. Its own imports are light
    # (no torch), and naming the module object keeps a rename from leaving a stale string behind.
    from provenir.train import worker

    args = ["-m", worker.__name__, "--config", str(config_path), "--run-dir", str(run_dir)]
    args += ["--train-rows", train_rows.model_dump_json()]
    if eval_rows is not None:
        args += ["--eval-rows", eval_rows.model_dump_json()]
    return args


def torchrun_command(plan: LaunchPlan, rendezvous: Rendezvous | None, worker: list[str]) -> list[str]:
    """The ``torchrun`` command line that runs ``worker`` on every process of this node.

    One node without a rendezvous endpoint uses ``--standalone`` (a free local port: parallel
    jobs never collide); otherwise every node meets at the c10d ``rendezvous``.
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={plan.nproc_per_node}"]
    cmd += ["--standalone"] if rendezvous is None else rendezvous.torchrun_args()
    cmd.append(f"--max-restarts={plan.max_restarts}")
    return [*cmd, *worker]


def deepspeed_config(config: RunConfig) -> dict[str, Any]:
    """A ZeRO config whose batch/precision fields defer to the Trainer ("auto") so they cannot disagree."""
    stage = config.distributed.deepspeed_stage
    zero: dict[str, Any] = {"stage": stage, "overlap_comm": True, "contiguous_gradients": True}
    if stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "train_batch_size": "auto",
        "gradient_clipping": "auto",
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "zero_optimization": zero,
    }


def validate_deepspeed_config(ds: dict[str, Any]) -> None:
    """Structural checks of a ZeRO config (DeepSpeed itself re-validates at start-up on GPU)."""
    zero = ds.get("zero_optimization")
    if not isinstance(zero, dict) or zero.get("stage") not in (0, 1, 2, 3):
        raise ConfigError("deepspeed: zero_optimization.stage must be 0, 1, 2 or 3")
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps"):
        value = ds.get(key)
        if value != "auto" and not (isinstance(value, int) and value > 0):
            raise ConfigError(f"deepspeed: {key} must be a positive integer or 'auto'")
    if ds.get("bf16", {}).get("enabled") is True and ds.get("fp16", {}).get("enabled") is True:
        raise ConfigError("deepspeed: bf16 and fp16 cannot both be enabled")


def trainer_distributed_args(config: RunConfig, run_dir: Path) -> dict[str, Any]:
    """Extra TrainingArguments for the worker, by strategy."""
    strategy = config.distributed.strategy
    if strategy == "fsdp":
        return {"fsdp": "full_shard auto_wrap", "fsdp_config": {"use_orig_params": True}}
    if strategy == "deepspeed":
        ds = deepspeed_config(config)
        validate_deepspeed_config(ds)
        path = run_dir / "deepspeed_config.json"
        from provenir.core.atomic import atomic_write_json

        atomic_write_json(path, ds)
        return {"deepspeed": str(path)}
    if config.device == "cpu" or config.distributed.num_gpus == 0 or not cuda_device_count():
        return {"ddp_backend": "gloo"}
    return {}


def deprecation_lines(config: RunConfig) -> list[str]:
    """One line per deprecated distributed field the config sets, saying what replaces it."""
    replacement = {
        "num_nodes": "distributed.num_nodes is deprecated: use distributed.nnodes",
        "node_rank": "distributed.node_rank is deprecated and ignored: the rendezvous numbers the nodes",
        "master_addr": "distributed.master_addr is deprecated: use distributed.rdzv_endpoint (host:port)",
        "master_port": "distributed.master_port is deprecated: use distributed.rdzv_endpoint (host:port)",
    }
    return [
        f"{replacement[name]} (removed in the next release)"
        for name in config.distributed.deprecated_fields()
    ]


def write_launch(run_dir: Path, config: RunConfig, plan: LaunchPlan, rendezvous: Rendezvous | None) -> Path:
    """Describe this launch in the run folder, for the nodes that join it (:mod:`provenir.train.join`)."""
    from provenir.core.atomic import atomic_write_json

    return atomic_write_json(
        run_dir / LAUNCH_FILE,
        {
            "run_id": run_dir.name,
            "strategy": config.distributed.strategy,
            "max_restarts": plan.max_restarts,
            "rendezvous": dataclasses.asdict(rendezvous) if rendezvous is not None else None,
        },
    )


def read_launch(run_dir: Path) -> tuple[str, int, Rendezvous | None]:
    """The run id, max_restarts and rendezvous that :func:`write_launch` recorded."""
    path = run_dir / LAUNCH_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rdzv = data["rendezvous"]
        return str(data["run_id"]), int(data["max_restarts"]), Rendezvous(**rdzv) if rdzv else None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"{path}: not a launch description Provenir wrote ({exc})") from None


def write_rank_record(run_dir: Path, record: RankRecord) -> Path:
    """Write one rank's record atomically (each rank its own file: no two processes share one)."""
    from provenir.core.atomic import atomic_write_json

    return atomic_write_json(rank_record_path(run_dir, record.rank), record.model_dump(mode="json"))


def collect_ranks(run_dir: Path) -> list[RankRecord]:
    """Every rank's record of the finished launch, in rank order.

    Rank 0's record gives the world size; records of higher ranks are those of an earlier, larger
    round of an elastic run and are ignored. A missing record means a node wrote into a run
    folder the launching node cannot see.
    """
    records: list[RankRecord] = []
    world_size: int | None = None
    rank = 0
    while world_size is None or rank < world_size:
        path = rank_record_path(run_dir, rank)
        if not path.is_file():
            raise BackendError(
                f"rank {rank} left no record in {path.parent}: every node must see the same run folder "
                "(a shared filesystem)"
            )
        try:
            record = RankRecord.model_validate_json(path.read_bytes())
        except ValueError as exc:
            raise BackendError(f"{path}: not a rank record ({exc})") from None
        world_size = record.world_size if world_size is None else world_size
        records.append(record)
        rank += 1
    return records


def collect_run(
    run_dir: Path, config: RunConfig, plan: LaunchPlan, rendezvous: Rendezvous | None
) -> DistributedRun:
    """Gather every rank's record of the finished torchrun launch into the manifest's ``distributed`` section."""
    records = collect_ranks(run_dir)
    return DistributedRun(
        nodes=len({r.group_rank for r in records}),
        world_size=len(records),
        restarts=max(r.restart_count for r in records),
        strategy=config.distributed.strategy,
        dist_backend=records[0].dist_backend,
        rendezvous="standalone" if rendezvous is None else "c10d",
        nnodes=rendezvous.nnodes if rendezvous is not None else "1",
        rdzv_endpoint=rendezvous.endpoint if rendezvous is not None else None,
        rdzv_id=rendezvous.rdzv_id if rendezvous is not None else None,
        scheduler=plan.job.scheduler if plan.job is not None else None,
        ranks=records,
        launcher="torchrun",
    )


def _clear_rank_records(run_dir: Path) -> None:
    folder = run_dir / DISTRIBUTED_DIR
    for stale in [*folder.glob("rank-*.json"), *folder.glob("rank-*.start-*")] if folder.is_dir() else []:
        stale.unlink()


def count_start(run_dir: Path, rank: int) -> int:
    """Mark one more start of ``rank`` in this launch; returns how many times it started before.

    For launchers that restart ranks without telling them (Ray Train sets no
    ``TORCHELASTIC_RESTART_COUNT``): each start creates the next ``rank-R.start-N`` marker
    exclusively, so the count is exact even if a restarted rank races a slow predecessor.
    Markers are cleared with the ranks' records at each launch, so a resumed run counts its own.
    """
    folder = run_dir / DISTRIBUTED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    before = 0
    while True:
        try:
            (folder / f"rank-{rank}.start-{before}").open("x").close()
            return before
        except FileExistsError:
            before += 1


def prepare_launch(config: RunConfig, dataset: TrainData, run_dir: Path) -> list[str]:
    """Check the run folder and return the worker's arguments (without ``-m MODULE``).

    Shared by every launcher: an altered checkpoint is refused here, on one line, rather than
    as a rank's traceback; an earlier result and earlier ranks' records are cleared, so a
    resumed or relaunched run counts only its own.
    """
    from provenir.train.checkpoints import find_resume_checkpoint

    find_resume_checkpoint(run_dir)
    (run_dir / RESULT_FILE).unlink(missing_ok=True)
    if dataset.train_rows_pin is None:
        raise BackendError("distributed training needs the run's stored rows (run it through the run driver)")
    _clear_rank_records(run_dir)
    config_path = run_dir / "config.yaml"  # written by the run driver before fit
    return worker_arguments(config_path, run_dir, dataset.train_rows_pin, dataset.eval_rows_pin)[2:]


def launched_result(run_dir: Path, config: RunConfig, ran: DistributedRun) -> TrainResult:
    """The :class:`TrainResult` rank 0 wrote, with the launch's ``distributed`` record."""
    result_path = run_dir / RESULT_FILE
    if not result_path.is_file():
        raise BackendError("distributed training finished but rank 0 wrote no result")
    data = json.loads(result_path.read_text())
    return TrainResult(
        adapter_dir=Path(data["adapter_dir"]),
        metrics=data["metrics"],
        log_history=data["log_history"],
        device=data["device"],
        resumed_from=data.get("resumed_from"),
        environment=data.get("environment", {}),
        resumed_checkpoint=(
            CheckpointPin.model_validate(data["resumed_checkpoint"])
            if data.get("resumed_checkpoint")
            else None
        ),
        train_runtime_s=data.get("train_runtime_s"),
        selected_checkpoint=(
            SelectedCheckpoint.model_validate(data["selected_checkpoint"])
            if data.get("selected_checkpoint")
            else None
        ),
        distributed=ran,
        extra={
            "world_size": ran.world_size,
            "strategy": config.distributed.strategy,
            **data.get("extra", {}),
        },
    )


class DistributedLauncher:
    """A backend wrapper: runs the configured backend on every rank via torchrun."""

    def fit(self, config: RunConfig, dataset: TrainData, run_dir: Path) -> TrainResult:
        """Launch, wait, and return what rank 0 reported. The runner writes the manifest as usual.

        With several nodes this node starts the run and the others join it from the run folder
        (``python -m provenir.train.join``), which must be on a filesystem every node shares.
        """
        plan = plan_launch(config)
        for line in deprecation_lines(config):
            print(line, file=sys.stderr)
        rendezvous = resolve_rendezvous(config.distributed, run_dir.name, plan.job)
        from provenir.train import worker

        arguments = prepare_launch(config, dataset, run_dir)
        write_launch(run_dir, config, plan, rendezvous)
        env = {**os.environ, "PROVENIR_WORLD_SIZE": str(plan.world_size)}
        proc = subprocess.run(
            torchrun_command(plan, rendezvous, ["-m", worker.__name__, *arguments]), env=env
        )
        if proc.returncode != 0:
            raise BackendError(f"distributed training failed: torchrun exited with code {proc.returncode}")
        if not (run_dir / RESULT_FILE).is_file():
            raise BackendError("distributed training finished but rank 0 wrote no result")
        return launched_result(run_dir, config, collect_run(run_dir, config, plan, rendezvous))
