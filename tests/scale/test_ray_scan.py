"""``executor: ray`` scans give the local scan's bytes, also when a worker dies mid-scan."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import ExecutorConfig
from provenir.governance.scanners import scan_file as local_scan_file
from provenir.scale.executor import open_executor
from provenir.scale.scan import plan_shards, scan_file
from provenir.testing.cli import run_cli

pytestmark = pytest.mark.usefixtures("ray_cluster")

RAY = ExecutorConfig.from_dict({"executor": "ray", "ray": {"num_workers": 2, "max_retries": 2}})


class _ExitOnFirstAttempt:
    """Runs ``fn``, except that the first task to arrive kills its worker process (marker file)."""

    def __init__(self, fn: Callable[[Any], Any], marker: Path) -> None:
        self.fn, self.marker = fn, marker

    def __call__(self, item: Any) -> Any:
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return self.fn(item)
        os._exit(1)  # the worker dies mid-scan, as a killed or OOM-killed process would


class _KillOneWorker:
    """The real Ray executor, with one task's worker killed on its first attempt."""

    def __init__(self, inner: Any, marker: Path) -> None:
        self.inner, self.marker = inner, marker
        self.name, self.workers = inner.name, inner.workers

    def map_ordered(self, fn: Callable[[Any], Any], items: Sequence[Any], *, stage: str) -> list[Any]:
        return self.inner.map_ordered(_ExitOnFirstAttempt(fn, self.marker), items, stage=stage)

    def record(self) -> Any:
        return self.inner.record()


def _scanned_event(audit_dir: Path) -> dict[str, Any]:
    """The fields of the one ``dataset_scanned`` event in ``audit_dir``."""
    lines = (audit_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    (event,) = [json.loads(line) for line in lines if json.loads(line)["event"] == "dataset_scanned"]
    return dict(event["fields"])


def test_ray_scan_writes_the_local_findings_and_summary(corpus: Path, tmp_path: Path, capsys) -> None:
    assert len(plan_shards(corpus, 2)) > 2  # really sharded
    local_args = ["scan", str(corpus), "--findings", str(tmp_path / "local.jsonl"), "--json"]
    assert run_cli([*local_args, "--audit-dir", str(tmp_path / "audit-local")]) == 0
    local = json.loads(capsys.readouterr().out)
    args = ["scan", str(corpus), "--findings", str(tmp_path / "ray.jsonl"), "--json", "--executor", "ray"]
    assert run_cli([*args, "--audit-dir", str(tmp_path / "audit-ray")]) == 0
    remote = json.loads(capsys.readouterr().out)
    executor = remote.pop("executor")
    assert remote == local
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert local["pii"]["counts"]["EMAIL"] > 0 and local["secrets"]["counts"]
    assert executor["executor"] == "ray" and executor["ray_version"] and executor["cluster"]["cpus"] == 2.0

    # The audit event: a local scan's has the form it always had; a Ray scan's adds where it ran.
    local_event, ray_event = _scanned_event(tmp_path / "audit-local"), _scanned_event(tmp_path / "audit-ray")
    assert sorted(local_event) == [
        "dataset",
        "has_pii",
        "has_secrets",
        "masked_to",
        "pii_counts",
        "secret_counts",
    ]
    where = ray_event.pop("executor")
    assert ray_event == local_event
    assert where["executor"] == "ray" and where["ray_version"] == executor["ray_version"]
    assert where["workers"] == 2 and where["retries"] == {} and where["retried_total"] == 0


def test_a_worker_killed_mid_scan_is_retried_and_the_result_is_unchanged(
    corpus: Path, tmp_path: Path
) -> None:
    local = local_scan_file(corpus, findings=tmp_path / "local.jsonl")
    marker = tmp_path / "killed"
    with open_executor(RAY) as ray_executor:
        faulty = _KillOneWorker(ray_executor, marker)
        remote = scan_file(  # type: ignore[arg-type]
            corpus, executor=faulty, findings=tmp_path / "ray.jsonl", audit_dir=tmp_path / "audit"
        )
        record = ray_executor.record()
    assert marker.exists()  # a worker did die
    assert remote.to_dict(max_findings=10**6) == local.to_dict(max_findings=10**6)
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert sum(record.retries.values()) == 1 and all(k.startswith("scan:") for k in record.retries)
    where = _scanned_event(tmp_path / "audit")["executor"]  # the audit record names the retried shard
    assert where["retries"] == record.retries and where["retried_total"] == 1
