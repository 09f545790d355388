"""REST API latency: p50/p99 of GET /runs and GET /audit on a generated store.

Generates 10,000 sealed run manifests and a valid 1,000,000-record audit hash chain (written
directly in the exact format :class:`provenir.governance.audit.AuditLogger` writes; the first
records are cross-checked against the library's canonical JSON, and ``--verify`` walks the whole
chain with ``AuditLogger.check``), starts the real app under uvicorn on a loopback port and times
sequential requests over one keep-alive connection.

    python bench/api.py [--runs 10000] [--audit-records 1000000] [--requests 200] [--verify]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from provenir.api.app import create_app
from provenir.api.run_index import encode_cursor
from provenir.api.server import BackgroundServer
from provenir.api.settings import ApiSettings
from provenir.core.hashing import canonical_json
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.governance.audit import GENESIS_HASH, LOG_NAME, AuditLogger

TOKEN = "bench-token-0123456789abcdef"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
EVENTS = ("training_start", "training_complete", "eval_complete")


def run_id_for(i: int) -> str:
    return str(uuid.UUID(int=i + 1, version=4))


def make_runs(artifacts: Path, n: int) -> None:
    for i in range(n):
        m = RunManifest(
            run_id=run_id_for(i),
            name=f"run-{i % 10}",
            status=("completed", "failed", "running")[i % 3],
            backend="stub",
            algorithm="sft",
            config_hash="c" * 64,
            dataset_hash="d" * 64,
            seed=i,
            config={"name": f"run-{i % 10}"},
            timestamp=(T0 + timedelta(seconds=i)).isoformat(),
            metrics={"train_loss": 1.0 / (i + 1)},
        ).seal()
        path = RunStore(artifacts).manifest_path(m.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(m.to_json())  # not atomic: nobody reads while we generate


def _canonical(obj: dict) -> bytes:
    # Equal to RFC 8785 for these records (ASCII strings, small integers); checked below.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_audit_log(audit_dir: Path, n: int, runs: int) -> None:
    audit_dir.mkdir(parents=True, exist_ok=True)
    prev = GENESIS_HASH
    base_us = int(T0.timestamp() * 1_000_000)
    with (audit_dir / LOG_NAME).open("wb") as fh:
        buf: list[bytes] = []
        for seq in range(1, n + 1):
            ts = datetime.fromtimestamp((base_us + seq * 1000) / 1e6, UTC).isoformat(timespec="microseconds")
            body = {
                "actor": ("ci-bot", "alice", "bob")[seq % 3],
                "event": EVENTS[seq % 3],
                "fields": {"step": seq},
                "prev_hash": prev,
                "run_id": run_id_for(seq % runs) if seq % 100 else None,
                "seq": seq,
                "timestamp": ts,
            }
            digest = hashlib.sha256(_canonical(body)).hexdigest()
            body["hash"] = digest
            line = _canonical(body)
            if seq <= 100:
                assert line == canonical_json(body), "synthetic record differs from RFC 8785"
            buf.append(line + b"\n")
            prev = digest
            if len(buf) == 10_000:
                fh.write(b"".join(buf))
                buf.clear()
        fh.write(b"".join(buf))


def timed(client: httpx.Client, url: str, params: dict, repeats: int) -> tuple[float, float, int]:
    for _ in range(5):
        client.get(url, params=params).raise_for_status()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        r = client.get(url, params=params)
        samples.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(round(0.99 * (len(samples) - 1))))]
    return statistics.median(samples), p99, len(r.content)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--audit-records", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per scenario")
    parser.add_argument("--verify", action="store_true", help="also walk the generated chain (slow)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        artifacts = Path(tmp) / "artifacts"
        t = time.perf_counter()
        make_runs(artifacts, args.runs)
        print(f"generated {args.runs} manifests in {time.perf_counter() - t:.1f}s")
        t = time.perf_counter()
        make_audit_log(artifacts / "audit", args.audit_records, args.runs)
        size = (artifacts / "audit" / LOG_NAME).stat().st_size / 1e6
        print(
            f"generated {args.audit_records} audit records ({size:.0f} MB) in {time.perf_counter() - t:.1f}s"
        )
        if args.verify:
            t = time.perf_counter()
            result = AuditLogger(artifacts / "audit").check()
            print(
                f"chain verified: ok={result.ok} records={result.records} in {time.perf_counter() - t:.1f}s"
            )
            assert result.ok, result.problems

        app = create_app(ApiSettings(output_dir=artifacts, token=TOKEN))
        t = time.perf_counter()
        with BackgroundServer(app) as server:  # startup builds the run index
            print(
                f"server up (cold run index build over {args.runs} manifests) in {time.perf_counter() - t:.1f}s"
            )
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=600
            ) as c:
                t = time.perf_counter()
                c.get("/audit", params={"limit": 1}).raise_for_status()
                print(f"first GET /audit (builds the audit sidecar index) in {time.perf_counter() - t:.1f}s")
                t = time.perf_counter()
                AuditLogger(artifacts / "audit").checkpoint()
                print(
                    f"tree head over the whole log (index current) in {(time.perf_counter() - t) * 1000:.1f} ms"
                )
                mid = args.runs // 2
                mid_row = {
                    "timestamp": (T0 + timedelta(seconds=mid)).isoformat(),
                    "run_id": run_id_for(mid),
                    "name": f"run-{mid % 10}",
                }
                deep_cursor = encode_cursor(mid_row)
                deep_by_name = encode_cursor(mid_row, sort="name", order="asc")
                rare_run = run_id_for(7)
                mid_ts = datetime.fromtimestamp(
                    (T0.timestamp() * 1e6 + args.audit_records // 2 * 1000) / 1e6, UTC
                ).isoformat()
                scenarios = [
                    ("/runs", {"limit": 50}, "first page"),
                    ("/runs", {"limit": 50, "cursor": deep_cursor}, f"page at run {mid}"),
                    ("/runs", {"limit": 50, "status": "failed"}, "status=failed"),
                    ("/runs", {"limit": 50, "name": "run-3", "cursor": deep_cursor}, "name=run-3, deep"),
                    (
                        "/runs",
                        {"limit": 50, "sort": "name", "order": "asc", "cursor": deep_by_name},
                        "sort=name, deep",
                    ),
                    ("/audit", {"limit": 50}, "newest page"),
                    ("/audit", {"limit": 50, "cursor": args.audit_records // 2}, "page at the middle"),
                    ("/audit", {"limit": 50, "event": "eval_complete"}, "event filter (1 in 3)"),
                    ("/audit", {"limit": 50, "since": mid_ts}, "since=middle (asc)"),
                    ("/audit", {"limit": 50, "run_id": rare_run}, "run_id filter (rare)"),
                    (f"/audit/proof/{args.audit_records // 2}", {}, "inclusion proof (middle)"),
                    ("/audit/checkpoint", {}, "latest tree head"),
                ]
                scenarios[7][1]["order"] = "asc"
                print(f"\n{'endpoint':<20} {'scenario':<24} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>8}")
                for path, params, label in scenarios:
                    repeats = args.requests if "rare" not in label else max(10, args.requests // 10)
                    p50, p99, nbytes = timed(c, path, params, repeats)
                    print(f"{path:<20} {label:<24} {p50:>8.2f} {p99:>8.2f} {nbytes:>8}")
                # What a listing costs right after a new run lands (incremental index refresh).
                make_runs_one = RunManifest(
                    name="late",
                    backend="stub",
                    algorithm="sft",
                    config_hash="c" * 64,
                    dataset_hash="d" * 64,
                    seed=0,
                    config={},
                ).seal()
                make_runs_one.save(RunStore(artifacts).manifest_path(make_runs_one.run_id))
                t = time.perf_counter()
                first = c.get("/runs", params={"limit": 1}).json()
                took = (time.perf_counter() - t) * 1000
                assert first["runs"][0]["run_id"] == make_runs_one.run_id
                print(f"\nGET /runs right after a new manifest (incremental rescan): {took:.1f} ms")


if __name__ == "__main__":
    main()
