"""PII and secret scanning of one file over shards: the same findings whichever executor runs it.

A JSON Lines file is cut into byte ranges that end at a line break (each shard reads only its
own bytes, so the driver never parses the file); a JSON or CSV file is read by the driver and
cut into runs of rows. Each shard is scanned by :func:`provenir.governance.scanners.scan_dataset`
with row numbers counted from the shard's start; the driver adds each shard's first row number,
in shard order, so the merged report lists exactly what a single-process scan lists, in the
same order. A bad line is reported with its line number in the file, as the local scan does::

    from provenir.scale.executor import open_executor
    from provenir.scale.scan import scan_file

    with open_executor(ExecutorConfig(executor="ray")) as ex:
        summary = scan_file("data.jsonl", executor=ex, findings="findings.jsonl")
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from provenir.core.errors import DataError, ProvenirError
from provenir.core.jsonl import json_objects, parse_json_lines
from provenir.governance.findings import Finding
from provenir.governance.scanners import ScanSummary, SecretReport, scan_dataset
from provenir.scale.executor import Executor

#: Largest byte range one task scans (a shard is also at most a quarter of a worker's share).
MAX_SHARD_BYTES = 8 << 20
MIN_SHARD_BYTES = 4 << 10
#: Rows per shard of a JSON or CSV file (read by the driver).
ROWS_PER_SHARD = 2000


@dataclass(frozen=True)
class ByteShard:
    """Bytes ``[start, end)`` of a JSON Lines file; its first line is line ``first_line``."""

    path: str
    start: int
    end: int
    first_line: int


@dataclass(frozen=True)
class RowShard:
    """Rows already read by the driver (JSON, CSV)."""

    rows: list[dict[str, Any]]


@dataclass
class ShardFindings:
    """What one shard held: its row count and findings, row numbers counted from the shard's start."""

    rows: int
    pii: list[Finding] = field(default_factory=list)
    secrets: list[Finding] = field(default_factory=list)
    error: str | None = None


def plan_shards(path: str | os.PathLike[str], workers: int) -> list[ByteShard] | list[RowShard]:
    """Cut ``path`` into shards: about four per worker, none above :data:`MAX_SHARD_BYTES`."""
    from provenir.governance.dataset_rows import iter_rows

    target = Path(path)
    if not target.is_file():
        raise DataError(f"dataset file not found: {target}")
    if target.suffix.lower() != ".jsonl":
        rows = [dict(r) for _, r in iter_rows(str(target))]
        size = max(1, min(ROWS_PER_SHARD, math.ceil(len(rows) / (4 * workers)) or 1))
        return [RowShard(rows[i : i + size]) for i in range(0, len(rows), size)] or [RowShard([])]
    total = target.stat().st_size
    width = max(MIN_SHARD_BYTES, min(MAX_SHARD_BYTES, math.ceil(total / (4 * workers))))
    shards: list[ByteShard] = []
    start, line = 0, 1
    with target.open("rb") as fh:
        while start < total or not shards:
            fh.seek(start)
            data = fh.read(width)
            rest = fh.readline() if len(data) == width and not data.endswith(b"\n") else b""
            end = start + len(data) + len(rest)
            shards.append(ByteShard(str(target), start, end, line))
            line += data.count(b"\n") + rest.count(b"\n")
            start = end
            if not data:
                break
    return shards


def scan_shard(
    shard: ByteShard | RowShard, *, pii: bool, secrets: bool, default_region: str
) -> ShardFindings:
    """Scan one shard; a Provenir error comes back as text (a task's traceback would hide it)."""
    try:
        rows = _shard_rows(shard) if isinstance(shard, ByteShard) else shard.rows
        summary = scan_dataset(rows, pii=pii, secrets=secrets, default_region=default_region)
    except ProvenirError as exc:
        return ShardFindings(0, error=str(exc))
    return ShardFindings(
        summary.rows_scanned,
        summary.pii.findings if summary.pii is not None else [],
        summary.secrets.findings if summary.secrets is not None else [],
    )


def scan_file(
    dataset: str | os.PathLike[str],
    *,
    executor: Executor,
    mask: str | os.PathLike[str] | None = None,
    pii: bool = True,
    secrets: bool = True,
    default_region: str = "US",
    audit_dir: str | os.PathLike[str] | None = None,
    findings: str | os.PathLike[str] | None = None,
) -> ScanSummary:
    """:func:`provenir.governance.scanners.scan_file`, its scan run by ``executor`` over shards.

    The local executor scans in this process exactly as before; any other scans shards in
    parallel and merges them into the same summary. The masked copy (``mask``) and the audit
    event are written by this process in both cases; a non-local scan's event also records
    where it ran (``executor``: :meth:`~provenir.scale.executor.Executor.record`).
    """
    from provenir.governance import scanners

    summary = None
    where = None
    if executor.name != "local":
        summary = sharded_scan(dataset, executor, pii=pii, secrets=secrets, default_region=default_region)
        if audit_dir is not None:
            where = executor.record().to_dict()
    return scanners.scan_file(
        dataset,
        mask=mask,
        pii=pii,
        secrets=secrets,
        default_region=default_region,
        audit_dir=audit_dir,
        findings=findings,
        summary=summary,
        executor=where,
    )


def sharded_scan(
    dataset: str | os.PathLike[str],
    executor: Executor,
    *,
    pii: bool = True,
    secrets: bool = True,
    default_region: str = "US",
) -> ScanSummary:
    """Scan ``dataset`` shard by shard on ``executor`` and merge, in shard order."""
    from provenir.core.errors import GovernanceError
    from provenir.governance.pii import PIIReport

    if not (pii or secrets):
        raise GovernanceError("nothing to scan: enable PII and/or secret scanning")
    shards = plan_shards(dataset, executor.workers)
    task = partial(scan_shard, pii=pii, secrets=secrets, default_region=default_region)
    results = executor.map_ordered(task, shards, stage="scan")
    pii_report = PIIReport() if pii else None
    secret_report = SecretReport() if secrets else None
    offset = 0
    for result in results:
        if result.error is not None:
            raise DataError(result.error)
        if pii_report is not None:
            pii_report.findings.extend(_shifted(result.pii, offset))
        if secret_report is not None:
            secret_report.findings.extend(_shifted(result.secrets, offset))
        offset += result.rows
    for report in (pii_report, secret_report):
        if report is not None:
            report.rows_scanned = offset
    return ScanSummary(offset, pii_report, secret_report)


def _shifted(findings: list[Finding], offset: int) -> list[Finding]:
    return [Finding(f.type, f.start, f.end, f.field, (f.row or 0) + offset) for f in findings]


def _shard_rows(shard: ByteShard) -> list[dict[str, Any]]:
    """The objects of a shard's lines, with the same checks and messages as the local reader."""
    with open(shard.path, "rb") as fh:
        fh.seek(shard.start)
        data = fh.read(shard.end - shard.start)
    numbered = parse_json_lines(data.split(b"\n"), source=shard.path, first_line=shard.first_line)
    return list(json_objects(numbered, source=shard.path))
