"""Content hashing: canonical JSON (RFC 8785) and streamed SHA-256 of files, folders and rows.

Every hash in a manifest comes from here, so a dataset hashed by ``provenir data inspect``
equals the one a training run records.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import rfc8785

from provenir.core.errors import DataError

# 1 MiB reads keep the hash I/O-bound without holding a large file in memory.
_CHUNK = 1 << 20


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` to RFC 8785 canonical JSON bytes (sorted keys, fixed number format)."""
    return rfc8785.dumps(obj)


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex SHA-256 of the canonical JSON form of ``obj``."""
    return sha256_bytes(canonical_json(obj))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, streamed in fixed-size chunks."""
    digest = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


def sha256_path(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, or of a folder as the sorted list of (relative path, file hash).

    A folder's hash changes when any file is added, removed, renamed or edited, and does
    not depend on the order the file system lists entries in.
    """
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    if p.is_dir():
        digest = hashlib.sha256()
        files = sorted(f for f in p.rglob("*") if f.is_file())
        if not files:
            raise DataError(f"{p}: folder contains no files to hash")
        for f in files:
            rel = f.relative_to(p).as_posix()
            digest.update(f"{rel}\0{sha256_file(f)}\n".encode())
        return digest.hexdigest()
    raise DataError(f"{p}: no such file or folder")


def sha256_rows(rows: Iterable[Mapping[str, Any]]) -> str:
    """Hex SHA-256 over in-memory rows: each row's canonical JSON, newline-separated, in order."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(canonical_json(dict(row)))
        digest.update(b"\n")
    return digest.hexdigest()
