"""CPU honesty: distributed.num_gpus: 0 means CPU, and a bf16 run on CPU says what it ran in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import ConfigError
from provenir.train.runner import train

pytestmark = pytest.mark.slow


def cpu_config(out: Path, **overrides: Any) -> RunConfig:
    base: dict[str, Any] = {
        "name": "cpu",
        "output_dir": str(out),
        "max_steps": 2,
        "batch_size": 4,
        "gradient_checkpointing": False,
        "peft": {"rank": 4, "alpha": 8},
        "data": {"max_samples": 8},
    }
    base.update(overrides)
    return RunConfig.from_dict(base)


def test_num_gpus_zero_with_strategy_none_trains_on_cpu(tmp_path: Path, tiny_model_path: Path) -> None:
    manifest = train(cpu_config(tmp_path, distributed={"num_gpus": 0, "strategy": "none"}))
    assert manifest.status == "completed"
    assert manifest.environment["device"] == "cpu" and manifest.extra["world_size"] == 1
    assert manifest.environment["precision"] == {
        "requested": "fp32",
        "device": "cpu",
        "base_dtype": ["float32"],
        "trainable_dtype": ["float32"],
        "mixed_precision": "no",
        "cpu_native_bf16": manifest.environment["precision"]["cpu_native_bf16"],
    }


def test_num_gpus_zero_plans_cpu_processes_even_with_gpus_visible() -> None:
    from provenir.train.distributed import plan_launch

    config = RunConfig.from_dict({"distributed": {"num_gpus": 0, "strategy": "ddp", "num_processes": 2}})
    plan = plan_launch(config, gpus=8)
    assert (plan.device, plan.dist_backend, plan.world_size) == ("cpu", "gloo", 2)


def test_cuda_with_num_gpus_zero_is_a_contradiction(tmp_path: Path) -> None:
    from provenir.train.backends.trl_backend import resolve_device
    from provenir.train.distributed import plan_launch

    config = cpu_config(tmp_path, device="cuda", distributed={"num_gpus": 0})
    for check in (resolve_device, plan_launch):
        with pytest.raises(ConfigError, match="device: cuda contradicts distributed.num_gpus: 0"):
            check(config)


def test_bf16_on_cpu_runs_and_is_recorded(tmp_path: Path, tiny_model_path: Path) -> None:
    from transformers.utils.import_utils import is_torch_bf16_available_on_device

    if not is_torch_bf16_available_on_device("cpu"):
        pytest.skip("this torch build has no bf16 on CPU")
    manifest = train(cpu_config(tmp_path, precision="bf16", distributed={"num_gpus": 0}))
    precision = manifest.environment["precision"]
    assert manifest.status == "completed" and manifest.environment["device"] == "cpu"
    assert precision["requested"] == "bf16" and precision["device"] == "cpu"
    assert precision["base_dtype"] == ["bfloat16"]  # the frozen base weights really are bf16
    assert precision["mixed_precision"] == "bf16"  # and the forward ran under bf16 autocast
    assert isinstance(precision["cpu_native_bf16"], bool)


def test_bf16_is_refused_where_torch_cannot_compute_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CPU whose torch build has no bf16 (simulated: the probe is the environment, not the code)."""
    import transformers.utils.import_utils as import_utils

    from provenir.train.backends.trl_backend import resolve_device

    monkeypatch.setattr(import_utils, "is_torch_bf16_available_on_device", lambda device: False)
    with pytest.raises(
        ConfigError, match="precision: bf16 is not supported by this torch build on cpu; use fp32"
    ):
        resolve_device(cpu_config(tmp_path, precision="bf16", device="cpu"))
