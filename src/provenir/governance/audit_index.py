"""The audit log's SQLite index: where each line is, what to filter on, and its Merkle tree.

``<audit>/audit.index.db`` is a cache derived from ``audit.jsonl``, never trusted on its own:

``records(pos, offset, length, ts, event, actor, run_id, leaf)``
    One row per complete line (``pos`` counts lines from 0, so record ``seq`` is ``pos + 1`` in
    an intact log): its byte range, its time in microseconds, the three filter columns
    (indexed, so a filtered page is an index walk; they hold ids of ``names(id, value)``, which
    keeps rows and indexes small), and ``leaf``, the RFC 9162 leaf hash of the line's bytes.
``nodes(id, hash)``
    Every completed perfect subtree of 16 leaves or more (``id`` is ``level << 48 | index``;
    smaller ones are hashed from their leaves), so a proof or the root at any size costs
    O(log n) lookups.

Every record read through the index is checked against the log (its leaf hash), and an index
that is missing, behind, or whose last row no longer matches the log is brought in step from
the log (:meth:`AuditIndex.sync`, under the audit folder's lock). An index SQLite cannot read
(a corrupt page, another format, a missing Merkle node) is :class:`IndexUnreadable`: its files
are deleted and it is rebuilt from the log. SQLite opens its files itself,
so symbolic links are refused by looking first (the log, the lock and the checkpoints are
opened with ``O_NOFOLLOW``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provenir.core.errors import GovernanceError
from provenir.governance import merkle

INDEX_NAME = "audit.index.db"
# SQLite keeps a database's state in these files beside it: the index is all of them.
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
_SCHEMA_VERSION = 1
_LEVEL_SHIFT = 48
# Perfect subtrees of 2**4 = 16 leaves and up are stored (1/16 of a row per record); smaller
# ones are hashed from their leaves when a proof needs them.
_STORED_FROM_LEVEL = 4
_BATCH = 20_000  # rows per transaction while catching up: bounded memory and WAL size
_READ_CHUNK = 1 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS records (
    pos INTEGER PRIMARY KEY,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    event INTEGER,
    actor INTEGER,
    run_id INTEGER,
    leaf BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (id INTEGER PRIMARY KEY, hash BLOB NOT NULL);
"""
# Built at the end of each sync: after a rebuild's rows are in (sorting once is far faster than
# updating per row), a no-op once they exist.
_FILTER_INDEXES = """
CREATE INDEX IF NOT EXISTS records_event ON records(event);
CREATE INDEX IF NOT EXISTS records_actor ON records(actor);
CREATE INDEX IF NOT EXISTS records_run_id ON records(run_id);
"""


class IndexUnreadable(GovernanceError):
    """The index file is not a usable SQLite index (it is a cache: delete and rebuild it)."""


@dataclass(frozen=True)
class IndexRow:
    """Where one line of the log is, and its leaf hash."""

    pos: int
    offset: int
    length: int
    leaf: bytes


# -- symbolic links -----------------------------------------------------------------------------

# POSIX only (as provenir.core.confined): O_NOFOLLOW, O_DIRECTORY and open(dir_fd=) are there.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def refuse_link(path: Path, what: str) -> None:
    """Raise when ``path`` is a symbolic link (the audit folder and its files must be real)."""
    try:
        is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return
    if is_link:
        raise GovernanceError(
            f"{path}: the {what} is a symbolic link; the audit log is never read or written through "
            "links (replace it by a real file or folder)"
        )


def open_nofollow(directory: Path, name: str, flags: int, mode: int = 0o644) -> int:
    """``os.open(directory / name)`` refusing a symbolic link as the folder or as the file."""
    refuse_link(directory, "audit folder")
    path = directory / name
    try:
        # Open the folder without following it, then the file relative to that handle: no link
        # can be swapped in between the check and the open.
        dfd = os.open(directory, _DIR_FLAGS)
        try:
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        # ELOOP: the file is a link; ENOTDIR: the folder is (or became) one; EMLINK: BSDs' ELOOP.
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            refuse_link(directory, "audit folder")
            refuse_link(path, "audit file")
        raise


