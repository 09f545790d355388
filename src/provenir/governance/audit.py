"""Tamper-evident, append-only audit log: hash-chained JSONL under a Merkle tree, safe under many writers.

::

    from provenir.governance.audit import AuditLogger

    audit = AuditLogger("artifacts/audit")
    audit.log("ci.deployed", actor="ci-bot", run_id=manifest.run_id, target="staging")
    head = audit.checkpoint("signing.key")    # a signed tree head over every record so far

Files in the audit folder
-------------------------
``audit.jsonl``
    One record per line, RFC 8785 canonical JSON::

        {"actor":"ci-bot","event":"ci.deployed","fields":{"target":"staging"},
         "hash":"<sha256>","prev_hash":"<sha256 of the previous record>",
         "run_id":"...","seq":1,"timestamp":"2025-01-01T00:00:00.000000+00:00"}

    ``hash`` is the SHA-256 of the canonical JSON of every other key, and ``prev_hash`` links
    to the previous record (64 zeros for the first), so editing, deleting or reordering any
    line breaks the chain (:meth:`AuditLogger.verify`). ``seq`` counts from 1 without gaps.
    A ``run_id`` keyword is lifted to the top level so readers can filter on it; every other
    keyword goes, redacted (:mod:`provenir.core.redaction`), under ``fields``.

    The events Provenir writes (``training_completed``, ``gate_decision``, ...) each have one
    typed schema (:mod:`provenir.governance.audit_events`, ``docs/audit-events.md``) that
    :meth:`AuditLogger.log` enforces; any other name is free-form, and plugins and users put
    theirs under a namespace prefix (``ci.deployed``, ``acme:scored``).

    The lines are also the leaves of an RFC 9162 Merkle tree (:mod:`provenir.governance.merkle`;
    a leaf is the line's bytes without its newline), so any prefix of the log has a root hash,
    a record's presence has an inclusion proof (:meth:`AuditReader.prove`) and a later log's
    extension of an earlier one a consistency proof (:meth:`AuditReader.consistency`).
``checkpoints.jsonl``
    Tree heads (:class:`~provenir.core.tree_head.TreeHead`: size, root, time and an Ed25519
    signature when a key is configured), one canonical JSON line each, written by
    :meth:`AuditLogger.checkpoint` at the end of every run; the run's manifest seals the same
    head (``audit_checkpoint``). A new head is only made when the log still extends the last.
``audit.lock``
    The :mod:`filelock` lock every writer holds while it reads the chain head and appends:
    it is what makes concurrent processes produce one gap-free chain.
``audit.index.db``
    A derived SQLite index (:mod:`provenir.governance.audit_index`): line positions, filter
    columns and the Merkle tree's nodes. It is a cache, never trusted: appending a record does
    not touch it, readers and tree heads bring it in step with the log, every record read
    through it is checked against the log, and a missing, stale or unreadable index is
    rebuilt from the log.

What is detected: :meth:`AuditLogger.check` walks the chain, recomputes the Merkle root and
compares it at every size a tree head names (in ``checkpoints.jsonl`` and, given the store's
manifests folder, in every manifest): records removed after a sealed head, or a log rewritten
with recomputed chain hashes, are named with the run whose manifest sealed the head.

Durability: each record is written with a single ``write`` of the whole line followed by
``fsync``, while holding the lock, so a crash can leave at most a torn *last* line. Verify
reports it; :meth:`AuditLogger.repair` completes it if it is an intact record missing its
newline, or else moves the torn bytes to ``audit.torn-<time>.bin`` and truncates the log to the
last good record. ``log`` refuses to append after a torn line (that would bury it in the middle),
and :meth:`AuditLogger.check_ready` says so before a run writes anything.

Symbolic links: the audit folder, the log, the lock, the index and the checkpoints file must
be real; the files are opened with ``O_NOFOLLOW`` and a link is a :class:`GovernanceError`.

Reading for the REST API
------------------------
``AuditReader(dir).query(run_id=..., event=..., actor=..., since=..., until=..., limit=50,
cursor=None, order="desc")`` returns an :class:`AuditPage` (``records``, ``next_cursor``,
``total``): an index walk, whatever the log size; only the page's lines are read from the log.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, Literal

from provenir.core.errors import AuditTamperedError, GovernanceError
from provenir.core.hashing import canonical_json, sha256_json
from provenir.core.redaction import redact, redact_text
from provenir.core.tree_head import TreeHead, make_tree_head
from provenir.governance import merkle
from provenir.governance.audit_events import validate_event
from provenir.governance.audit_index import (
    INDEX_NAME,
    AuditIndex,
    IndexUnreadable,
    open_nofollow,
    refuse_link,
    timestamp_us,
)

LOG_NAME = "audit.jsonl"
LOCK_NAME = "audit.lock"
CHECKPOINTS_NAME = "checkpoints.jsonl"
GENESIS_HASH = "0" * 64
ACTOR_ENV = "PROVENIR_ACTOR"

__all__ = [
    "CHECKPOINTS_NAME",
    "GENESIS_HASH",
    "INDEX_NAME",
    "LOG_NAME",
    "AuditLogger",
    "AuditPage",
    "AuditReader",
    "AuditRecord",
    "AuditRepair",
    "AuditVerification",
    "ConsistencyProof",
    "InclusionProof",
    "RecordedHead",
]

_EVENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_LOCK_TIMEOUT_S = 120.0
_RECORD_KEYS = frozenset({"seq", "timestamp", "event", "actor", "run_id", "fields", "prev_hash", "hash"})
# RFC 8785 numbers are IEEE doubles: integers are exact only up to 2**53 - 1 (JavaScript's
# MAX_SAFE_INTEGER, the bound the rfc8785 package enforces); larger ones are stored as strings.
_MAX_SAFE_INT = 2**53 - 1


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
    """Outcome of :meth:`AuditLogger.check`.

    ``tree_root`` is the Merkle root over all ``records`` (hex); ``tree_heads_checked`` counts
    the sealed tree heads (checkpoints file and manifests) the log was compared with.
    """

    records: int
    head_seq: int
    head_hash: str
    torn_tail: bool = False
    problems: list[str] = field(default_factory=list)
    tree_root: str = merkle.EMPTY_ROOT.hex()
    tree_heads_checked: int = 0

    @property
    def ok(self) -> bool:
        """True when the chain is intact and nothing is torn."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        """The first problems on one line (what :meth:`AuditLogger.verify` raises)."""
        more = f" (+{len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        return "; ".join(self.problems[:3]) + more


@dataclass
class AuditRepair:
    """Outcome of :meth:`AuditLogger.repair`."""

    action: Literal["none", "completed_newline", "truncated"]
    removed_bytes: int = 0
    saved_to: str | None = None


@dataclass
class InclusionProof:
    """RFC 9162 inclusion proof of record ``seq`` (leaf ``seq - 1``) in the tree of ``tree_size``.

    ``record`` is the stored line (without newline): its leaf hash is
    ``SHA-256(0x00 || record as UTF-8)``. Check ``root`` against a tree head you trust (a
    manifest's ``audit_checkpoint``), not against this answer.
    """

    seq: int
    leaf_index: int
    tree_size: int
    leaf_hash: str
    root: str
    path: list[str]
    record: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (hex hashes), as ``provenir audit prove`` prints it."""
        return asdict(self)

    def verify(self, root: str | None = None) -> bool:
        """RFC 9162 section 2.1.3.2 against ``root`` (hex; default the proof's own root)."""
        leaf = merkle.leaf_hash(self.record.encode("utf-8"))
        return leaf.hex() == self.leaf_hash and merkle.verify_inclusion(
            leaf,
            self.leaf_index,
            self.tree_size,
            [bytes.fromhex(h) for h in self.path],
            bytes.fromhex(root or self.root),
        )


@dataclass
class ConsistencyProof:
    """RFC 9162 consistency proof: the tree of ``new_size`` extends the tree of ``old_size``."""

    old_size: int
    new_size: int
    old_root: str
    new_root: str
    path: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (hex hashes), as ``provenir audit consistency`` prints it."""
        return asdict(self)

    def verify(self) -> bool:
        """RFC 9162 section 2.1.4.2 over the proof's own roots."""
        return merkle.verify_consistency(
            self.old_size,
            self.new_size,
            bytes.fromhex(self.old_root),
            bytes.fromhex(self.new_root),
            [bytes.fromhex(h) for h in self.path],
        )


@dataclass
class RecordedHead:
    """A tree head as found in ``checkpoints.jsonl`` (line number, the run that wrote it)."""

    line: int
    run_id: str | None
    head: TreeHead

    @property
    def label(self) -> str:
        """How problems name it."""
        by = f" (run {self.run_id})" if self.run_id else ""
        return f"tree head #{self.line} of {CHECKPOINTS_NAME}{by}"


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


def _repair_command(directory: Path) -> str:
    """The command that repairs this folder's log (``--output-dir`` names the store above it)."""
    if directory.name == "audit":
        return f"provenir audit repair --output-dir {directory.parent}"
    return f"provenir audit repair --dir {directory}"


def _verify_command(directory: Path) -> str:
    if directory.name == "audit":
        return f"provenir audit verify --output-dir {directory.parent}"
    return f"provenir audit verify --dir {directory}"


# -- writer -------------------------------------------------------------------------------------


class AuditLogger:
    """Appends hash-chained events to ``<directory>/audit.jsonl`` (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOG_NAME
        self.index_path = self.directory / INDEX_NAME
        self.lock_path = self.directory / LOCK_NAME
        self.checkpoints_path = self.directory / CHECKPOINTS_NAME
        self.index = AuditIndex(self.directory, LOG_NAME)
        # (file size, seq, hash) after this process's last append: skips re-reading the tail
        # when nobody else wrote in between (the size would have changed).
        self._head_cache: tuple[int, int, str] | None = None
        self._lock: Any = None
        self._lock_pid = -1

    def _locked(self) -> Any:
        """Acquire the folder's file lock (created once per process: it is reused per call)."""
        from filelock import FileLock, Timeout

        refuse_link(self.directory, "audit folder")
        if self._lock is None or self._lock_pid != os.getpid():
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(self.lock_path), timeout=_LOCK_TIMEOUT_S)
            self._lock_pid = os.getpid()
        # Every file a writer may touch, checked before anything is written: filelock opens (and
        # truncates) the lock itself, SQLite its index files, so O_NOFOLLOW cannot cover those.
        for path in self._files():
            refuse_link(path, "audit file")
        try:
            self._lock.acquire()
        except Timeout:
            raise GovernanceError(
                f"{self.lock_path}: could not lock the audit log within {_LOCK_TIMEOUT_S:.0f}s"
            ) from None
        return self._lock

    def _files(self) -> list[Path]:
        return [self.lock_path, self.path, self.checkpoints_path, *self.index.files()]

    def _open(self, name: str, flags: int) -> int:
        return open_nofollow(self.directory, name, flags)

    # -- writing --------------------------------------------------------------------------------

    def log(self, event: str, actor: str | None = None, **fields: Any) -> AuditRecord:
        """Append one event and return the stored (redacted) record.

        ``event`` is a short name (letters, digits, ``_ . : / -``); ``actor`` defaults to
        :func:`default_actor`; ``run_id`` is stored at top level, other keywords under
        ``fields``. Secrets in ``actor`` and field values are redacted before writing.
        An event Provenir defines must fit its schema (:mod:`provenir.governance.audit_events`,
        ``docs/audit-events.md``); other names are free-form (plugins: ``myplugin.event``).
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
        validate_event(event, fields, run_id)
        clean_fields = redact(_jsonable(fields, "fields"))
        run_id = redact_text(run_id)[0] if run_id is not None else None

        lock = self._locked()
        try:
            fd = self._open(LOG_NAME, os.O_RDWR | os.O_APPEND | os.O_CREAT)
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
            raise GovernanceError(self._torn_message())
        try:
            last = json.loads(line)
            return int(last["seq"]), str(last["hash"])
        except (ValueError, KeyError, TypeError):
            raise AuditTamperedError(
                f"{self.path}: the last record is unreadable; run `{_verify_command(self.directory)}`"
            ) from None

    def _torn_message(self) -> str:
        return (
            f"{self.path}: the last line is torn (a writer crashed mid-write); nothing more can be "
            f"recorded until it is repaired: run `{_repair_command(self.directory)}`"
        )

    def check_ready(self) -> None:
        """Refuse early what would stop a run half-way: call before anything of the run is written.

        Raises :class:`GovernanceError` when the audit folder or a file in it is a symbolic link or
        the log's last line is torn (with the repair command), and :class:`AuditTamperedError` when
        the log no longer extends its last tree head (then no new head could be signed). Cheap:
        it reads the log's last byte and O(log n) index entries.
        """
        refuse_link(self.directory, "audit folder")
        for path in self._files():
            refuse_link(path, "audit file")
        if not self.path.is_file():
            return
        fd = self._open(LOG_NAME, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                raise GovernanceError(self._torn_message())
        finally:
            os.close(fd)
        latest = self.latest_checkpoint()
        if latest is not None:
            reader = AuditReader(self.directory)
            reader.sync()
            self._require_extends(latest, reader.count())

    def _require_extends(self, latest: RecordedHead, size: int) -> None:
        head, verify = latest.head, _verify_command(self.directory)
        if head.size > size:
            raise AuditTamperedError(
                f"{self.path}: the log has {size} records but {latest.label} covers {head.size}: records "
                f"were removed; run `{verify}`"
            )
        with self.index.snapshot():
            root = self.index.root(head.size)
        if root.hex() != head.root:
            raise AuditTamperedError(
                f"{self.path}: records 1..{head.size} no longer hash to the root of {latest.label}: the "
                f"log was rewritten; run `{verify}`"
            )

    def checkpoint(
        self, signing_key: str | os.PathLike[str] | None = None, *, run_id: str | None = None
    ) -> TreeHead:
        """Record a tree head over every complete record and return it.

        Signed with ``signing_key`` (or ``$PROVENIR_SIGNING_KEY``; an Ed25519 PEM as ``provenir
        manifest keygen`` writes), else recorded unsigned. Appended to ``checkpoints.jsonl``;
        refused (:class:`AuditTamperedError`) when the log does not extend the last head, so a
        rewritten log never gets a fresh head.
        """
        lock = self._locked()
        try:
            fd = self._open(LOG_NAME, os.O_RDONLY | os.O_CREAT)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    raise GovernanceError(self._torn_message())
                _sync(self.index, fd, size)
            finally:
                os.close(fd)
            with self.index.snapshot():
                count = self.index.count()
                root = self.index.root(count)
            latest = self.latest_checkpoint()
            if latest is not None:
                self._require_extends(latest, count)
            head = make_tree_head(count, root, signing_key)
            line = canonical_json({**head.model_dump(mode="json"), "run_id": run_id}) + b"\n"
            cfd = self._open(CHECKPOINTS_NAME, os.O_RDWR | os.O_APPEND | os.O_CREAT)
            try:
                csize = os.fstat(cfd).st_size
                if csize and os.pread(cfd, 1, csize - 1) != b"\n":
                    line = b"\n" + line  # end a torn line rather than glue this head onto it
                _write_all(cfd, line)
                os.fsync(cfd)
            finally:
                os.close(cfd)
        finally:
            lock.release()
        return head

    # -- reading --------------------------------------------------------------------------------

    def head(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the newest record (None for an empty log)."""
        if not self.path.is_file():
            return None
        fd = self._open(LOG_NAME, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return None
            line, _, complete = _read_last_line(fd, size)
        finally:
            os.close(fd)
        if not complete:
            raise GovernanceError(self._torn_message())
        try:
            last = json.loads(line)
            return int(last["seq"]), str(last["hash"])
        except (ValueError, KeyError, TypeError):
            raise AuditTamperedError(f"{self.path}: the last record is unreadable") from None

    def checkpoints(self) -> tuple[list[RecordedHead], list[str]]:
        """Every tree head in ``checkpoints.jsonl`` and the problems of lines that are not one."""
        heads: list[RecordedHead] = []
        problems: list[str] = []
        if not self.checkpoints_path.is_file():
            return heads, problems
        fd = self._open(CHECKPOINTS_NAME, os.O_RDONLY)
        with os.fdopen(fd, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    problems.append(f"{CHECKPOINTS_NAME} line {lineno}: torn (no newline); ignored")
                    break
                recorded = _parse_head(raw, lineno)
                if recorded is None:
                    problems.append(
                        f"{CHECKPOINTS_NAME} line {lineno}: not a tree head (edited or corrupted)"
                    )
                else:
                    heads.append(recorded)
        return heads, problems

    def latest_checkpoint(self) -> RecordedHead | None:
        """The newest tree head in ``checkpoints.jsonl`` (reads only the file's end)."""
        if not self.checkpoints_path.is_file():
            return None
        fd = self._open(CHECKPOINTS_NAME, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            while size > 0:
                line, offset, complete = _read_last_line(fd, size)
                if complete:
                    recorded = _parse_head(line, 0)
                    if recorded is not None:
                        # The line number is only known by counting: do it for this one line.
                        recorded.line = _count_lines(fd, offset) + 1
                        return recorded
                size = offset  # a torn or unreadable last line: the one before is the latest
        finally:
            os.close(fd)
        return None

    def query(self, **kwargs: Any) -> AuditPage:
        """Shortcut for :meth:`AuditReader.query` on this folder."""
        return AuditReader(self.directory).query(**kwargs)

    # -- integrity ------------------------------------------------------------------------------

    def check(
        self,
        *,
        expected_head: tuple[int, str] | None = None,
        manifests_dir: str | os.PathLike[str] | None = None,
        max_problems: int = 20,
    ) -> AuditVerification:
        """Walk the whole log (streamed) and report every inconsistency found.

        The chain, each record's hash, the Merkle root at the size of every tree head in
        ``checkpoints.jsonl`` and, with ``manifests_dir`` (the store's ``manifests`` folder), in
        every manifest (``audit_checkpoint``, and the older ``extra.audit_head`` anchors).
        """
        from provenir.governance.audit_check import check_log

        return check_log(
            self,
            expected_head=expected_head,
            manifests_dir=Path(manifests_dir) if manifests_dir is not None else None,
            max_problems=max_problems,
        )

    def verify(
        self,
        *,
        expected_head: tuple[int, str] | None = None,
        manifests_dir: str | os.PathLike[str] | None = None,
    ) -> AuditVerification:
        """Like :meth:`check` but raises :class:`AuditTamperedError` when anything is wrong."""
        result = self.check(expected_head=expected_head, manifests_dir=manifests_dir)
        if not result.ok:
            raise AuditTamperedError(f"{self.path}: {result.summary()}")
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
            fd = self._open(LOG_NAME, os.O_RDWR)
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
                    name = f"audit.torn-{stamp}-{os.getpid()}.bin"
                    sfd = self._open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                    try:
                        _write_all(sfd, tail)
                        os.fsync(sfd)
                    finally:
                        os.close(sfd)
                    os.ftruncate(fd, offset)
                    os.fsync(fd)
                    action, saved, removed = "truncated", str(self.directory / name), len(tail)
                self._head_cache = None
                _sync(self.index, fd, os.fstat(fd).st_size)
            finally:
                os.close(fd)
        finally:
            lock.release()
        # The repair itself is an auditable event (logged after the lock is released).
        self.log("audit_repaired", action=action, removed_bytes=removed, saved_to=saved)
        return AuditRepair(action, removed, saved)


def _sync(index: AuditIndex, fd: int, size: int, *, force: bool = False) -> None:
    """Catch the index up with the log (caller holds the lock); an unreadable one is rebuilt."""
    try:
        index.sync(fd, size, force=force)
    except IndexUnreadable:
        index.sync(fd, size, force=True)  # deletes the unreadable files and rebuilds them


def _parse_head(raw: bytes, lineno: int) -> RecordedHead | None:
    try:
        data = json.loads(raw)
        run_id = data.pop("run_id", None)
        if run_id is not None and not isinstance(run_id, str):
            return None
        return RecordedHead(lineno, run_id, TreeHead.model_validate(data))
    except (ValueError, TypeError, AttributeError):  # pydantic's ValidationError is a ValueError
        return None


def _count_lines(fd: int, end: int) -> int:
    count, offset = 0, 0
    while offset < end:
        chunk = os.pread(fd, min(1 << 20, end - offset), offset)
        if not chunk:
            break
        count += chunk.count(b"\n")
        offset += len(chunk)
    return count


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


# -- reader -------------------------------------------------------------------------------------


class AuditReader:
    """Paginated, filtered, read-mostly access to an audit folder, and its Merkle proofs.

    >>> page = AuditReader("artifacts/audit").query(run_id=run_id, limit=50)  # doctest: +SKIP
    >>> page.records, page.next_cursor                                        # doctest: +SKIP
    >>> AuditReader("artifacts/audit").prove(17).to_dict()                    # doctest: +SKIP
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOG_NAME
        self._logger = AuditLogger(directory)
        self.index = self._logger.index

    def count(self) -> int:
        """Number of complete lines in the log (from the index, once it is current)."""
        if not self.sync():
            return 0
        return self.index.count()

    def sync(self, *, force: bool = False) -> bool:
        """Bring the index in step with the log; False when there is no log at all."""
        if not self.path.is_file():
            refuse_link(self.directory, "audit folder")
            return False
        fd = self._logger._open(LOG_NAME, os.O_RDONLY)
        try:
            if not force and self._index_current(fd, os.fstat(fd).st_size):
                return True
            lock = self._logger._locked()
            try:
                size = os.fstat(fd).st_size
                if force or not self._index_current(fd, size):
                    _sync(self.index, fd, size, force=force)
            finally:
                lock.release()
        finally:
            os.close(fd)
        return True

    def _index_current(self, fd: int, log_size: int) -> bool:
        try:
            last = self.index.last()
        except IndexUnreadable:
            return False
        end = 0 if last is None else last.offset + last.length
        if end > log_size:
            return False
        # A torn (unindexed) tail without newline is allowed after the last indexed line.
        while end < log_size:
            chunk = os.pread(fd, min(1 << 16, log_size - end), end)
            if not chunk or b"\n" in chunk:
                return False
            end += len(chunk)
        return True

    def _line(self, fd: int, offset: int, length: int) -> bytes | None:
        raw = os.pread(fd, length, offset)
        return raw[:-1] if len(raw) == length and raw.endswith(b"\n") else None

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
        lo, hi = timestamp_us(since), timestamp_us(until)
        for rebuild in (False, True):
            if not self.sync(force=rebuild):
                return AuditPage([], None, 0)
            try:
                page = self._page(run_id, event, actor, lo, hi, limit, cursor, order == "desc")
            except IndexUnreadable:
                page = None  # a corrupt page of the index: rebuilt by the forced sync
            if page is not None:
                return page
        raise GovernanceError(f"{self.path}: the audit index could not be brought in step with the log")

    def _page(
        self,
        run_id: str | None,
        event: str | None,
        actor: str | None,
        lo: int | None,
        hi: int | None,
        limit: int,
        cursor: int | None,
        desc: bool,
    ) -> AuditPage | None:
        with self.index.snapshot():
            total = self.index.count()
            rows = self.index.rows(
                run_id=run_id or None,
                event=event or None,
                actor=actor or None,
                lo=lo,
                hi=hi,
                limit=limit + 1,
                cursor=cursor,
                desc=desc,
            )
        records: list[AuditRecord] = []
        fd = self._logger._open(LOG_NAME, os.O_RDONLY)
        try:
            for row in rows[:limit]:
                line = self._line(fd, row.offset, row.length)
                if line is None or merkle.leaf_hash(line) != row.leaf:
                    return None  # the log changed under the index (rewritten, repaired): rebuild
                try:
                    records.append(AuditRecord.from_dict(json.loads(line)))
                except (ValueError, GovernanceError):
                    continue  # not a record: verify reports it
        finally:
            os.close(fd)
        next_cursor = rows[limit].pos if len(rows) > limit else None
        return AuditPage(records, next_cursor, total)

    # -- proofs -----------------------------------------------------------------------------------

    def _size(self, size: int | None, what: str) -> int:
        count = self.index.count() if self.sync() else 0
        if size is None:
            return count
        if not isinstance(size, int) or size < 0 or size > count:
            raise GovernanceError(f"{what} {size!r} is not a tree of this log: it has {count} records")
        return size

    def prove(self, seq: int, size: int | None = None) -> InclusionProof:
        """Inclusion proof of record ``seq`` in the tree of the first ``size`` records (default: all)."""
        tree_size = self._size(size, "tree size")
        if not isinstance(seq, int) or not 1 <= seq <= tree_size:
            raise GovernanceError(f"record {seq!r} is not in the tree of {tree_size} records")
        for rebuild in (False, True):
            if rebuild:
                self.sync(force=True)  # the log changed under the index, or the index is unreadable
            try:
                with self.index.snapshot():
                    row = self.index.rows(
                        run_id=None,
                        event=None,
                        actor=None,
                        lo=None,
                        hi=None,
                        limit=1,
                        cursor=seq - 1,
                        desc=True,
                    )[0]
                    path = merkle.inclusion_path(self.index, seq - 1, tree_size)
                    root = self.index.root(tree_size)
            except IndexUnreadable:
                continue
            fd = self._logger._open(LOG_NAME, os.O_RDONLY)
            try:
                line = self._line(fd, row.offset, row.length)
            finally:
                os.close(fd)
            if line is not None and merkle.leaf_hash(line) == row.leaf:
                break
        else:
            raise GovernanceError(f"{self.path}: the audit index could not be brought in step with the log")
        try:
            stored_seq = json.loads(line).get("seq")
        except (ValueError, AttributeError):
            stored_seq = None
        if stored_seq != seq:
            raise AuditTamperedError(
                f"{self.path}: line {seq} holds record {stored_seq!r}, not {seq}: the log is not intact; "
                f"run `{_verify_command(self.directory)}`"
            )
        return InclusionProof(
            seq=seq,
            leaf_index=seq - 1,
            tree_size=tree_size,
            leaf_hash=row.leaf.hex(),
            root=root.hex(),
            path=[h.hex() for h in path],
            record=line.decode("utf-8"),
        )

    def consistency(self, old: int, new: int | None = None) -> ConsistencyProof:
        """Consistency proof that the tree of ``new`` records (default: all) extends that of ``old``."""
        new_size = self._size(new, "new size")
        if not isinstance(old, int) or not 0 <= old <= new_size:
            raise GovernanceError(f"old size {old!r} must be between 0 and the new size {new_size}")
        if new_size == 0:  # no log at all: nothing but the empty tree
            empty = merkle.EMPTY_ROOT.hex()
            return ConsistencyProof(0, 0, empty, empty, [])
        try:
            return self._consistency(old, new_size)
        except IndexUnreadable:
            self.sync(force=True)  # rebuilt from the log
            return self._consistency(old, new_size)

    def _consistency(self, old: int, new_size: int) -> ConsistencyProof:
        with self.index.snapshot():
            path = merkle.consistency_path(self.index, old, new_size)
            old_root, new_root = self.index.root(old), self.index.root(new_size)
        return ConsistencyProof(old, new_size, old_root.hex(), new_root.hex(), [h.hex() for h in path])

    def latest_checkpoint(self) -> RecordedHead | None:
        """The newest tree head recorded in ``checkpoints.jsonl`` (None when there is none)."""
        return self._logger.latest_checkpoint()
