"""Training on Ray Train: the adapter of a torchrun run, the driver's manifest, resume, and the missing extra."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from provenir.core.config import RunConfig
from provenir.core.errors import ConfigError
from provenir.core.store import RunStore
from provenir.testing.cli import run_cli
from provenir.train.runner import train

#: A small CPU job, checkpointed after each of its two steps.
JOB: dict[str, Any] = {
    "device": "cpu",
    "max_steps": 2,
    "save_steps": 1,
    "batch_size": 4,
    "gradient_checkpointing": False,
    "data": {"max_samples": 16},
}


def job(output: Path, **distributed: Any) -> RunConfig:
    return RunConfig.from_dict(
        {
            **JOB,
            "output_dir": str(output),
            "distributed": {"strategy": "ddp", "num_processes": 2, **distributed},
        }
    )


@pytest.fixture()
def ray_stopped_after() -> Iterator[None]:
    """No Ray running before the test (the Ray tests' shared cluster is started again when they
    next need it), and the Ray the test starts stopped after it, whatever the outcome."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    yield

    if ray.is_initialized():
        ray.shutdown()


@pytest.mark.slow
def test_two_ray_workers_train_the_adapter_of_two_torchrun_processes_and_resume_from_the_run_folder(
    tmp_path: Path, tiny_model_path: Path, ray_stopped_after: None
) -> None:
    pytest.importorskip("ray")
    import ray

    from provenir.data.loading import load_train_data
    from provenir.data.pinned_rows import TRAIN_ROWS_FILE, write_rows
    from provenir.train.ray_train import RayLauncher

    by_torchrun = train(job(tmp_path / "torchrun"))
    assert not ray.is_initialized()  # torchrun needs no Ray
    on_ray = train(job(tmp_path / "ray", launcher="ray"))
    assert by_torchrun.status == on_ray.status == "completed"
    store = RunStore(tmp_path / "ray")
    rdir = store.run_dir(on_ray.run_id)
    adapter = rdir / "adapter" / "adapter_model.safetensors"
    torchrun_adapter = RunStore(tmp_path / "torchrun").run_dir(by_torchrun.run_id) / "adapter"
    assert adapter.read_bytes() == (torchrun_adapter / adapter.name).read_bytes()
    assert on_ray.adapter_hash is not None and on_ray.adapter_hash == by_torchrun.adapter_hash

    # The driver wrote the manifest, as for torchrun: it verifies, and says how the ranks were started.
    assert store.verify(on_ray.run_id).ok
    ran, torchran = on_ray.distributed, by_torchrun.distributed
    assert ran is not None and torchran is not None
    assert (ran.launcher, ran.ray_version, ran.ray_workers) == ("ray", ray.__version__, 2)
    assert (ran.rendezvous, ran.world_size, ran.nodes, ran.dist_backend) == ("ray", 2, 1, "gloo")
    assert [(r.rank, r.local_rank, r.world_size) for r in ran.ranks] == [(0, 0, 2), (1, 1, 2)]
    # Each rank counted its one start: no restart, stated as a count, not assumed.
    assert ran.restarts == 0 and [r.restart_count for r in ran.ranks] == [0, 0]
    assert _starts(rdir) == ["rank-0.start-0", "rank-1.start-0"]
    assert (torchran.launcher, torchran.ray_version, torchran.ray_workers) == ("torchrun", None, None)
    assert on_ray.extra["world_size"] == 2 and on_ray.metrics["global_step"] == 2
    # Ray Train was told of each checkpoint, in the run's own checkpoints folder.
    assert on_ray.extra["ray_checkpoint"] == "checkpoint-2"
    assert on_ray.config_hash == by_torchrun.config_hash  # where the ranks ran does not change what trained
    assert not ray.is_initialized()  # the launcher stopped the local Ray it started for the run

    # Resumed from the run folder's newest complete checkpoint, once the last one is gone (and
    # with it a checkpoint Ray was told of): the same adapter as the uninterrupted runs.
    shutil.rmtree(rdir / "checkpoints" / "checkpoint-2")
    shutil.rmtree(rdir / "adapter")
    config = RunConfig.from_yaml(rdir / "config.yaml")
    data = load_train_data(config)
    data.train_rows_pin = write_rows(rdir, TRAIN_ROWS_FILE, data.train)  # what the run driver stores
    # A Ray this process started is used as it is, and a job it has no room for is refused, not queued.
    ray.init(num_cpus=2, include_dashboard=False)
    three = job(tmp_path / "ray", launcher="ray", num_processes=3)
    with pytest.raises(ConfigError, match="3 Ray Train workers need one CPU each but the Ray started in"):
        RayLauncher().fit(three, data, rdir)
    resumed = RayLauncher().fit(config, data, rdir)
    assert ray.is_initialized()
    assert resumed.resumed_from == "checkpoint-1" and resumed.metrics["global_step"] == 2
    assert adapter.read_bytes() == (torchrun_adapter / adapter.name).read_bytes()
    assert resumed.extra["ray_checkpoint"] == "checkpoint-2"
    # The resumed launch counts its own starts: the first launch's markers were cleared.
    assert resumed.distributed is not None and resumed.distributed.restarts == 0
    assert _starts(rdir) == ["rank-0.start-0", "rank-1.start-0"]