# -- the index ----------------------------------------------------------------------------------

_local = threading.local()
_MAX_CONNECTIONS = 8  # per thread
_DECODER = json.JSONDecoder()


def _node_id(level: int, index: int) -> int:
    return level << _LEVEL_SHIFT | index


class AuditIndex:
    """The SQLite index of one audit folder (see the module docstring)."""

    def __init__(self, directory: Path, log_name: str) -> None:
        self.directory = directory
        self.log_name = log_name
        self.path = directory / INDEX_NAME

    # -- connection -----------------------------------------------------------------------------

    def exists(self) -> bool:
        """True when the index file is there (readers that must not create it check first)."""
        return self.path.is_file()

    def files(self) -> list[Path]:
        """The index file and the files SQLite keeps beside it (none may be a symbolic link)."""
        return [self.path, *(Path(f"{self.path}{suffix}") for suffix in _SQLITE_SIDE_FILES)]

    @contextlib.contextmanager
    def _readable(self) -> Iterator[None]:
        """Turn any SQLite error into :class:`IndexUnreadable`: the caller rebuilds the index.

        A corrupt page is found only when a query reaches it, so every use of the index is
        guarded, not just opening it.
        """
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise IndexUnreadable(
                f"{self.path}: the audit index is unreadable ({exc}); delete it (it is rebuilt from the log)"
            ) from None

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection (reopened when the file was replaced or the process forked).

        Connections are cached per thread (sqlite3 objects stay in their thread), most recently
        used last, so a server answers without reopening the database per request.
        """
        cache: dict[str, tuple[int, int, sqlite3.Connection]] = getattr(_local, "connections", None) or {}
        _local.connections = cache
        key = str(self.path)
        cached = cache.pop(key, None)
        if cached is not None:
            try:
                inode: int | None = os.lstat(self.path).st_ino
            except FileNotFoundError:
                inode = None
            if cached[0] == os.getpid() and cached[1] == inode:
                cache[key] = cached
                return cached[2]
            if cached[0] == os.getpid():
                cached[2].close()
        refuse_link(self.directory, "audit folder")
        for path in self.files():
            refuse_link(path, "audit index")
        if not self.path.exists():
            # Side files left by a deleted index belong to the old database, never to a new one.
            for path in self.files():
                path.unlink(missing_ok=True)
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            with self._readable():
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # a cache: a lost tail is rebuilt from the log
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:  # a new file
                    conn.executescript(_SCHEMA)
                    conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
                elif version != _SCHEMA_VERSION:
                    raise sqlite3.DatabaseError(f"index format {version}, expected {_SCHEMA_VERSION}")
        except IndexUnreadable:
            conn.close()
            raise
        cache[key] = (os.getpid(), os.lstat(self.path).st_ino, conn)
        while len(cache) > _MAX_CONNECTIONS:  # least recently used first: bounded open files
            pid, _, old = cache.pop(next(iter(cache)))
            if pid == os.getpid():
                old.close()
        return conn

    def reset(self) -> None:
        """Delete the index files (an unreadable cache); the next sync rebuilds them from the log."""
        cached = getattr(_local, "connections", {}).pop(str(self.path), None)
        if cached is not None and cached[0] == os.getpid():
            cached[2].close()
        for path in self.files():
            path.unlink(missing_ok=True)

    # -- reading --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Read in one transaction: every lookup inside sees the same index, whatever writers do."""
        conn = self._connect()
        conn.execute("BEGIN")
        try:
            yield
        finally:
            # The connection may have been replaced meanwhile (the index file was reset).
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def count(self) -> int:
        """Number of indexed lines."""
        with self._readable():
            row = self._connect().execute("SELECT MAX(pos) FROM records").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def last(self) -> IndexRow | None:
        """The newest indexed line."""
        with self._readable():
            row = (
                self._connect()
                .execute("SELECT pos, offset, length, leaf FROM records ORDER BY pos DESC LIMIT 1")
                .fetchone()
            )
        return IndexRow(*row) if row else None

    def perfect(self, level: int, index: int) -> bytes:
        """Hash of perfect subtree ``index`` at ``level`` (a :class:`~merkle.NodeSource`)."""
        conn = self._connect()
        if level < _STORED_FROM_LEVEL:
            # Small subtrees are not stored: hashing their few leaves is as cheap as a lookup.
            first, width = index << level, 1 << level
            with self._readable():
                leaves = [
                    bytes(leaf)
                    for (leaf,) in conn.execute(
                        "SELECT leaf FROM records WHERE pos >= ? AND pos < ? ORDER BY pos",
                        (first, first + width),
                    )
                ]
            if len(leaves) == width:
                return merkle.LeafList(leaves).perfect(level, 0)
        else:
            with self._readable():
                row = conn.execute(
                    "SELECT hash FROM nodes WHERE id = ?", (_node_id(level, index),)
                ).fetchone()
            if row is not None:
                return bytes(row[0])
        raise IndexUnreadable(
            f"{self.path}: Merkle node {level}/{index} is missing; delete the index (it is rebuilt)"
        )

    def root(self, size: int) -> bytes:
        """MTH of the first ``size`` lines."""
        return merkle.range_hash(self, 0, size)

    def rows(
        self,
        *,
        run_id: str | None,
        event: str | None,
        actor: str | None,
        lo: int | None,
        hi: int | None,
        limit: int,
        cursor: int | None,
        desc: bool,
    ) -> list[IndexRow]:
        """Up to ``limit`` rows matching every filter, from ``cursor`` in scan direction."""
        where: list[str] = []
        params: list[str | int] = []
        for column, value in (("event", event), ("actor", actor), ("run_id", run_id)):
            if value is not None:
                where.append(f"{column} = (SELECT id FROM names WHERE value = ?)")
                params.append(value)
        # No index on ts: rows are walked in pos order, which is (nearly) time order, so an
        # index on ts would only add a sort of every match before the LIMIT.
        if lo is not None:
            where.append("ts >= ?")
            params.append(lo)
        if hi is not None:
            where.append("ts < ?")
            params.append(hi)
        if cursor is not None:
            where.append("pos <= ?" if desc else "pos >= ?")
            params.append(cursor)
        sql = "SELECT pos, offset, length, leaf FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY pos {'DESC' if desc else 'ASC'} LIMIT ?"
        params.append(limit)
        with self._readable():
            return [IndexRow(*row) for row in self._connect().execute(sql, params)]

    def leaves(self) -> Iterator[bytes]:
        """Every indexed leaf hash in log order (streamed)."""
        with self._readable():
            for (leaf,) in self._connect().execute("SELECT leaf FROM records ORDER BY pos"):
                yield bytes(leaf)

    # -- writing (the caller holds the audit lock) ----------------------------------------------
    # Writers of the log never touch the index: appending a record stays one write and one
    # fsync, and the next reader (or tree head) indexes the new lines, a few at a time.

    def sync(self, log_fd: int, log_size: int, *, force: bool) -> None:
        """Bring the index in step with the log's complete lines (caller holds the audit lock).

        Only the lines after the last indexed one are added when that line is still in place
        (same bytes at the same offset); otherwise, or when forced, the index files are deleted
        and the index is rebuilt from the whole log.
        """
        last = None if force else self.last()
        start, pos = 0, 0
        if last is not None:
            # Past the end of a shrunk log the read is short, and so never hashes to the leaf.
            raw = os.pread(log_fd, last.length, last.offset)
            if raw.endswith(b"\n") and merkle.leaf_hash(raw[:-1]) == last.leaf:
                start, pos = last.offset + last.length, last.pos + 1
        if pos == 0:
            self.reset()
        conn = self._connect()
        with self._readable():
            self._add(conn, log_fd, start, pos, log_size)
            conn.executescript(_FILTER_INDEXES)

    def _add(self, conn: sqlite3.Connection, log_fd: int, start: int, pos: int, log_size: int) -> None:
        """Index the complete lines of the log from byte ``start`` on (line ``pos``)."""
        tree = merkle.Frontier.of(self, pos)
        names: dict[str, int] = {}
        batch: list[tuple[int, bytes, dict[str, Any]]] = []
        for offset, line in _complete_lines(log_fd, start, log_size):
            batch.append((offset, line, _parse(line)))
            if len(batch) >= _BATCH:
                self._commit(conn, tree, batch, names)
                batch = []
        if batch:
            self._commit(conn, tree, batch, names)

    @staticmethod
    def _commit(
        conn: sqlite3.Connection,
        tree: merkle.Frontier,
        batch: list[tuple[int, bytes, dict[str, Any]]],
        names: dict[str, int],
    ) -> None:
        """Insert ``batch`` (lines with their parsed fields) and the tree nodes they complete."""
        conn.execute("BEGIN IMMEDIATE")
        with conn:  # commits, or rolls back on any exception (no transaction is left open)

            def name_id(value: Any) -> int | None:
                if not isinstance(value, str):
                    return None
                found = names.get(value)
                if found is None:
                    conn.execute("INSERT OR IGNORE INTO names(value) VALUES (?)", (value,))
                    found = names[value] = conn.execute(
                        "SELECT id FROM names WHERE value = ?", (value,)
                    ).fetchone()[0]
                return found

            records, nodes = [], []
            for offset, line, record in batch:
                leaf = merkle.leaf_hash(line)
                pos = tree.size
                for level, index, digest in tree.append(leaf)[_STORED_FROM_LEVEL:]:
                    nodes.append((_node_id(level, index), digest))
                records.append(
                    (
                        pos,
                        offset,
                        len(line) + 1,
                        record["_ts"],
                        name_id(record.get("event")),
                        name_id(record.get("actor")),
                        name_id(record.get("run_id")),
                        leaf,
                    )
                )
            conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", records)
            conn.executemany("INSERT OR REPLACE INTO nodes VALUES (?, ?)", nodes)


