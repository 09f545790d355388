"""The distributed section: node counts, rendezvous fields, deprecated fields, and config_hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenir.core.config import RunConfig, parse_endpoint, parse_nnodes
from provenir.core.errors import ConfigError
from provenir.core.yaml_loading import load_yaml

NEW_FIELDS = ("nnodes", "rdzv_endpoint", "rdzv_id", "rdzv_backend", "rdzv_join_timeout_s", "max_restarts")


def dist(**fields: object) -> RunConfig:
    return RunConfig.from_dict({"distributed": {"strategy": "ddp", **fields}})


def test_node_counts_and_endpoints_parse() -> None:
    assert parse_nnodes(2) == (2, 2) and parse_nnodes("3") == (3, 3) and parse_nnodes("1:4") == (1, 4)
    assert parse_endpoint("10.0.0.1:29400") == ("10.0.0.1", 29400)
    assert parse_endpoint("[fd00::1]:29400") == ("fd00::1", 29400)
    assert dist(nnodes="2:8").distributed.max_nodes == 8
    assert dist(num_nodes=3).distributed.max_nodes == 3


def test_an_elastic_range_in_yaml_is_not_a_base_60_number(tmp_path: Path) -> None:
    # YAML 1.1 reads 1:4 as 64; a config means the range.
    path = tmp_path / "job.yaml"
    path.write_text("distributed:\n  strategy: ddp\n  nnodes: 1:4\n", encoding="utf-8")
    assert RunConfig.from_yaml(path).distributed.nnodes == "1:4"
    assert RunConfig.from_yaml(path, ["distributed.nnodes=2:3"]).distributed.nnodes == "2:3"
    assert load_yaml("a: 3\nb: 1.5\nc: 0x10\nd: 1:30.5\ne: 1_000") == {
        "a": 3,
        "b": 1.5,
        "c": 16,
        "d": "1:30.5",
        "e": 1000,
    }
    # Written back, the range is quoted, so the file reads the same with any YAML loader.
    config = RunConfig.from_yaml(path)
    again = tmp_path / "again.yaml"
    config.to_yaml(again)
    assert "nnodes: '1:4'" in again.read_text(encoding="utf-8")
    assert RunConfig.from_yaml(again).config_hash() == config.config_hash()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"nnodes": "4:2"}, "distributed.nnodes: MIN is larger than MAX (got '4:2')"),
        ({"nnodes": "two"}, "distributed.nnodes: expected a number of nodes or MIN:MAX, like 2 or 1:4"),
        ({"nnodes": 0}, "distributed.nnodes: must be >= 1 (got 0)"),
        ({"rdzv_endpoint": "head"}, "distributed.rdzv_endpoint: expected host:port, like 10.0.0.1:29400"),
        ({"rdzv_endpoint": "head:99999"}, "distributed.rdzv_endpoint: expected host:port"),
        ({"rdzv_id": "my job"}, "distributed.rdzv_id: use letters, digits and . _ : -"),
        ({"max_restarts": -1}, "distributed.max_restarts: must be >= 0"),
        ({"nnodes": 2, "num_nodes": 3}, "nnodes 2 and the deprecated num_nodes 3 disagree; set only nnodes"),
        (
            {"rdzv_endpoint": "h:1", "master_addr": "10.0.0.1"},
            "rdzv_endpoint and the deprecated master_addr/master_port are both set; keep rdzv_endpoint only",
        ),
        ({"strategy": "none", "nnodes": 2}, "training on several nodes needs a strategy"),
    ],
)
def test_contradictions_are_one_clear_error(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="^[^\n]+$") as err:
        dist(**fields)
    assert message in str(err.value)


def test_consistent_old_and_new_fields_are_accepted() -> None:
    config = dist(nnodes=2, num_nodes=2)
    assert config.distributed.deprecated_fields() == ["num_nodes"]
    assert dist(master_port=29600, node_rank=1).distributed.deprecated_fields() == [
        "node_rank",
        "master_port",
    ]
    assert dist().distributed.deprecated_fields() == []


def test_config_hash_covers_what_trains_not_where_nodes_meet() -> None:
    base = dist(nnodes=2, rdzv_endpoint="head:29400")
    moved = dist(nnodes=2, rdzv_endpoint="other:1", rdzv_id="job-9", max_restarts=3, rdzv_join_timeout_s=5)
    assert base.config_hash() == moved.config_hash()
    assert base.config_hash() != dist(nnodes=4, rdzv_endpoint="head:29400").config_hash()
    assert dist().config_hash() != dist(nnodes=2, rdzv_endpoint="h:1").config_hash()


def test_unset_rendezvous_fields_leave_the_dump_and_hash_as_before() -> None:
    # A config written before these fields existed resolves to the same dump, hence the same hash.
    dumped = RunConfig().model_dump(mode="json")
    assert not set(NEW_FIELDS) & set(dumped["distributed"])
    explicit_defaults = {
        "nnodes": None,
        "rdzv_backend": "c10d",
        "rdzv_join_timeout_s": 600,
        "max_restarts": 0,
    }
    with_defaults = RunConfig.from_dict({"distributed": explicit_defaults})
    assert with_defaults.config_hash() == RunConfig().config_hash()
    set_fields = dist(nnodes="1:2", rdzv_id="x").model_dump(mode="json")["distributed"]
    assert (set_fields["nnodes"], set_fields["rdzv_id"]) == ("1:2", "x")