def _starts(run_dir: Path) -> list[str]:
    from provenir.train.distributed import DISTRIBUTED_DIR

    return sorted(p.name for p in (run_dir / DISTRIBUTED_DIR).glob("rank-*.start-*"))


def test_each_start_of_a_rank_is_counted_once_and_a_new_launch_counts_afresh(tmp_path: Path) -> None:
    """Ray Train restarts every rank after a failure without saying so; the ranks count their starts."""
    from provenir.train.distributed import _clear_rank_records, count_start

    assert [count_start(tmp_path, 0) for _ in range(3)] == [0, 1, 2]  # the third start follows two restarts
    assert count_start(tmp_path, 1) == 0  # ranks count independently
    assert _starts(tmp_path) == ["rank-0.start-0", "rank-0.start-1", "rank-0.start-2", "rank-1.start-0"]
    _clear_rank_records(tmp_path)  # what every launch does first (prepare_launch)
    assert _starts(tmp_path) == [] and count_start(tmp_path, 0) == 0


def test_without_ray_the_launcher_is_one_line_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    config = job(tmp_path / "artifacts", launcher="ray")
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    assert run_cli(["train", str(path)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert errors == [
        "error: distributed.launcher: ray needs Ray, which is not installed: pip install 'provenir[ray]'"
    ]
    assert RunStore(tmp_path / "artifacts").run_ids() == []  # refused before any run was started


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"strategy": "none"}, "launcher: ray needs a strategy (ddp, fsdp or deepspeed)"),
        ({"nnodes": "1:4"}, "launcher: ray does not run elastic jobs (nnodes '1:4')"),
    ],
)
def test_what_ray_cannot_run_is_refused_in_the_config(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="^[^\n]+$") as err:
        RunConfig.from_dict({"distributed": {"strategy": "ddp", "launcher": "ray", **fields}})
    assert message in str(err.value)
    with pytest.raises(ConfigError, match="ray_address is set but launcher is torchrun"):
        RunConfig.from_dict({"distributed": {"strategy": "ddp", "ray_address": "auto"}})


def test_the_launcher_fields_leave_older_configs_and_their_hash_alone() -> None:
    plain = RunConfig.from_dict({"distributed": {"strategy": "ddp", "num_processes": 2}})
    on_ray = RunConfig.from_dict(
        {"distributed": {"strategy": "ddp", "num_processes": 2, "launcher": "ray", "ray_address": "auto"}}
    )
    dumped = plain.model_dump(mode="json")["distributed"]
    assert "launcher" not in dumped and "ray_address" not in dumped
    assert on_ray.model_dump(mode="json")["distributed"]["launcher"] == "ray"
    assert on_ray.config_hash() == plain.config_hash()


def test_a_ray_worker_reports_the_node_ray_train_gave_it() -> None:
    from provenir.train.worker import this_rank

    # Ray Train names the node NODE_RANK where torchrun says GROUP_RANK.
    record = this_rank("f" * 64, {"RANK": "3", "LOCAL_RANK": "1", "NODE_RANK": "1", "WORLD_SIZE": "4"})
    assert (record.rank, record.local_rank, record.group_rank, record.world_size) == (3, 1, 1, 4)


def test_a_distributed_record_without_a_launcher_dumps_as_before() -> None:
    from provenir.core.distributed_run import DistributedRun

    fields: dict[str, Any] = {
        "nodes": 1,
        "world_size": 1,
        "restarts": 0,
        "strategy": "ddp",
        "rendezvous": "standalone",
        "nnodes": "1",
        "ranks": [],
    }
    before = DistributedRun(**fields).model_dump(mode="json")
    assert not {"launcher", "ray_version", "ray_workers"} & set(before)  # old manifests keep their hash
    on_ray = DistributedRun(**fields, launcher="ray", ray_version="2.60.0", ray_workers=1).model_dump(
        mode="json"
    )
    assert {k: on_ray[k] for k in ("launcher", "ray_version", "ray_workers")} == {
        "launcher": "ray",
        "ray_version": "2.60.0",
        "ray_workers": 1,
    }
