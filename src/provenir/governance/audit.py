"""Tamper-evident, append-only audit log: hash-chained JSONL, safe under many writers.

::

    from provenir.governance.audit import AuditLogger

    audit = AuditLogger("artifacts/audit")
    audit.log("training_complete", actor="ci-bot", run_id=manifest.run_id, steps=500)

Files in the audit folder
-------------------------
``audit.jsonl``
    One record per line, RFC 8785 canonical JSON::

        {"actor":"ci-bot","event":"training_complete","fields":{"steps":500},
         "hash":"<sha256>","prev_hash":"<sha256 of the previous record>",
         "run_id":"...","seq":1,"timestamp":"2025-01-01T00:00:00.000000+00:00"}

    ``hash`` is the SHA-256 of the canonical JSON of every other key, and ``prev_hash`` links
    to the previous record (64 zeros for the first), so editing, deleting or reordering any
    line breaks the chain (:meth:`AuditLogger.verify`). ``seq`` counts from 1 without gaps.
    A ``run_id`` keyword is lifted to the top level so readers can filter on it; every other
    keyword goes, redacted (:mod:`provenir.core.redaction`), under ``fields``.
``audit.lock``
    The :mod:`filelock` lock every writer holds while it reads the chain head and appends:
    it is what makes concurrent processes produce one gap-free chain.
``audit.idx``
    A derived sidecar index, 40 bytes per line (``struct`` ``<QIqIII8s``): byte offset and
    length of the line, timestamp in microseconds, CRC-32 of event, actor and run_id, and the
    first 8 bytes of the record hash. It lets :class:`AuditReader` jump to any position and
    filter by scanning 40 bytes per record instead of parsing the log. It is a cache, never
    trusted: every record read through it is parsed and checked (position, hash prefix,
    filters), and a missing, short or inconsistent index is rebuilt from the log.

Durability: each record is written with a single ``write`` of the whole line followed by
``fsync``, while holding the lock, so a crash can leave at most a torn *last* line. Verify
reports it; :meth:`AuditLogger.repair` completes it if it is an intact record missing its
newline, or else moves the torn bytes to ``audit.torn-<time>.bin`` and truncates the log to the
last good record. ``log`` refuses to append after a torn line (that would bury it in the middle).

Reading for the REST API
------------------------
``AuditReader(dir).query(run_id=..., event=..., actor=..., since=..., until=..., limit=50,
cursor=None, order="desc")`` returns an :class:`AuditPage` (``records``, ``next_cursor``,
``total``). An unfiltered page costs ``limit`` random reads whatever the log size; a filtered
page scans the index backwards (newest first) in 160 KiB chunks and stops as soon as the page
is full, so memory stays bounded and the log itself is only read for matching candidates.

Anchoring: a hash chain alone cannot show that the newest records were cut off (the index is
a second witness, but it lives in the same folder). :meth:`AuditLogger.head` returns
``(seq, hash)``; record it elsewhere (e.g. in a signed manifest) and pass it to
``check(expected_head=...)`` to detect truncation too.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import re
import struct
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, Literal

from provenir.core.errors import AuditTamperedError, GovernanceError
from provenir.core.hashing import canonical_json, sha256_json
from provenir.core.redaction import redact, redact_text

LOG_NAME = "audit.jsonl"
INDEX_NAME = "audit.idx"
LOCK_NAME = "audit.lock"
GENESIS_HASH = "0" * 64
ACTOR_ENV = "PROVENIR_ACTOR"

_EVENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_INDEX = struct.Struct("<QIqIII8s")
_INDEX_CHUNK = 4096  # entries per index read: 160 KiB, bounded memory on any log size
_LOCK_TIMEOUT_S = 120.0
_RECORD_KEYS = frozenset({"seq", "timestamp", "event", "actor", "run_id", "fields", "prev_hash", "hash"})
# JSON numbers beyond 2**53 are not exact in RFC 8785 (IEEE doubles); they are stored as strings.
_MAX_SAFE_INT = 2**53


@dataclass(frozen=True)
class AuditRecord:
    """One audit event as stored in the log."""

    seq: int
    timestamp: str
    event: str
    actor: str
    run_id: str | None
    fields: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-serialisable dict (the exact keys of the log line)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        """Build from a parsed log line; :class:`GovernanceError` if keys or types are wrong."""
        if not isinstance(data, Mapping) or set(data) != _RECORD_KEYS:
            raise GovernanceError("not an audit record: unexpected keys")
        if (
            not isinstance(data["seq"], int)
            or not isinstance(data["fields"], dict)
            or not all(isinstance(data[k], str) for k in ("timestamp", "event", "actor", "prev_hash"))
            or not (isinstance(data["hash"], str) and _HEX64.match(data["hash"]))
            or not (data["run_id"] is None or isinstance(data["run_id"], str))
        ):
            raise GovernanceError("not an audit record: a key has the wrong type")
        return cls(**{k: data[k] for k in _RECORD_KEYS})


@dataclass
class AuditPage:
    """One page of :meth:`AuditReader.query`.

    ``next_cursor`` is opaque: pass it back as ``cursor`` for the next page; ``None`` means
    there is nothing further in this direction. ``total`` is the number of lines in the log
    (unfiltered), known without reading it.
    """

    records: list[AuditRecord]
    next_cursor: int | None
    total: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (what ``GET /audit`` can return as is)."""
        return {
            "records": [r.to_dict() for r in self.records],
            "next_cursor": self.next_cursor,
            "total": self.total,
        }


