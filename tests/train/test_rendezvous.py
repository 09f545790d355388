"""Where nodes meet: Slurm host lists, the scheduler mapping, and config-over-environment precedence."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from provenir.core.config import DistributedConfig
from provenir.core.errors import ConfigError
from provenir.train.rendezvous import (
    Rendezvous,
    SchedulerJob,
    expand_slurm_nodelist,
    resolve_nodes,
    resolve_rendezvous,
    scheduler_job,
    slurm_hostnames,
)

SLURM = {
    "SLURM_JOB_ID": "812",
    "SLURM_NNODES": "4",
    "SLURM_NODEID": "0",
    "SLURM_PROCID": "0",
    "SLURM_JOB_NODELIST": "gpu[07-09,12],login1",
}
SKYPILOT = {
    "SKYPILOT_NUM_NODES": "2",
    "SKYPILOT_NODE_RANK": "1",
    "SKYPILOT_NODE_IPS": "10.1.0.4\n10.1.0.5\n",
    "SKYPILOT_TASK_ID": "sky-2024-05-01-10-00-00-123456_my cluster_1",
}


@pytest.mark.parametrize(
    ("nodelist", "hosts"),
    [
        ("node01", ["node01"]),
        ("node[01-04]", ["node01", "node02", "node03", "node04"]),
        ("node[1,3-5]", ["node1", "node3", "node4", "node5"]),
        ("node[008-011]", ["node008", "node009", "node010", "node011"]),
        ("a[1-2],b7,c[3]", ["a1", "a2", "b7", "c3"]),
        ("rack[1-2]-gpu[1-2]", ["rack1-gpu1", "rack1-gpu2", "rack2-gpu1", "rack2-gpu2"]),
        ("gpu-[9-10].ib", ["gpu-9.ib", "gpu-10.ib"]),
        (" x1 , x2 ", ["x1", "x2"]),
    ],
)
def test_slurm_host_lists_expand_as_scontrol_does(nodelist: str, hosts: list[str]) -> None:
    assert expand_slurm_nodelist(nodelist) == hosts


@pytest.mark.parametrize("bad", ["node[01-", "node[a-b]", "node01]", "n[1-]"])
def test_malformed_host_lists_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        expand_slurm_nodelist(bad)


@pytest.mark.skipif(shutil.which("scontrol") is None, reason="Slurm's scontrol is not installed here")
def test_parser_agrees_with_scontrol() -> None:
    nodelist = "node[01-03,7],gpu[1-2]-ib"
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True)
    assert expand_slurm_nodelist(nodelist) == out.stdout.split() == slurm_hostnames(nodelist)


@pytest.mark.skipif(shutil.which("scontrol") is not None, reason="scontrol is installed here")
def test_without_scontrol_the_parser_expands() -> None:
    assert slurm_hostnames("node[01-02]") == ["node01", "node02"]


def test_slurm_environment_maps_to_a_job() -> None:
    assert scheduler_job(SLURM) == SchedulerJob(
        "slurm", nnodes=4, node_rank=0, job_id="812", first_host="gpu07"
    )
    # SLURM_PROCID stands in for SLURM_NODEID (one task per node); SLURM_NODELIST for the job's list.
    older = {"SLURM_JOB_ID": "9", "SLURM_JOB_NUM_NODES": "2", "SLURM_PROCID": "1", "SLURM_NODELIST": "n[3-4]"}
    assert scheduler_job(older) == SchedulerJob("slurm", nnodes=2, node_rank=1, job_id="9", first_host="n3")
    # The expansion is injectable: scontrol where Slurm is installed.
    assert scheduler_job(SLURM, lambda nodelist: ["from-scontrol"]).first_host == "from-scontrol"  # type: ignore[union-attr]


def test_skypilot_environment_maps_to_a_job() -> None:
    job = scheduler_job(SKYPILOT)
    assert job == SchedulerJob(
        "skypilot",
        nnodes=2,
        node_rank=1,
        job_id="sky-2024-05-01-10-00-00-123456_my-cluster_1",  # made safe for a torchrun argument
        first_host="10.1.0.4",
    )


def test_no_scheduler_and_bad_values() -> None:
    assert scheduler_job({}) is None
    assert scheduler_job({"PATH": "/usr/bin", "SLURM_CONF": "/etc/slurm.conf"}) is None
    with pytest.raises(ConfigError, match=r"\$SLURM_NNODES is 'four'"):
        scheduler_job({**SLURM, "SLURM_NNODES": "four"})
    with pytest.raises(ConfigError, match=r"\$SLURM_JOB_NODELIST 'gpu\[1-': "):
        scheduler_job({**SLURM, "SLURM_JOB_NODELIST": "gpu[1-"})


def ddp(**fields: object) -> DistributedConfig:
    return DistributedConfig.model_validate({"strategy": "ddp", **fields})


def test_the_environment_fills_what_the_config_leaves_unset() -> None:
    rdzv = resolve_rendezvous(ddp(), "run-1", scheduler_job(SLURM))
    assert rdzv == Rendezvous("c10d", "gpu07:29400", "812", "4", 600)
    sky = resolve_rendezvous(ddp(), "run-1", scheduler_job(SKYPILOT))
    assert sky is not None and (sky.endpoint, sky.nnodes) == ("10.1.0.4:29400", "2")


def test_explicit_config_wins_over_the_environment() -> None:
    config = ddp(nnodes="2:8", rdzv_endpoint="head:1234", rdzv_id="mine", rdzv_join_timeout_s=30)
    assert resolve_rendezvous(config, "run-1", scheduler_job(SLURM)) == Rendezvous(
        "c10d", "head:1234", "mine", "2:8", 30
    )
    # A config that says one node trains on one node, whatever the allocation.
    assert resolve_rendezvous(ddp(nnodes=1), "run-1", scheduler_job(SLURM)) is None
    assert resolve_nodes(ddp(num_nodes=3), scheduler_job(SLURM)) == (3, 3)


def test_defaults_without_a_scheduler() -> None:
    assert resolve_rendezvous(ddp(), "run-1", None) is None  # one node: --standalone
    assert resolve_nodes(ddp(), None) == (1, 1)
    # The id defaults to the run's: two runs at the same endpoint never join each other.
    one = resolve_rendezvous(ddp(nnodes=2, rdzv_endpoint="h:1"), "run-1", None)
    two = resolve_rendezvous(ddp(nnodes=2, rdzv_endpoint="h:1"), "run-2", None)
    assert (
        one is not None
        and two is not None
        and (one.rdzv_id, two.rdzv_id) == ("provenir-run-1", "provenir-run-2")
    )
    # One node with an explicit endpoint still meets there (c10d, e.g. to allow restarts).
    assert resolve_rendezvous(ddp(rdzv_endpoint="h:1"), "r", None) == Rendezvous(
        "c10d", "h:1", "provenir-r", "1", 600
    )
    with pytest.raises(ConfigError, match="2 nodes need a meeting point: set distributed.rdzv_endpoint"):
        resolve_rendezvous(ddp(nnodes=2), "run-1", None)


def test_ipv6_hosts_are_bracketed() -> None:
    job = SchedulerJob("skypilot", nnodes=2, node_rank=0, job_id="t", first_host="fd00::4")
    assert resolve_rendezvous(ddp(), "r", job).endpoint == "[fd00::4]:29400"  # type: ignore[union-attr]
    legacy = resolve_rendezvous(ddp(num_nodes=2, master_addr="fd00::5"), "r", None)
    assert legacy is not None and legacy.endpoint == "[fd00::5]:29500"


def test_torchrun_arguments() -> None:
    assert Rendezvous("c10d", "gpu07:29400", "812", "1:4", 120).torchrun_args() == [
        "--nnodes=1:4",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=gpu07:29400",
        "--rdzv-id=812",
        "--rdzv-conf=join_timeout=120",
    ]
