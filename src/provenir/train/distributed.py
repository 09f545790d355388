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

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenir.core.abstractions import TrainData, TrainResult
from provenir.core.config import RunConfig
from provenir.core.errors import BackendError, ConfigError
from provenir.core.inputs import CheckpointPin
from provenir.core.selected_checkpoint import SelectedCheckpoint

RESULT_FILE = "worker_result.json"


@dataclass(frozen=True)
class LaunchPlan:
    """What will be started: processes per node, nodes, device and torch.distributed backend."""

    nproc_per_node: int
    num_nodes: int
    device: str
    dist_backend: str

    @property
    def world_size(self) -> int:
        """Total number of processes."""
        return self.nproc_per_node * self.num_nodes


def cuda_device_count() -> int:
    """Visible CUDA GPUs (0 when torch has no CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def plan_launch(config: RunConfig, gpus: int | None = None) -> LaunchPlan:
    """Validate the distributed section against this machine; a :class:`ConfigError` explains any mismatch."""
    d = config.distributed
    visible = cuda_device_count() if gpus is None else gpus
    on_cpu = config.device == "cpu" or (config.device == "auto" and visible == 0)
    if on_cpu:
        if d.strategy in ("fsdp", "deepspeed"):
            raise ConfigError(
                f"distributed.strategy: {d.strategy} needs CUDA GPUs and none are in use "
                "(Trainer would silently fall back to DDP); use strategy: ddp with device: cpu"
            )
        if d.num_processes is None and d.num_gpus > 1:
            raise ConfigError(
                f"distributed.num_gpus: {d.num_gpus} requested but {visible} CUDA GPUs are visible; "
                "for data parallelism on CPU set device: cpu and distributed.num_processes"
            )
        return LaunchPlan(d.num_processes or 1, d.num_nodes, "cpu", "gloo")
    if config.device == "cuda" and visible == 0:
        raise ConfigError("device: cuda requested but no CUDA GPU is visible to torch")
    nproc = d.num_processes or d.num_gpus
    if nproc > visible:
        raise ConfigError(
            f"distributed.num_gpus: {nproc} processes need {nproc} GPUs but {visible} are visible on this node"
        )
    return LaunchPlan(nproc, d.num_nodes, "cuda", "nccl")


def torchrun_command(
    config: RunConfig, plan: LaunchPlan, config_path: Path, run_dir: Path, data: TrainData | None = None
) -> list[str]:
    """The ``torchrun`` command line that runs the worker on every rank of this node.

    ``data``'s stored-rows pins travel on the command line, so every rank reads the exact rows the
    manifest records (and checks their hash) instead of reloading and rescanning the source.
    """
    d = config.distributed
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={plan.nproc_per_node}"]
    if plan.num_nodes == 1:
        cmd.append("--standalone")  # picks a free local port: parallel jobs never collide
    else:
        cmd += [
            f"--nnodes={plan.num_nodes}",
            f"--node-rank={d.node_rank}",
            f"--master-addr={d.master_addr}",
            f"--master-port={d.master_port}",
        ]
    worker = [*cmd, "-m", "provenir.train.worker", "--config", str(config_path), "--run-dir", str(run_dir)]
    if data is not None:
        for flag, pin in (("--train-rows", data.train_rows_pin), ("--eval-rows", data.eval_rows_pin)):
            if pin is not None:
                worker += [flag, pin.model_dump_json()]
    return worker


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
    if config.device == "cpu" or not cuda_device_count():
        return {"ddp_backend": "gloo"}
    return {}


class DistributedLauncher:
    """A backend wrapper: runs the configured backend on every rank via torchrun."""

    def fit(self, config: RunConfig, dataset: TrainData, run_dir: Path) -> TrainResult:
        """Launch, wait, and return what rank 0 reported. The runner writes the manifest as usual."""
        plan = plan_launch(config)
        from provenir.train.checkpoints import find_resume_checkpoint

        # An altered checkpoint is refused here, on one line, rather than as a rank's traceback.
        find_resume_checkpoint(run_dir)
        config_path = run_dir / "config.yaml"  # written by the run driver before fit
        result_path = run_dir / RESULT_FILE
        result_path.unlink(missing_ok=True)
        env = {**os.environ, "PROVENIR_WORLD_SIZE": str(plan.world_size)}
        if dataset.train_rows_pin is None:
            raise BackendError(
                "distributed training needs the run's stored rows (run it through the run driver)"
            )
        proc = subprocess.run(torchrun_command(config, plan, config_path, run_dir, dataset), env=env)
        if proc.returncode != 0:
            raise BackendError(f"distributed training failed: torchrun exited with code {proc.returncode}")
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
            extra={
                "world_size": plan.world_size,
                "strategy": config.distributed.strategy,
                **data.get("extra", {}),
            },
        )