@dataclass
class AuditVerification:
    """Outcome of :meth:`AuditLogger.check`."""

    records: int
    head_seq: int
    head_hash: str
    torn_tail: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain is intact and nothing is torn."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {**asdict(self), "ok": self.ok}


@dataclass
class AuditRepair:
    """Outcome of :meth:`AuditLogger.repair`."""

    action: Literal["none", "completed_newline", "truncated"]
    removed_bytes: int = 0
    saved_to: str | None = None


# -- helpers ------------------------------------------------------------------------------------


def default_actor() -> str:
    """Who is acting when ``actor`` is not given: ``$PROVENIR_ACTOR``, else the OS user."""
    env = os.environ.get(ACTOR_ENV)
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


def _jsonable(value: Any, path: str) -> Any:
    """Turn common Python values into JSON that RFC 8785 accepts; refuse the rest clearly."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT else str(value)
    if isinstance(value, float):
        # NaN/inf are not JSON; keep them readable rather than failing the caller's event.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Enum):
        return _jsonable(value.value, path)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [_jsonable(v, f"{path}[{i}]") for i, v in enumerate(items)]
    if hasattr(value, "model_dump"):  # pydantic models (RunConfig, RunManifest...)
        return _jsonable(value.model_dump(mode="json"), path)
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value), path)
    raise GovernanceError(f"audit field {path}: cannot store a {type(value).__name__} (use JSON-like values)")


def _crc(value: str | None) -> int:
    return zlib.crc32(value.encode("utf-8")) if value else 0


def _ts_us(value: str | datetime | None) -> int | None:
    """Microseconds since the epoch; naive datetimes and ISO strings are taken as UTC."""
    if value is None:
        return None
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


def _record_hash(body: Mapping[str, Any]) -> str:
    return sha256_json({k: v for k, v in body.items() if k != "hash"})


def _write_all(fd: int, data: bytes) -> None:
    # A regular file takes the whole buffer in one write; the loop only guards exotic file
    # systems, and the lock is held so no other writer can interleave.
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_last_line(fd: int, size: int) -> tuple[bytes, int, bool]:
    """(last line without its newline, its byte offset, whether it ends with a newline)."""
    complete = os.pread(fd, 1, size - 1) == b"\n"
    end = size - 1 if complete else size
    buf, pos, chunk = b"", end, 8192
    while pos > 0:
        start = max(0, pos - chunk)
        buf = os.pread(fd, pos - start, start) + buf  # buf holds bytes [pos, end)
        pos = start
        nl = buf.rfind(b"\n")
        if nl != -1:
            return buf[nl + 1 :], pos + nl + 1, complete
        chunk *= 2  # long lines: widen the window instead of re-reading many small ones
    return buf, 0, complete


# -- writer -------------------------------------------------------------------------------------


class AuditLogger:
    """Appends hash-chained events to ``<directory>/audit.jsonl`` (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOG_NAME
        self.index_path = self.directory / INDEX_NAME
        self.lock_path = self.directory / LOCK_NAME
        # (file size, seq, hash) after this process's last append: skips re-reading the tail
        # when nobody else wrote in between (the size would have changed).
        self._head_cache: tuple[int, int, str] | None = None
        self._lock: Any = None
        self._lock_pid = -1

    def _locked(self) -> Any:
        """Acquire the folder's file lock (created once per process: it is reused per call)."""
        from filelock import FileLock, Timeout

        if self._lock is None or self._lock_pid != os.getpid():
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(self.lock_path), timeout=_LOCK_TIMEOUT_S)
            self._lock_pid = os.getpid()
        try:
            self._lock.acquire()
        except Timeout:
            raise GovernanceError(
                f"{self.lock_path}: could not lock the audit log within {_LOCK_TIMEOUT_S:.0f}s"
            ) from None
        return self._lock

    # -- writing --------------------------------------------------------------------------------

    def log(self, event: str, actor: str | None = None, **fields: Any) -> AuditRecord:
        """Append one event and return the stored (redacted) record.

        ``event`` is a short name (letters, digits, ``_ . : / -``); ``actor`` defaults to
        :func:`default_actor`; ``run_id`` is stored at top level, other keywords under
        ``fields``. Secrets in ``actor`` and field values are redacted before writing.
        """
        if not isinstance(event, str) or not _EVENT.match(event):
            raise GovernanceError(
                f"invalid audit event name {event!r}: use 1-128 letters, digits or _ . : / -"
            )
        actor = default_actor() if actor is None else actor
        if not isinstance(actor, str) or not actor.strip():
            raise GovernanceError("audit actor must be a non-empty string")
        actor = redact_text(" ".join(actor.split()))[0]
        run_id = fields.pop("run_id", None)
        if run_id is not None and not isinstance(run_id, str):
            raise GovernanceError(f"audit run_id must be a string, not {type(run_id).__name__}")
        clean_fields = redact(_jsonable(fields, "fields"))
        run_id = redact_text(run_id)[0] if run_id is not None else None

        lock = self._locked()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                prev_seq, prev_hash = self._head_locked(fd, size)
                record = {
                    "seq": prev_seq + 1,
                    "timestamp": datetime.now(UTC).isoformat(timespec="microseconds"),
                    "event": event,
                    "actor": actor,
                    "run_id": run_id,
                    "fields": clean_fields,
                    "prev_hash": prev_hash,
                }
                record["hash"] = _record_hash(record)
                line = canonical_json(record) + b"\n"
                _write_all(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._head_cache = (size + len(line), record["seq"], record["hash"])
            self._append_index(size, len(line), record, expected_entries=prev_seq)
        finally:
            lock.release()
        return AuditRecord.from_dict(record)

    def _head_locked(self, fd: int, size: int) -> tuple[int, str]:
        if size == 0:
            return 0, GENESIS_HASH
        if self._head_cache is not None and self._head_cache[0] == size:
            return self._head_cache[1], self._head_cache[2]
        line, _, complete = _read_last_line(fd, size)
        if not complete:
            raise GovernanceError(
                f"{self.path}: the last line is torn (a writer crashed mid-write); "
                "run `provenir audit verify` then `provenir audit repair`"
            )
        try:
            last = json.loads(line)
            return int(last["seq"]), str(last["hash"])
        except (ValueError, KeyError, TypeError):
            raise AuditTamperedError(
                f"{self.path}: the last record is unreadable; run `provenir audit verify`"
            ) from None

    def _append_index(
        self, offset: int, length: int, record: Mapping[str, Any], expected_entries: int
    ) -> None:
        # Append only when the index is exactly in step with the log; otherwise leave it stale
        # and let the reader rebuild it (it is a cache, the log is the truth).
        try:
            current = self.index_path.stat().st_size
        except FileNotFoundError:
            current = 0
        if current != expected_entries * _INDEX.size:
            return
        entry = _pack_entry(offset, length, record)
        fd = os.open(self.index_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _write_all(fd, entry)
        finally:
            os.close(fd)

    # -- reading --------------------------------------------------------------------------------

    def head(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the newest record (None for an empty log): anchor it elsewhere."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            line, _, complete = _read_last_line(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        if not complete:
            raise GovernanceError(f"{self.path}: the last line is torn; run `provenir audit repair`")
        try:
            last = json.loads(line)
            return int(last["seq"]), str(last["hash"])
        except (ValueError, KeyError, TypeError):
            raise AuditTamperedError(f"{self.path}: the last record is unreadable") from None

    def query(self, **kwargs: Any) -> AuditPage:
        """Shortcut for :meth:`AuditReader.query` on this folder."""
        return AuditReader(self.directory).query(**kwargs)

    # -- integrity ------------------------------------------------------------------------------

    def check(
        self, *, expected_head: tuple[int, str] | None = None, max_problems: int = 20
    ) -> AuditVerification:
        """Walk the whole chain (streamed) and report every inconsistency found."""
        return _check(self, expected_head=expected_head, max_problems=max_problems)

    def verify(self, *, expected_head: tuple[int, str] | None = None) -> AuditVerification:
        """Like :meth:`check` but raises :class:`AuditTamperedError` when anything is wrong."""
        result = self.check(expected_head=expected_head)
        if not result.ok:
            more = f" (+{len(result.problems) - 3} more)" if len(result.problems) > 3 else ""
            raise AuditTamperedError(f"{self.path}: " + "; ".join(result.problems[:3]) + more)
        return result

    def repair(self) -> AuditRepair:
        """Fix a torn last line only: complete it if it is an intact record, else cut it off.

        Good records are never removed: the cut bytes are saved next to the log first, and
        nothing is done to a chain broken elsewhere (that is tampering, not a crash).
        """
        if not self.path.is_file():
            return AuditRepair("none")
        lock = self._locked()
        try:
            fd = os.open(self.path, os.O_RDWR)
            try:
                size = os.fstat(fd).st_size
                if size == 0:
                    return AuditRepair("none")
                tail, offset, complete = _read_last_line(fd, size)
                if complete:
                    return AuditRepair("none")
                prev_seq, prev_hash = 0, GENESIS_HASH
                if offset > 0:
                    prev_line, _, _ = _read_last_line(fd, offset)
                    try:
                        prev = json.loads(prev_line)
                        prev_seq, prev_hash = int(prev["seq"]), str(prev["hash"])
                    except (ValueError, KeyError, TypeError):
                        raise AuditTamperedError(
                            f"{self.path}: the record before the torn line is unreadable; not repairing"
                        ) from None
                if _is_intact_successor(tail, prev_seq, prev_hash):
                    _write_all_at_end(fd, b"\n")
                    os.fsync(fd)
                    action: Literal["completed_newline", "truncated"] = "completed_newline"
                    saved = None
                    removed = 0
                else:
                    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
                    saved_path = self.directory / f"audit.torn-{stamp}-{os.getpid()}.bin"
                    saved_path.write_bytes(tail)
                    os.ftruncate(fd, offset)
                    os.fsync(fd)
                    action, saved, removed = "truncated", str(saved_path), len(tail)
            finally:
                os.close(fd)
            self._head_cache = None
            _rebuild_index(self.path, self.index_path)
        finally:
            lock.release()
        # The repair itself is an auditable event (logged after the lock is released).
        self.log("audit_repaired", action=action, removed_bytes=removed, saved_to=saved)
        return AuditRepair(action, removed, saved)


def _write_all_at_end(fd: int, data: bytes) -> None:
    os.lseek(fd, 0, os.SEEK_END)
    _write_all(fd, data)


def _is_intact_successor(raw: bytes, prev_seq: int, prev_hash: str) -> bool:
    try:
        data = json.loads(raw)
        record = AuditRecord.from_dict(data)
    except (ValueError, GovernanceError):
        return False
    return (
        record.seq == prev_seq + 1
        and record.prev_hash == prev_hash
        and record.hash == _record_hash(data)
        and canonical_json(data) == raw
    )


def _check(
    logger: AuditLogger, *, expected_head: tuple[int, str] | None, max_problems: int
) -> AuditVerification:
    problems: list[str] = []
    overflow = 0

    def problem(msg: str) -> None:
        nonlocal overflow
        if len(problems) < max_problems:
            problems.append(msg)
        else:
            overflow += 1

    prev_seq, prev_hash, count, torn = 0, GENESIS_HASH, 0, False
    index_fh = logger.index_path.open("rb") if logger.index_path.is_file() else None
    index_entries = (logger.index_path.stat().st_size // _INDEX.size) if index_fh else 0
    index_mismatch = False
    if logger.path.is_file():
        with logger.path.open("rb") as fh:
            lineno = 0
            for raw in fh:
                lineno += 1
                entry = (
                    index_fh.read(_INDEX.size) if index_fh is not None and lineno <= index_entries else b""
                )
                if not raw.endswith(b"\n"):
                    torn = True
                    problem(
                        f"line {lineno}: torn last line ({len(raw)} bytes, no newline): "
                        "run `provenir audit repair`"
                    )
                    break
                body = raw[:-1]
                try:
                    data = json.loads(body)
                    record = AuditRecord.from_dict(data)
                except (ValueError, GovernanceError):
                    problem(f"line {lineno}: not a valid audit record (edited or corrupted)")
                    prev_seq += 1
                    prev_hash = "?"
                    count += 1
                    continue
                count += 1
                if record.hash != _record_hash(data):
                    problem(f"line {lineno} (seq {record.seq}): content does not match its hash (edited)")
                elif canonical_json(data) != body:
                    problem(
                        f"line {lineno} (seq {record.seq}): bytes differ from the canonical form (edited)"
                    )
                if record.seq != prev_seq + 1:
                    problem(
                        f"line {lineno}: seq {record.seq} follows seq {prev_seq} "
                        "(deleted or reordered records)"
                    )
                if prev_hash != "?" and record.prev_hash != prev_hash:
                    problem(
                        f"line {lineno} (seq {record.seq}): prev_hash does not link to the previous record"
                    )
                if len(entry) == _INDEX.size and _INDEX.unpack(entry)[6] != bytes.fromhex(record.hash[:16]):
                    index_mismatch = True
                prev_seq, prev_hash = record.seq, record.hash
    if index_fh is not None:
        index_fh.close()
    # The index is written after each record, so after a crash it can only be shorter; a
    # longer one means records were removed from the end of the log (or the log replaced).
    if index_entries > count:
        problem(f"the index lists {index_entries} records but the log has {count}: records were deleted")
    elif index_mismatch:
        problem("the index disagrees with the log's record hashes: records were rewritten")
    if expected_head is not None:
        seq, digest = expected_head
        if count < seq:
            problem(
                f"expected at least {seq} records (anchored head) but the log has {count}: "
                "records were deleted"
            )
        elif not _chain_contains(logger.path, seq, digest):
            problem(f"anchored head seq {seq} hash {digest[:12]}... is not in the chain")
    if overflow:
        problems.append(f"... and {overflow} more problems")
    return AuditVerification(count, prev_seq, prev_hash, torn, problems)


def _chain_contains(path: Path, seq: int, digest: str) -> bool:
    with path.open("rb") as fh:
        for raw in fh:
            try:
                data = json.loads(raw)
            except ValueError:
                continue
            if data.get("seq") == seq:
                return data.get("hash") == digest
    return False


# -- index --------------------------------------------------------------------------------------


def _pack_entry(offset: int, length: int, record: Mapping[str, Any]) -> bytes:
    try:
        ts = _ts_us(str(record.get("timestamp", ""))) or 0
    except GovernanceError:
        ts = 0
    digest = str(record.get("hash", ""))
    try:
        prefix = bytes.fromhex(digest[:16]) if len(digest) >= 16 else b"\0" * 8
    except ValueError:
        prefix = b"\0" * 8
    return _INDEX.pack(
        offset,
        length,
        ts,
        _crc(str(record.get("event") or "")),
        _crc(str(record.get("actor") or "")),
        _crc(record.get("run_id") if isinstance(record.get("run_id"), str) else None),
        prefix,
    )


def _index_lines(path: Path, start: int) -> Iterator[bytes]:
    """Index entries for every complete line from byte ``start`` to the end of the log."""
    with path.open("rb") as fh:
        fh.seek(start)
        offset = start
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # a torn tail is not indexed
            try:
                data = json.loads(raw)
                if not isinstance(data, dict):
                    data = {}
            except ValueError:
                data = {}
            yield _pack_entry(offset, len(raw), data)
            offset += len(raw)


def _rebuild_index(path: Path, index_path: Path, *, from_entries: int = 0, start: int = 0) -> None:
    mode = "r+b" if from_entries and index_path.exists() else "wb"
    with index_path.open(mode) as out:
        out.seek(from_entries * _INDEX.size)
        out.truncate()
        if path.is_file():
            batch: list[bytes] = []
            for entry in _index_lines(path, start):
                batch.append(entry)
                if len(batch) >= _INDEX_CHUNK:
                    out.write(b"".join(batch))
                    batch.clear()
            out.write(b"".join(batch))


# -- reader -------------------------------------------------------------------------------------


class AuditReader:
    """Paginated, filtered, read-mostly access to an audit folder (what ``GET /audit`` uses).

    >>> page = AuditReader("artifacts/audit").query(run_id=run_id, limit=50)  # doctest: +SKIP
    >>> page.records, page.next_cursor                                        # doctest: +SKIP
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOG_NAME
        self.index_path = self.directory / INDEX_NAME
        self._logger = AuditLogger(directory)

    def count(self) -> int:
        """Number of complete lines in the log (from the index, O(1) once it is current)."""
        self._sync_index()
        return self._entries()

    def _entries(self) -> int:
        try:
            return self.index_path.stat().st_size // _INDEX.size
        except FileNotFoundError:
            return 0

    def _sync_index(self, *, force: bool = False) -> None:
        """Bring the sidecar index in step with the log (append missing entries or rebuild)."""
        if not self.path.is_file():
            return
        log_size = self.path.stat().st_size
        if not force and self._index_current(log_size):
            return
        lock = self._logger._locked()
        try:
            log_size = self.path.stat().st_size
            if not force and self._index_current(log_size):
                return
            entries, start = self._valid_prefix() if not force else (0, 0)
            _rebuild_index(self.path, self.index_path, from_entries=entries, start=start)
        finally:
            lock.release()

    def _index_current(self, log_size: int) -> bool:
        try:
            isize = self.index_path.stat().st_size
        except FileNotFoundError:
            return log_size == 0
        if isize % _INDEX.size:
            return False
        if isize == 0:
            return log_size == 0
        with self.index_path.open("rb") as fh:
            fh.seek(isize - _INDEX.size)
            offset, length, *_ = _INDEX.unpack(fh.read(_INDEX.size))
        end = offset + length
        # A torn (unindexed) tail without newline is allowed after the last indexed line.
        if end == log_size:
            return True
        if end < log_size:
            with self.path.open("rb") as fh:
                fh.seek(end)
                return b"\n" not in fh.read(log_size - end)
        return False

    def _valid_prefix(self) -> tuple[int, int]:
        """(entries, log offset) of the index part that can be kept: its last entry must match."""
        n = self._entries()
        if n == 0:
            return 0, 0
        with self.index_path.open("rb") as fh:
            fh.seek((n - 1) * _INDEX.size)
            offset, length, _ts, _e, _a, _r, prefix = _INDEX.unpack(fh.read(_INDEX.size))
        record = self._read_at(offset, length)
        if record is None or bytes.fromhex(record.hash[:16]) != prefix:
            return 0, 0
        return n, offset + length

    def _read_at(self, offset: int, length: int) -> AuditRecord | None:
        try:
            with self.path.open("rb") as fh:
                fh.seek(offset)
                raw = fh.read(length)
            if not raw.endswith(b"\n"):
                return None
            return AuditRecord.from_dict(json.loads(raw))
        except (OSError, ValueError, GovernanceError):
            return None

    def query(
        self,
        *,
        run_id: str | None = None,
        event: str | None = None,
        actor: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        limit: int = 50,
        cursor: int | None = None,
        order: Literal["desc", "asc"] = "desc",
    ) -> AuditPage:
        """One page of records matching every given filter (exact match; ``since`` inclusive,
        ``until`` exclusive). ``order="desc"`` is newest first. Lines that do not parse are
        skipped here; :meth:`AuditLogger.verify` is where integrity is judged.
        """
        if not isinstance(limit, int) or limit < 1 or limit > 10_000:
            raise GovernanceError(f"invalid page limit {limit!r}: expected 1..10000")
        if order not in ("desc", "asc"):
            raise GovernanceError(f"invalid order {order!r}: expected 'desc' or 'asc'")
        if cursor is not None and (not isinstance(cursor, int) or cursor < 0):
            raise GovernanceError(f"invalid cursor {cursor!r}: use the next_cursor of a previous page")
        lo, hi = _ts_us(since), _ts_us(until)
        for attempt in range(2):
            self._sync_index(force=attempt == 1)
            page = self._scan(run_id, event, actor, lo, hi, limit, cursor, order)
            if page is not None:
                return page
        raise GovernanceError(f"{self.path}: the audit index could not be brought in step with the log")

    def _scan(
        self,
        run_id: str | None,
        event: str | None,
        actor: str | None,
        lo: int | None,
        hi: int | None,
        limit: int,
        cursor: int | None,
        order: str,
    ) -> AuditPage | None:
        total = self._entries()
        want_e, want_a, want_r = _crc(event) if event else None, _crc(actor) if actor else None, None
        if run_id:
            want_r = _crc(run_id)
        records: list[AuditRecord] = []
        desc = order == "desc"
        pos = (total - 1 if cursor is None else min(cursor, total - 1)) if desc else (cursor or 0)
        if total == 0 or pos < 0 or pos >= total:
            return AuditPage([], None, total)
        with self.index_path.open("rb") as idx, self.path.open("rb") as log:
            while 0 <= pos < total:
                # Read one chunk of index entries in scan direction.
                if desc:
                    first = max(0, pos - _INDEX_CHUNK + 1)
                    idx.seek(first * _INDEX.size)
                    entries = list(_INDEX.iter_unpack(idx.read((pos - first + 1) * _INDEX.size)))
                    positions = range(pos, first - 1, -1)
                    base = first
                else:
                    last = min(total - 1, pos + _INDEX_CHUNK - 1)
                    idx.seek(pos * _INDEX.size)
                    entries = list(_INDEX.iter_unpack(idx.read((last - pos + 1) * _INDEX.size)))
                    positions = range(pos, last + 1)
                    base = pos
                for p in positions:
                    offset, length, ts, ev, ac, rn, prefix = entries[p - base]
                    if (
                        (want_e is not None and ev != want_e)
                        or (want_a is not None and ac != want_a)
                        or (want_r is not None and rn != want_r)
                        or (lo is not None and ts < lo)
                        or (hi is not None and ts >= hi)
                    ):
                        continue
                    log.seek(offset)
                    raw = log.read(length)
                    try:
                        data = json.loads(raw)
                        record = AuditRecord.from_dict(data)
                    except (ValueError, GovernanceError):
                        if not raw.endswith(b"\n"):
                            return None  # index points past a changed log: rebuild and retry
                        continue
                    if bytes.fromhex(record.hash[:16]) != prefix:
                        return None  # stale index (log rewritten or repaired): rebuild and retry
                    if (
                        (event and record.event != event)
                        or (actor and record.actor != actor)
                        or (run_id and record.run_id != run_id)
                    ):
                        continue  # CRC collision
                    records.append(record)
                    if len(records) == limit:
                        nxt = p - 1 if desc else p + 1
                        return AuditPage(records, nxt if 0 <= nxt < total else None, total)
                pos = positions[-1] - 1 if desc else positions[-1] + 1
        return AuditPage(records, None, total)
