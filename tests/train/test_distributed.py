"""Distributed launch: a real 2-process DDP run on CPU (gloo), and clear errors before any launch."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import ConfigError
from provenir.train.distributed import (
    deepspeed_config,
    plan_launch,
    torchrun_command,
    validate_deepspeed_config,
)
from provenir.train.runner import train


def cfg(**distributed: object) -> RunConfig:
    return RunConfig.from_dict({"distributed": {"strategy": "ddp", **distributed}})


def test_gpu_request_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="num_gpus: 8 requested but 0 CUDA GPUs are visible"):
        plan_launch(cfg(num_gpus=8), gpus=0)
    with pytest.raises(ConfigError, match="fsdp needs CUDA GPUs"):
        plan_launch(RunConfig.from_dict({"distributed": {"strategy": "fsdp", "num_gpus": 2}}), gpus=0)
    with pytest.raises(ConfigError, match="deepspeed needs CUDA GPUs"):
        plan_launch(RunConfig.from_dict({"distributed": {"strategy": "deepspeed"}}), gpus=0)
    with pytest.raises(ConfigError, match="4 processes need 4 GPUs but 2 are visible"):
        plan_launch(cfg(num_gpus=4), gpus=2)


def test_plans_and_commands(tmp_path: Path) -> None:
    cpu = RunConfig.from_dict({"device": "cpu", "distributed": {"strategy": "ddp", "num_processes": 2}})
    plan = plan_launch(cpu, gpus=0)
    assert (plan.world_size, plan.device, plan.dist_backend) == (2, "cpu", "gloo")
    cmd = torchrun_command(cpu, plan, tmp_path / "c.yaml", tmp_path)
    assert (
        "--nproc-per-node=2" in cmd
        and "--standalone" in cmd
        and cmd[-4:-2] == ["--config", str(tmp_path / "c.yaml")]
    )
    gpu = plan_launch(cfg(num_gpus=8, num_nodes=2, node_rank=1, master_addr="10.0.0.1"), gpus=8)
    assert (gpu.world_size, gpu.dist_backend) == (16, "nccl")
    multi = torchrun_command(
        cfg(num_gpus=8, num_nodes=2, node_rank=1, master_addr="10.0.0.1"), gpu, tmp_path, tmp_path
    )
    assert {"--nnodes=2", "--node-rank=1", "--master-addr=10.0.0.1", "--master-port=29500"} <= set(multi)


def test_deepspeed_config_is_generated_and_validated() -> None:
    ds = deepspeed_config(
        RunConfig.from_dict({"distributed": {"strategy": "deepspeed", "deepspeed_stage": 3}})
    )
    validate_deepspeed_config(ds)
    assert ds["zero_optimization"]["stage"] == 3 and ds["train_micro_batch_size_per_gpu"] == "auto"
    with pytest.raises(ConfigError, match="stage"):
        validate_deepspeed_config({**ds, "zero_optimization": {"stage": 5}})
    with pytest.raises(ConfigError, match="both"):
        validate_deepspeed_config({**ds, "bf16": {"enabled": True}, "fp16": {"enabled": True}})


@pytest.mark.slow
def test_two_process_ddp_on_cpu_is_real_and_repeatable(tmp_path: Path, tiny_model_path: Path) -> None:
    config = RunConfig.from_dict(
        {
            "output_dir": str(tmp_path / "artifacts"),
            "device": "cpu",
            "max_steps": 2,
            "batch_size": 4,
            "gradient_checkpointing": False,
            "data": {"max_samples": 16},
            "distributed": {"strategy": "ddp", "num_processes": 2},
        }
    )
    first, second = train(config), train(config)
    assert first.status == second.status == "completed"
    assert first.extra["world_size"] == 2  # what torch.distributed reported on rank 0, not the request
    assert first.adapter_hash is not None and first.adapter_hash == second.adapter_hash
