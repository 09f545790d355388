"""RunIndex: an embedded SQLite index of run summaries, kept in step with the manifests folder.

Listing runs by parsing every manifest costs a second at 10,000 runs; the index makes
``GET /runs`` a single indexed query. It is a cache, never the truth: every row records the
``(mtime_ns, size)`` of the manifest file it came from, and :meth:`RunIndex.refresh` re-reads only
files whose pair changed, adds new ones and drops rows whose file is gone. A damaged or
out-of-date (schema version) index file is deleted and rebuilt.

When to re-scan: Provenir writes manifests atomically (temp file + rename), which changes the
folder's mtime, so a listing re-scans whenever the folder changed. Edits in place do not touch
the folder, so a full re-scan also happens at least every ``max_age_s`` seconds, and while the
folder's mtime is too recent to trust (a change in the same clock tick would be invisible).

::

    index = RunIndex("artifacts/index/runs.sqlite3", "artifacts/manifests")
    page = index.list(status="completed", limit=50)
    page.rows, page.next_cursor
    by_name = index.list(sort="name", order="asc")
    index.list(sort="name", order="asc", cursor=by_name.next_cursor)

Sorting happens in SQL: by start time (the default), name, algorithm or status, each with
``(timestamp, run_id)`` as tie-breakers in the same direction, so the order is total. A cursor
records the sort, the order and the last row's key; a cursor issued for one sort is refused by
another. Runs without a value to sort on (an unreadable manifest, an empty name or start time)
come after all the others in either direction.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenir.core.errors import ManifestError, ProvenirError
from provenir.core.manifest import RunManifest
from provenir.train.runs import summarize, unreadable_summary

logger = logging.getLogger(__name__)

# 2: indexes in one direction per sort key (sort by name, algorithm, status).
_SCHEMA_VERSION = 2
_MANIFEST_FILE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json$")
# A folder mtime this close to "now" may hide a second change in the same tick: re-scan fully.
_RACY_WINDOW_NS = 2_000_000_000
_COLUMNS = (
    "run_id",
    "name",
    "algorithm",
    "backend",
    "status",
    "timestamp",
    "adapter_hash",
    "provenance",
    "relation",
    "error",
    "mtime_ns",
    "size",
)
_DDL = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    backend TEXT NOT NULL,
    status TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    adapter_hash TEXT,
    provenance TEXT NOT NULL,
    relation TEXT,
    error TEXT,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (timestamp, run_id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, timestamp, run_id);
CREATE INDEX IF NOT EXISTS runs_by_name ON runs (name, timestamp, run_id);
CREATE INDEX IF NOT EXISTS runs_by_algorithm ON runs (algorithm, timestamp, run_id);
"""
#: Sort keys of :meth:`RunIndex.list`: the column each sorts on (``started`` is the start time).
SORT_COLUMNS = {"started": "timestamp", "name": "name", "algorithm": "algorithm", "status": "status"}
ORDERS = ("desc", "asc")
#: The columns a listing returns, in the order :meth:`RunIndex._as_dict` reads them.
_LISTED = "run_id, name, algorithm, backend, status, timestamp, adapter_hash, provenance, relation, error"
_CURSOR_HELP = "pass the next_cursor of a previous page"


class InvalidCursorError(ProvenirError):
    """A ``cursor`` that this index did not hand out (or that was altered)."""


@dataclass
class RunPage:
    """One page of :meth:`RunIndex.list`: summaries in the order asked for, the cursor of the next
    page (``None`` at the end) and how many runs match the filters in all."""

    rows: list[dict[str, Any]]
    next_cursor: str | None
    total: int


@dataclass(frozen=True)
class RunCursor:
    """What a cursor holds: the listing it continues and the sort key of that listing's last row.

    ``key`` is ``(value, timestamp, run_id)``, or ``(timestamp, run_id)`` for ``sort="started"``;
    ``missing`` says the row had no value to sort on (those rows come last).
    """

    sort: str
    order: str
    missing: bool
    key: tuple[str, ...]


def _is_missing(row: Mapping[str, Any], sort: str) -> bool:
    """Rows without a value to sort on: unreadable manifests (their fields are placeholders) and
    empty values."""
    return row.get("status") == "unreadable" or row[SORT_COLUMNS[sort]] == ""


def _sort_key(row: Mapping[str, Any], sort: str) -> tuple[str, ...]:
    tail = (row["timestamp"], row["run_id"])
    return tail if sort == "started" else (row[SORT_COLUMNS[sort]], *tail)


