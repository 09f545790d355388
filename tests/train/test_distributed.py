"""Distributed launch: a real 2-process DDP run on CPU (gloo), and clear errors before any launch."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.distributed_run import RankRecord, environment_digest
from provenir.core.environment import capture_environment
from provenir.core.errors import BackendError, ConfigError
from provenir.core.inputs import RowsPin
from provenir.core.manifest import RunManifest, new_run_id
from provenir.core.store import RunStore
from provenir.train.distributed import (
    collect_run,
    deepspeed_config,
    deprecation_lines,
    plan_launch,
    rank_record_path,
    torchrun_command,
    validate_deepspeed_config,
    worker_arguments,
    write_rank_record,
)
from provenir.train.rendezvous import resolve_rendezvous
from provenir.train.runner import RunOptions, train


def cfg(**distributed: object) -> RunConfig:
    return RunConfig.from_dict({"distributed": {"strategy": "ddp", **distributed}})


def test_gpu_request_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="num_gpus: 8 requested but 0 CUDA GPUs are visible"):
        plan_launch(cfg(num_gpus=8), gpus=0, environ={})
    with pytest.raises(ConfigError, match="fsdp needs CUDA GPUs"):
        plan_launch(RunConfig.from_dict({"distributed": {"strategy": "fsdp", "num_gpus": 2}}), gpus=0)
    with pytest.raises(ConfigError, match="deepspeed needs CUDA GPUs"):
        plan_launch(RunConfig.from_dict({"distributed": {"strategy": "deepspeed"}}), gpus=0)
    with pytest.raises(ConfigError, match="4 processes need 4 GPUs but 2 are visible"):
        plan_launch(cfg(num_gpus=4), gpus=2)


def test_worker_arguments_name_the_worker_module_without_loading_torch(tmp_path: Path) -> None:
    # A fresh interpreter: the launcher must not load torch just to name the module torchrun runs.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from provenir.core.inputs import RowsPin\n"
        "from provenir.train.distributed import worker_arguments\n"
        "pin = RowsPin(path='data/train.jsonl', sha256='0' * 64, count=3)\n"
        "args = worker_arguments(Path('c.yaml'), Path('.'), pin)\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets') if m in sys.modules]\n"
        "print(args[0], args[1], heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    flag, module, heavy = proc.stdout.split(maxsplit=2)
    assert (flag, heavy.strip()) == ("-m", "[]")
    # `python -m <module>` runs the worker's entry point.
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    assert 'if __name__ == "__main__":\n    main()' in Path(spec.origin).read_text()


def test_plans_and_commands(tmp_path: Path) -> None:
    cpu = RunConfig.from_dict({"device": "cpu", "distributed": {"strategy": "ddp", "num_processes": 2}})
    plan = plan_launch(cpu, gpus=0, environ={})
    assert (plan.world_size, plan.device, plan.dist_backend) == (2, "cpu", "gloo")
    pin = RowsPin(path="data/train.jsonl", sha256="0" * 64, count=3)
    worker = worker_arguments(tmp_path / "c.yaml", tmp_path, pin)
    cmd = torchrun_command(plan, None, worker)
    assert cmd[3:6] == ["--nproc-per-node=2", "--standalone", "--max-restarts=0"]
    assert cmd[-6:-4] == ["--config", str(tmp_path / "c.yaml")] and cmd[-2:] == [
        "--train-rows",
        pin.model_dump_json(),
    ]
    multi_cfg = cfg(num_gpus=8, nnodes="2:4", rdzv_endpoint="10.0.0.1:29400", rdzv_id="job-7", max_restarts=3)
    gpu = plan_launch(multi_cfg, gpus=8, environ={})
    assert (gpu.world_size, gpu.min_nodes, gpu.max_nodes, gpu.dist_backend) == (32, 2, 4, "nccl")
    rdzv = resolve_rendezvous(multi_cfg.distributed, "run-1", gpu.job)
    multi = torchrun_command(gpu, rdzv, worker)
    assert multi[3:10] == [
        "--nproc-per-node=8",
        "--nnodes=2:4",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=10.0.0.1:29400",
        "--rdzv-id=job-7",
        "--rdzv-conf=join_timeout=600",
        "--max-restarts=3",
    ]
    assert "--standalone" not in multi and not any(a.startswith(("--master", "--node-rank")) for a in multi)


def test_deprecated_fields_map_onto_the_rendezvous() -> None:
    legacy = cfg(num_gpus=8, num_nodes=2, master_addr="10.0.0.1")
    plan = plan_launch(legacy, gpus=8, environ={})
    rdzv = resolve_rendezvous(legacy.distributed, "abc", plan.job)
    assert plan.world_size == 16 and rdzv is not None
    assert (rdzv.nnodes, rdzv.endpoint, rdzv.rdzv_id) == ("2", "10.0.0.1:29500", "provenir-abc")
    assert deprecation_lines(legacy) == [
        "distributed.num_nodes is deprecated: use distributed.nnodes (removed in the next release)",
        "distributed.master_addr is deprecated: use distributed.rdzv_endpoint (host:port) "
        "(removed in the next release)",
    ]
    with pytest.raises(ConfigError, match="node_rank: 1: only the first node runs `provenir train`"):
        plan_launch(cfg(num_gpus=8, num_nodes=2, node_rank=1, master_addr="10.0.0.1"), gpus=8, environ={})


def test_a_non_first_scheduler_node_is_told_to_join() -> None:
    slurm = {"SLURM_JOB_ID": "41", "SLURM_NNODES": "2", "SLURM_NODEID": "1", "SLURM_JOB_NODELIST": "n[1-2]"}
    with pytest.raises(ConfigError, match="this is node 1 of the slurm job: .*provenir.train.join"):
        plan_launch(cfg(num_gpus=8), gpus=8, environ=slurm)
    joining = plan_launch(cfg(num_gpus=8), gpus=8, environ=slurm, joining=True)
    assert joining.world_size == 16 and joining.job is not None and joining.job.first_host == "n1"


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


#: A small CPU job; every slow test here trains it (distributed differently).
JOB = {
    "device": "cpu",
    "max_steps": 2,
    "batch_size": 4,
    "gradient_checkpointing": False,
    "data": {"max_samples": 16},
}


@pytest.fixture(scope="module")
def one_node_two_processes(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> RunManifest:
    """The job on one node of two processes (standalone rendezvous), trained once for the module."""
    output = tmp_path_factory.mktemp("one-node") / "artifacts"
    config = {**JOB, "output_dir": str(output), "distributed": {"strategy": "ddp", "num_processes": 2}}
    return train(RunConfig.from_dict(config))


@pytest.mark.slow
def test_two_process_ddp_on_cpu_is_real_and_repeatable(
    tmp_path: Path, one_node_two_processes: RunManifest
) -> None:
    first = one_node_two_processes
    second = train(RunConfig.from_dict(first.config | {"output_dir": str(tmp_path / "artifacts")}))
    assert first.status == second.status == "completed"
    assert first.extra["world_size"] == 2  # what torch.distributed reported on rank 0, not the request
    assert first.adapter_hash is not None and first.adapter_hash == second.adapter_hash
    ran = first.distributed
    assert ran is not None and (ran.nodes, ran.world_size, ran.rendezvous, ran.nnodes) == (
        1,
        2,
        "standalone",
        "1",
    )
    assert [(r.rank, r.local_rank, r.group_rank) for r in ran.ranks] == [(0, 0, 0), (1, 1, 0)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_nodes_through_c10d_train_the_same_adapter_as_one_node_of_two(
    tmp_path: Path, one_node_two_processes: RunManifest
) -> None:
    two_nodes = RunConfig.from_dict(
        {
            **JOB,
            "output_dir": str(tmp_path / "nodes"),
            "distributed": {
                "strategy": "ddp",
                "num_processes": 1,
                "nnodes": 2,
                "rdzv_endpoint": f"127.0.0.1:{_free_port()}",
                "rdzv_join_timeout_s": 90,
            },
        }
    )
    run_id = new_run_id()
    run_dir = RunStore(two_nodes.output_dir).run_dir(run_id)
    # The second "node": another torchrun agent, joining the run folder node 0 writes (on a
    # cluster, the same command on another machine that shares the artifacts folder).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    joiner = subprocess.Popen(
        [sys.executable, "-m", "provenir.train.join", "--run-dir", str(run_dir), "--wait", "90"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        across_nodes = train(two_nodes, RunOptions(run_id=run_id))
        output, _ = joiner.communicate(timeout=60)
    finally:
        if joiner.poll() is None:
            joiner.kill()
    assert joiner.returncode == 0, output
    one_node = one_node_two_processes
    assert across_nodes.status == one_node.status == "completed"
    assert across_nodes.adapter_hash is not None and across_nodes.adapter_hash == one_node.adapter_hash

    ran = RunManifest.load(RunStore(two_nodes.output_dir).manifest_path(run_id)).distributed
    assert ran is not None and (ran.nodes, ran.world_size, ran.restarts) == (2, 2, 0)
    assert (ran.rendezvous, ran.nnodes, ran.rdzv_id, ran.dist_backend) == (
        "c10d",
        "2",
        f"provenir-{run_id}",
        "gloo",
    )
    assert [r.rank for r in ran.ranks] == [0, 1] and sorted(r.group_rank for r in ran.ranks) == [0, 1]
    assert {r.host for r in ran.ranks} == {socket.gethostname()}
    # Both ranks ran this interpreter and these packages on this CPU: one environment digest.
    assert ran.ranks[0].environment_sha256 == ran.ranks[1].environment_sha256
    assert ran.ranks[0].environment_sha256 == environment_digest(capture_environment())


def _record(rank: int, world_size: int, *, group_rank: int = 0, restarts: int = 0) -> RankRecord:
    return RankRecord(
        rank=rank,
        local_rank=0,
        group_rank=group_rank,
        world_size=world_size,
        host=f"node{group_rank}",
        restart_count=restarts,
        dist_backend="gloo",
        environment_sha256="e" * 64,
    )


def test_rank_records_are_gathered_for_the_final_world(tmp_path: Path) -> None:
    config = cfg(nnodes="1:3", rdzv_endpoint="head:29400")
    plan = plan_launch(config, gpus=0, environ={})
    rdzv = resolve_rendezvous(config.distributed, tmp_path.name, plan.job)
    # Rank 2 belongs to an earlier round of three nodes; the run finished on two after a restart.
    for record in (
        _record(0, 2, restarts=1),
        _record(1, 2, group_rank=1, restarts=1),
        _record(2, 3, group_rank=2),
    ):
        write_rank_record(tmp_path, record)
    ran = collect_run(tmp_path, config, plan, rdzv)
    assert (ran.nodes, ran.world_size, ran.restarts, ran.nnodes, ran.rendezvous) == (2, 2, 1, "1:3", "c10d")
    assert [r.host for r in ran.ranks] == ["node0", "node1"] and ran.rdzv_endpoint == "head:29400"
    rank_record_path(tmp_path, 1).unlink()
    with pytest.raises(BackendError, match="rank 1 left no record .*every node must see the same run folder"):
        collect_run(tmp_path, config, plan, rdzv)


def test_a_rank_reports_what_torchrun_gave_it() -> None:
    from provenir.train.worker import this_rank

    env = {
        "RANK": "5",
        "LOCAL_RANK": "1",
        "GROUP_RANK": "2",
        "WORLD_SIZE": "8",
        "TORCHELASTIC_RESTART_COUNT": "3",
    }
    record = this_rank("f" * 64, env)
    assert (record.rank, record.local_rank, record.group_rank, record.world_size) == (5, 1, 2, 8)
    assert record.restart_count == 3 and record.host == socket.gethostname()
    assert record.dist_backend is None  # no process group in this test process
    alone = this_rank("f" * 64, {})
    assert (alone.rank, alone.world_size, alone.restart_count) == (0, 1, 0)
