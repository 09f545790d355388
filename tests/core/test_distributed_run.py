"""The manifest's typed `distributed` section: sealed when present, absent (old hashes intact) when not."""

from __future__ import annotations

import json
from pathlib import Path

from provenir.core.distributed_run import DistributedRun, RankRecord
from provenir.core.manifest import RunManifest


def manifest() -> RunManifest:
    return RunManifest(
        name="r", backend="trl", algorithm="sft", config_hash="c", dataset_hash="d", seed=1, config={}
    )


def ranks() -> DistributedRun:
    records = [
        RankRecord(
            rank=r,
            local_rank=0,
            group_rank=r,
            world_size=2,
            host=f"gpu0{r + 7}",
            restart_count=0,
            dist_backend="nccl",
            environment_sha256=str(r) * 64,
        )
        for r in range(2)
    ]
    return DistributedRun(
        nodes=2,
        world_size=2,
        restarts=0,
        strategy="ddp",
        dist_backend="nccl",
        rendezvous="c10d",
        nnodes="2",
        rdzv_endpoint="gpu07:29400",
        rdzv_id="812",
        scheduler="slurm",
        ranks=records,
    )


def test_runs_without_it_keep_their_bytes_and_hash(tmp_path: Path) -> None:
    single = manifest().seal()
    assert "distributed" not in json.loads(single.to_json())
    # What a Provenir without the field wrote verifies unchanged.
    body = single.body()
    assert "distributed" not in body and single.manifest_hash == single.compute_hash()
    path = single.save(tmp_path / "m.json")
    loaded, raw = RunManifest.load_with_text(path)
    assert loaded.distributed is None and loaded.check(raw=raw).ok


def test_a_distributed_run_is_sealed_and_tamper_evident(tmp_path: Path) -> None:
    m = manifest()
    m.distributed = ranks()
    path = m.seal().save(tmp_path / "m.json")
    loaded, raw = RunManifest.load_with_text(path)
    assert loaded.distributed == ranks() and loaded.check(raw=raw).ok
    data = json.loads(raw)
    data["distributed"]["ranks"][1]["host"] = "elsewhere"
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    forged, raw = RunManifest.load_with_text(path)
    assert "a field was changed" in "; ".join(forged.check(raw=raw).problems)