def encode_cursor(row: Mapping[str, Any], *, sort: str = "started", order: str = "desc") -> str:
    """Opaque keyset cursor that continues a listing (``sort``, ``order``) after ``row``: a run
    summary with at least ``run_id``, ``timestamp``, the sort column and ``status``."""
    value = [sort, order, int(_is_missing(row, sort)), *_sort_key(row, sort)]
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> RunCursor:
    """Inverse of :func:`encode_cursor`; :class:`InvalidCursorError` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: "[[[[..." nested deep
        raise InvalidCursorError(f"invalid cursor: {_CURSOR_HELP}") from None
    if not (isinstance(value, list) and len(value) in (5, 6)):
        raise InvalidCursorError(f"invalid cursor: {_CURSOR_HELP}")
    sort, order, missing, *key = value
    if (
        not isinstance(sort, str)
        or sort not in SORT_COLUMNS
        or order not in ORDERS
        or missing not in (0, 1)
        or isinstance(missing, bool)
        or len(key) != (2 if sort == "started" else 3)
        or not all(isinstance(v, str) for v in key)
    ):
        raise InvalidCursorError(f"invalid cursor: {_CURSOR_HELP}")
    return RunCursor(sort, order, bool(missing), tuple(key))


class RunIndex:
    """Run summaries from ``manifests_folder``, indexed in the SQLite file ``db_path``.

    Thread-safe: one connection guarded by a lock (queries take milliseconds). Several processes
    may share the file; SQLite's locking keeps it consistent and refreshes are idempotent.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        manifests_folder: str | os.PathLike[str],
        *,
        max_age_s: float = 5.0,
    ) -> None:
        self.db_path = Path(db_path)
        self.folder = Path(manifests_folder)
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._conn = self._open()
        self._last_dir_mtime_ns: int | None = None
        self._last_full_scan = float("-inf")

    # -- storage --------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect(str(self.db_path))
        except (OSError, sqlite3.Error) as exc:
            # A read-only artifacts folder must not stop the API from serving: index in memory.
            logger.warning("run index %s unusable (%s); keeping it in memory", self.db_path, exc)
            return self._connect(":memory:")
        return conn

    def _connect(self, target: str) -> sqlite3.Connection:
        conn = sqlite3.connect(target, check_same_thread=False, timeout=30.0)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "runs" in tables and version != _SCHEMA_VERSION:
                conn.execute("DROP TABLE runs")
            if target != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_DDL)
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            conn.commit()
        except sqlite3.DatabaseError:
            conn.close()
            if target == ":memory:":
                raise
            # Not a database (or corrupt): it is only a cache, so start it again.
            logger.warning("run index %s is damaged; rebuilding it", target)
            for suffix in ("", "-wal", "-shm"):
                Path(target + suffix).unlink(missing_ok=True)
            return self._connect(target)
        return conn

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    # -- refresh --------------------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> int:
        """Bring the index in step with the folder when it may have changed; returns rows changed.

        Cheap when nothing changed (one ``stat`` of the folder); a full scan is one ``stat`` per
        manifest plus a parse of each new or changed one.
        """
        try:
            dir_mtime = self.folder.stat().st_mtime_ns
        except FileNotFoundError:
            dir_mtime = None
        now = time.monotonic()
        if (
            not force
            and dir_mtime == self._last_dir_mtime_ns
            and now - self._last_full_scan < self.max_age_s
            and (dir_mtime is None or time.time_ns() - dir_mtime > _RACY_WINDOW_NS)
        ):
            return 0
        changed = self._scan()
        self._last_dir_mtime_ns = dir_mtime
        self._last_full_scan = now
        return changed

    def _scan(self) -> int:
        on_disk: dict[str, tuple[int, int, str]] = {}
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    if not _MANIFEST_FILE.match(entry.name):
                        continue  # temp files of atomic writes, stray files
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue  # removed while we listed
                    on_disk[entry.name[:-5]] = (st.st_mtime_ns, st.st_size, entry.path)
        except FileNotFoundError:
            pass
        with self._locked() as conn:
            known = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT run_id, mtime_ns, size FROM runs")}
        stale = [rid for rid in known if rid not in on_disk]
        todo = [(rid, v) for rid, v in on_disk.items() if known.get(rid) != (v[0], v[1])]
        # Parse outside the lock: the first build of a large index takes a while.
        rows = [self._row(rid, mtime, size, path) for rid, (mtime, size, path) in todo]
        if not stale and not rows:
            return 0
        placeholders = ", ".join("?" * len(_COLUMNS))
        with self._locked() as conn, conn:
            conn.executemany("DELETE FROM runs WHERE run_id = ?", [(rid,) for rid in stale])
            conn.executemany(
                f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}) VALUES ({placeholders})", rows
            )
        return len(stale) + len(rows)

    @staticmethod
    def _row(run_id: str, mtime_ns: int, size: int, path: str) -> tuple[Any, ...]:
        try:
            summary = summarize(RunManifest.load(path))
            error = None
            if summary["run_id"] != run_id:
                # A manifest copied under another run's name is not that run: list it as unreadable.
                raise ManifestError(f"file name says {run_id} but the manifest says {summary['run_id']}")
        except (ManifestError, OSError) as exc:
            summary = unreadable_summary(run_id)
            # The message names the server's file path; the API shows only the reason.
            error = str(exc).replace(str(path), f"manifests/{run_id}.json")
        return (
            run_id,
            summary["name"],
            summary["algorithm"],
            summary["backend"],
            summary["status"],
            summary["timestamp"],
            summary["adapter_hash"],
            json.dumps(summary["provenance"]),
            summary["relation"],
            error,
            mtime_ns,
            size,
        )

    # -- queries --------------------------------------------------------------------------------

    def list(
        self,
        *,
        status: str | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        order: str = "desc",
        sort: str = "started",
    ) -> RunPage:
        """One page of run summaries sorted by ``sort`` (a key of :data:`SORT_COLUMNS`; default
        the start time), then by ``timestamp`` and ``run_id``, all ``order="desc"`` (default:
        newest first) or ``"asc"``. Runs with no value to sort on come last either way.

        Keyset pagination: a page is found through the index whatever its depth, and runs
        added while a client pages never make it see a row twice. A cursor continues the
        listing that issued it; one from a listing with another sort or order is refused
        (:class:`InvalidCursorError`).
        """
        if not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ProvenirError(f"invalid page limit {limit!r}: expected 1..10000")
        if order not in ORDERS:
            raise ProvenirError(f"invalid order {order!r}: expected 'desc' or 'asc'")
        if sort not in SORT_COLUMNS:
            raise ProvenirError(f"invalid sort {sort!r}: expected one of {', '.join(SORT_COLUMNS)}")
        after = decode_cursor(cursor) if cursor is not None else None
        if after is not None and (after.sort, after.order) != (sort, order):
            raise InvalidCursorError(
                f"this cursor continues a listing sorted by {after.sort} {after.order}, not "
                f"{sort} {order}: list again without the cursor"
            )
        self.refresh()
        filters: list[str] = []
        params: list[Any] = []
        if status is not None:
            filters.append("status = ?")
            params.append(status)
        if name is not None:
            filters.append("name = ?")
            params.append(name)
        column = SORT_COLUMNS[sort]
        keys = ("timestamp", "run_id") if sort == "started" else (column, "timestamp", "run_id")
        missing = f"(status = 'unreadable' OR {column} = '')"
        direction, cmp = ("DESC", "<") if order == "desc" else ("ASC", ">")
        order_by = ", ".join(f"{k} {direction}" for k in keys)
        fetched: list[tuple[Any, ...]] = []
        with self._locked() as conn:
            # Two passes, the runs with a sort value and then those without, each an index scan
            # in one direction (SQLite cannot put them last in both directions in one scan).
            for without_value in (False, True):
                if after is not None and without_value < after.missing:
                    continue  # the cursor is already past every run with a value
                where = [*filters, missing if without_value else f"NOT {missing}"]
                where_params = list(params)
                if after is not None and without_value == after.missing:
                    where.append(f"({', '.join(keys)}) {cmp} ({', '.join('?' * len(keys))})")
                    where_params.extend(after.key)
                sql = f"SELECT {_LISTED} FROM runs WHERE {' AND '.join(where)} ORDER BY {order_by} LIMIT ?"
                fetched += conn.execute(sql, [*where_params, limit + 1 - len(fetched)]).fetchall()
                if len(fetched) > limit:
                    break
            count_sql = "SELECT COUNT(*) FROM runs" + (" WHERE " + " AND ".join(filters) if filters else "")
            total = conn.execute(count_sql, params).fetchone()[0]
        rows = [self._as_dict(r) for r in fetched[:limit]]
        next_cursor = encode_cursor(rows[-1], sort=sort, order=order) if len(fetched) > limit else None
        return RunPage(rows, next_cursor, total)

    @staticmethod
    def _as_dict(r: tuple[Any, ...]) -> dict[str, Any]:
        out = {
            "run_id": r[0],
            "name": r[1],
            "algorithm": r[2],
            "backend": r[3],
            "status": r[4],
            "timestamp": r[5],
            "adapter_hash": r[6],
            "provenance": json.loads(r[7]),
            "relation": r[8],
        }
        if r[9] is not None:
            out["error"] = r[9]
        return out
