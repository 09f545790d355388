"""SHA-256 of large files, in parallel, remembered between runs.

A base model is gigabytes; pinning it on every run must not cost a full read each time. A
file's digest is stored in ``$PROVENIR_HOME/digests.sqlite3`` keyed by its absolute real path
and its ``(size, mtime_ns, ctime_ns, inode)``; any change to one of those means the file is
hashed again. ``ctime`` is in the key on top of size, mtime and inode because a process can
restore an old mtime (``os.utime``, ``touch -r``, ``tar``) but cannot set ctime: a content
change that keeps size and mtime, even into a recycled inode, still misses the cache.

Two guards keep a stale digest out of the cache:

* A file hashed while it changes (its stat differs before and after) is hashed again.
* A file whose mtime is less than :data:`RACY_WINDOW_NS` old when it is stat'ed is hashed but
  not stored: file systems stamp mtime at a coarse clock tick (ext4: a few ms; FAT: 2 s), so
  a write landing in the same tick as the stat would leave the key unchanged ("racy git").

The cache is an optimisation, never a source of failure: a cache that cannot be opened or
written (read-only home, corrupt file) is skipped with a warning and every file is hashed.
Several processes may share it: SQLite in WAL mode with a busy timeout serialises writers.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from provenir.core.errors import DataError
from provenir.core.hashing import sha256_file
from provenir.core.home import provenir_home

log = logging.getLogger(__name__)

#: A file modified this recently (at stat time) is hashed but its digest is not cached.
RACY_WINDOW_NS = 2_000_000_000

# Attempts at hashing a file that keeps changing under us before giving up.
_ATTEMPTS = 3
# SQLite's default limit on bound parameters is 999 on old builds; stay below it.
_BATCH = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS digests_v1 (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL
)
"""


class FileKey(NamedTuple):
    """What identifies one version of a file's bytes without reading them."""

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int


def digest_cache_path() -> Path:
    """The SQLite file holding cached digests: ``$PROVENIR_HOME/digests.sqlite3``."""
    return provenir_home() / "digests.sqlite3"


def file_key(path: Path) -> FileKey:
    """The cache key of ``path`` (an absolute, symlink-free path) from one ``stat``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: not a regular file")
    return FileKey(str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def default_workers(jobs: int) -> int:
    """Hashing threads for ``jobs`` files: one per CPU this process may use, at most one per file."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(jobs, cpus, 32))


def _open_cache() -> sqlite3.Connection | None:
    db = digest_cache_path()
    conn = None
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        conn.commit()
        return conn
    except (OSError, sqlite3.Error) as exc:
        if conn is not None:
            conn.close()
        log.warning("digest cache %s unavailable, hashing without it: %s", db, exc)
        return None


def _lookup(conn: sqlite3.Connection, keys: Sequence[FileKey]) -> dict[FileKey, str]:
    by_path = {k.path: k for k in keys}
    paths = list(by_path)
    found: dict[FileKey, str] = {}
    for i in range(0, len(paths), _BATCH):
        chunk = paths[i : i + _BATCH]
        rows = conn.execute(
            "SELECT path, size, mtime_ns, ctime_ns, inode, sha256 FROM digests_v1 "
            f"WHERE path IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        for path, size, mtime_ns, ctime_ns, inode, digest in rows:
            key = by_path[path]
            if FileKey(path, size, mtime_ns, ctime_ns, inode) == key:
                found[key] = digest
    return found


def _store(conn: sqlite3.Connection, entries: Iterable[tuple[FileKey, str]]) -> None:
    # One row per path: a changed file replaces its old row instead of piling up.
    with conn:
        conn.executemany(
            "INSERT OR REPLACE INTO digests_v1 (path, size, mtime_ns, ctime_ns, inode, sha256) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(*key, digest) for key, digest in entries],
        )


def _hash_stable(key: FileKey) -> tuple[FileKey, str]:
    """Hash ``key.path``; the returned key is the stat the hash is known to match."""
    for _ in range(_ATTEMPTS):
        digest = sha256_file(key.path)
        after = file_key(Path(key.path))
        if after == key:
            return key, digest
        key = after
    raise DataError(f"{key.path}: the file kept changing while it was hashed")


def hash_files(paths: list[Path], *, workers: int | None = None, cache: bool = True) -> dict[Path, str]:
    """Hex SHA-256 of each file in ``paths``, keyed by the paths as given.

    Symlinks are followed (the cache key is the real path, so a Hugging Face snapshot and its
    blob share one entry). Cached digests are looked up first; the rest are hashed in
    ``workers`` threads (default: one per available CPU, at most one per file), biggest file
    first. ``cache=False`` neither reads nor writes the cache.

    >>> hash_files([Path("model-00001-of-00002.safetensors")])  # doctest: +SKIP
    {PosixPath('model-00001-of-00002.safetensors'): '9f86d0…'}
    """
    real = {p: Path(os.path.realpath(p)) for p in paths}
    stat_time = time.time_ns()
    keys = [file_key(r) for r in dict.fromkeys(real.values())]
    conn = _open_cache() if cache else None
    try:
        cached: dict[FileKey, str] = {}
        if conn is not None:
            try:
                cached = _lookup(conn, keys)
            except sqlite3.Error as exc:
                log.warning("digest cache %s unreadable, hashing without it: %s", digest_cache_path(), exc)
                conn.close()
                conn = None
        todo = sorted((k for k in keys if k not in cached), key=lambda k: -k.size)
        n = workers if workers is not None else default_workers(len(todo))
        if n <= 1 or len(todo) <= 1:
            hashed = [_hash_stable(k) for k in todo]
        else:
            # hashlib releases the GIL on large updates, so threads hash on separate cores.
            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="sha256") as pool:
                hashed = list(pool.map(_hash_stable, todo))
        storable = [(k, d) for k, d in hashed if stat_time - k.mtime_ns >= RACY_WINDOW_NS]
        if conn is not None and storable:
            try:
                _store(conn, storable)
            except sqlite3.Error as exc:
                log.warning("digest cache %s not updated: %s", digest_cache_path(), exc)
    finally:
        if conn is not None:
            conn.close()
    by_path = {k.path: d for k, d in cached.items()} | {k.path: d for k, d in hashed}
    return {p: by_path[str(r)] for p, r in real.items()}