def timestamp_us(value: str | datetime | None) -> int | None:
    """Microseconds since the epoch; naive datetimes and ISO strings are taken as UTC."""
    return None if value is None else _micros(value)


def _micros(value: str | datetime) -> int:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise GovernanceError(
                f"invalid time {value!r}: expected ISO-8601 like 2025-01-31T12:00:00Z"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1_000_000)


def _parse(line: bytes) -> dict[str, Any]:
    """The filter fields of a line, and its time in ``_ts``.

    A line that is not a JSON object has no fields; a time that cannot be read counts as the
    epoch (such a line sorts before every real time).
    """
    try:
        data = _DECODER.decode(line.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
        data = None
    if not isinstance(data, dict):
        data = {}
    try:
        data["_ts"] = _micros(str(data.get("timestamp", "")))
    except (GovernanceError, OverflowError):
        data["_ts"] = 0
    return data


def _complete_lines(fd: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, line without newline)`` for each complete line in ``[start, end)``."""
    offset, pending = start, b""
    while offset < end:
        chunk = os.pread(fd, min(_READ_CHUNK, end - offset), offset)
        if not chunk:
            break
        offset += len(chunk)
        buf = pending + chunk
        line_start = offset - len(buf)
        lines = buf.split(b"\n")
        pending = lines.pop()  # bytes after the last newline: a partial (or torn) line
        for line in lines:
            yield line_start, line
            line_start += len(line) + 1
