"""The audit log's SQLite index (``audit.index.db``): a cache that must answer exactly as the log
does. Its answers are compared with a brute-force read of ``audit.jsonl`` and with an RFC 9162
Merkle tree hash computed here from the lines, never with the index's own code; its storage, its
connections and its refusals of symbolic links are checked from the outside (the files, the
process's open descriptors).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest

from provenir.core.errors import AuditTamperedError, GovernanceError
from provenir.governance import audit_index
from provenir.governance.audit import INDEX_NAME, LOG_NAME, AuditLogger, AuditReader
from provenir.governance.audit_index import AuditIndex, IndexUnreadable, timestamp_us

T = TypeVar("T")


# -- independent references -------------------------------------------------------------------


def _leaf(line: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + line).digest()


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1, as written there (recursive, no shortcuts)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _lines(folder: Path) -> list[bytes]:
    """The log's complete lines, as a plain read sees them."""
    data = (folder / LOG_NAME).read_bytes()
    return data.split(b"\n")[:-1]


def _records(folder: Path) -> list[dict[str, Any]]:
    out = []
    for line in _lines(folder):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "seq" in data:
            out.append(data)
    return out


def _seqs(page: Any) -> list[int]:
    return [r.seq for r in page.records]


def _in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new thread: connections are cached per thread, so it opens its own."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _open_index_fds(folder: Path) -> list[str]:
    """What this process's open descriptors on ``folder``'s index database point at."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder / INDEX_NAME)) and not target.endswith(("-wal", "-shm")):
            out.append(target)
    return out


def _log(folder: Path, n: int, start: int = 0) -> AuditLogger:
    logger = AuditLogger(folder)
    for i in range(start, start + n):
        logger.log(
            ("acme.alpha", "acme.beta")[i % 2],
            actor=("ann", "bob", "cy")[i % 3],
            run_id=None if i % 4 == 0 else f"run-{i % 2}",
            i=i,
        )
    return logger


def _db(folder: Path) -> sqlite3.Connection:
    return sqlite3.connect(folder / INDEX_NAME, isolation_level=None)


def _assert_answers_like_the_log(folder: Path) -> None:
    reader = AuditReader(folder)
    lines = _lines(folder)
    leaves = [_leaf(line) for line in lines]
    assert reader.count() == len(lines)
    assert list(reader.index.leaves()) == leaves
    for size in range(len(leaves) + 1):
        assert reader.index.root(size) == _mth(leaves[:size])
    records = _records(folder)
    assert _seqs(reader.query(order="asc", limit=10_000)) == [r["seq"] for r in records]
    for key, value in [
        ("event", "acme.alpha"),
        ("event", "acme.beta"),
        ("actor", "bob"),
        ("run_id", "run-1"),
        ("run_id", "run-0"),
    ]:
        want = [r["seq"] for r in records if r[key] == value]
        assert _seqs(reader.query(order="asc", limit=10_000, **{key: value})) == want, (key, value)


# -- catching up vs rebuilding ------------------------------------------------------------------


@pytest.mark.parametrize("initial", [0, 1, 5, 16, 17])
def test_catching_up_past_two_batches_answers_like_the_log_and_a_fresh_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, initial: int
) -> None:
    # Small batches and read windows, so that batch and window edges fall inside the test.
    monkeypatch.setattr(audit_index, "_BATCH", 4)
    monkeypatch.setattr(audit_index, "_READ_CHUNK", 100)
    folder = tmp_path / "audit"
    _log(folder, initial)
    assert AuditReader(folder).count() == initial
    _log(folder, 2 * 4 + 1, start=initial)
    _assert_answers_like_the_log(folder)

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copyfile(folder / LOG_NAME, fresh / LOG_NAME)
    assert AuditReader(fresh).count() == initial + 9
    rows = "SELECT pos, offset, length, ts, leaf FROM records ORDER BY pos"
    nodes = "SELECT id, hash FROM nodes ORDER BY id"
    caught_up, rebuilt = _db(folder), _db(fresh)
    try:
        assert caught_up.execute(rows).fetchall() == rebuilt.execute(rows).fetchall()
        assert caught_up.execute(nodes).fetchall() == rebuilt.execute(nodes).fetchall()
    finally:
        caught_up.close()
        rebuilt.close()


def test_catching_up_commits_a_batch_per_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_index, "_BATCH", 4)
    _log(tmp_path, 5)
    reader = AuditReader(tmp_path)
    assert reader.count() == 5
    statements: list[str] = []
    reader.index._connect().set_trace_callback(statements.append)
    try:
        _log(tmp_path, 2 * 4 + 1, start=5)
        assert reader.count() == 14
    finally:
        reader.index._connect().set_trace_callback(None)
    # 9 new lines, at most 4 per transaction: bounded memory and WAL, and not one per line.
    assert statements.count("BEGIN IMMEDIATE") == 3


def _has_marker(folder: Path) -> bool:
    conn = _db(folder)
    try:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'marker'").fetchone() is not None
    finally:
        conn.close()


def test_a_catch_up_adds_to_the_index_and_a_rewritten_last_line_rebuilds_it(tmp_path: Path) -> None:
    logger = _log(tmp_path, 20)
    reader = AuditReader(tmp_path)
    assert reader.count() == 20
    conn = _db(tmp_path)
    conn.execute("CREATE TABLE marker (x)")  # survives as long as the index file is kept
    conn.close()
    _log(tmp_path, 2, start=20)
    assert reader.count() == 22 and _has_marker(tmp_path)
    _log(tmp_path, 1, start=22)
    logger.checkpoint()  # a tree head catches up too, it does not rebuild
    assert _has_marker(tmp_path)
    _assert_answers_like_the_log(tmp_path)

    # The last line rewritten in place (same size): a catch-up must notice and start over.
    path = tmp_path / LOG_NAME
    data = path.read_bytes()
    cut = data.rindex(b'"actor":"') + len(b'"actor":"')
    data = data[:cut] + (b"X" if data[cut : cut + 1] != b"X" else b"Y") + data[cut + 1 :]
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        reader.index.sync(fd, len(data), force=False)
    finally:
        os.close(fd)
    assert not _has_marker(tmp_path)
    assert list(reader.index.leaves()) == [_leaf(line) for line in _lines(tmp_path)]


def test_a_rewrite_before_an_intact_last_line_is_read_from_the_log(tmp_path: Path) -> None:
    _log(tmp_path, 4)
    reader = AuditReader(tmp_path)
    assert reader.count() == 4
    path = tmp_path / LOG_NAME
    lines = path.read_bytes().splitlines(keepends=True)
    lines[0] = lines[0].replace(b'"actor":"ann"', b'"actor":"eve"')
    path.write_bytes(b"".join(lines))
    # The index still ends where the log ends, on an intact last line: only the read of the
    # first record shows the change, and the forced rebuild must then really rebuild.
    assert reader.query(order="asc").records[0].actor == "eve"
    proof = reader.prove(1)
    assert json.loads(proof.record)["actor"] == "eve" and proof.verify()


def test_an_emptied_log_has_no_records(tmp_path: Path) -> None:
    _log(tmp_path, 3)
    reader = AuditReader(tmp_path)
    assert reader.count() == 3
    (tmp_path / LOG_NAME).write_bytes(b"")
    assert reader.count() == 0 and AuditReader(tmp_path).count() == 0
    page = reader.query()
    assert (page.records, page.total) == ([], 0)
    assert reader.consistency(0).new_size == 0


def test_lines_that_are_not_records_are_indexed_but_never_returned_or_proven(tmp_path: Path) -> None:
    _log(tmp_path, 3)
    path = tmp_path / LOG_NAME
    first, second, third = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(first + b"\xff\xfe not utf-8\n" + b"[1, 2]\n" + b"not json\n" + second + third)
    reader = AuditReader(tmp_path)
    assert reader.count() == 6
    assert _seqs(reader.query(order="asc")) == [1, 2, 3]
    assert _seqs(reader.query(order="asc", event="acme.beta")) == [2]
    _assert_answers_like_the_log(tmp_path)
    assert reader.prove(1).verify()
    # Line 2 is no record, line 5 holds record 2: a proof "of record 5" would prove the wrong line.
    with pytest.raises(AuditTamperedError, match="line 2 holds record None, not 2"):
        reader.prove(2)
    with pytest.raises(AuditTamperedError, match="line 5 holds record 2, not 5"):
        reader.prove(5)


# -- time -------------------------------------------------------------------------------------


def test_timestamps_are_microseconds_since_the_epoch_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    assert timestamp_us(None) is None
    assert timestamp_us("1970-01-01T00:00:01.000002Z") == 1_000_002
    assert timestamp_us("1970-01-01T00:00:00Z") == 0
    aware = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    want = (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert timestamp_us(aware) == want
    assert timestamp_us(aware.astimezone(timezone(timedelta(hours=2)))) == want
    assert timestamp_us(aware.isoformat()) == want
    # A naive time is UTC, whatever the machine's zone.
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert timestamp_us(aware.replace(tzinfo=None)) == want
        assert timestamp_us("2026-03-04T05:06:07.891011") == want
    finally:
        monkeypatch.undo()
        time.tzset()
    with pytest.raises(GovernanceError, match="invalid time 'yesterday'"):
        timestamp_us("yesterday")


def test_time_filters_agree_with_the_log_for_naive_aware_and_string_bounds(tmp_path: Path) -> None:
    _log(tmp_path, 3)
    path = tmp_path / LOG_NAME
    lines = path.read_bytes().splitlines(keepends=True)
    # Spread the records over days (the reader does not check hashes; verify would object).
    days = [
        "2026-01-01T10:00:00.000000+00:00",
        "2026-01-02T10:00:00.000000+00:00",
        "2026-01-03T10:00:00.000000+00:00",
    ]
    for i, day in enumerate(days):
        record = json.loads(lines[i])
        lines[i] = lines[i].replace(record["timestamp"].encode(), day.encode())
    path.write_bytes(b"".join(lines))
    reader = AuditReader(tmp_path)
    second = datetime(2026, 1, 2, 10, tzinfo=UTC)
    for bound in (
        second,
        second.replace(tzinfo=None),
        second.astimezone(timezone(timedelta(hours=-5))),
        "2026-01-02T12:00:00+02:00",
        "2026-01-02T10:00:00Z",
    ):
        want_since = [
            r["seq"] for r in _records(tmp_path) if datetime.fromisoformat(r["timestamp"]) >= second
        ]
        want_until = [r["seq"] for r in _records(tmp_path) if datetime.fromisoformat(r["timestamp"]) < second]
        assert _seqs(reader.query(order="asc", since=bound)) == want_since == [2, 3], bound
        assert _seqs(reader.query(order="asc", until=bound)) == want_until == [1], bound


def test_a_record_whose_time_cannot_be_read_is_dated_at_the_epoch(tmp_path: Path) -> None:
    _log(tmp_path, 2)
    path = tmp_path / LOG_NAME
    first, second = path.read_bytes().splitlines(keepends=True)
    stamp = json.loads(second)["timestamp"].encode()
    path.write_bytes(first + second.replace(stamp, b"not a time".ljust(len(stamp))))
    reader = AuditReader(tmp_path)
    just_after_epoch = "1970-01-01T00:00:00.000001Z"
    assert _seqs(reader.query(until=just_after_epoch)) == [2]
    assert _seqs(reader.query(since=just_after_epoch)) == [1]


# -- Merkle nodes -------------------------------------------------------------------------------


def test_the_index_stores_every_subtree_of_sixteen_leaves_or_more_by_its_documented_id(
    tmp_path: Path,
) -> None:
    _log(tmp_path, 33)
    reader = AuditReader(tmp_path)
    assert reader.count() == 33
    leaves = [_leaf(line) for line in _lines(tmp_path)]
    conn = _db(tmp_path)
    try:
        stored = conn.execute("SELECT id, hash FROM nodes ORDER BY id").fetchall()
    finally:
        conn.close()
    # id = level << 48 | index (the module docstring): levels 4 and 5 complete at 33 leaves.
    assert stored == [
        (4 << 48 | 0, _mth(leaves[0:16])),
        (4 << 48 | 1, _mth(leaves[16:32])),
        (5 << 48 | 0, _mth(leaves[0:32])),
    ]


def test_a_missing_merkle_node_is_named_and_the_reader_rebuilds_the_index(tmp_path: Path) -> None:
    _log(tmp_path, 20)
    reader = AuditReader(tmp_path)
    assert reader.count() == 20
    conn = _db(tmp_path)
    conn.execute("DELETE FROM nodes WHERE id = ?", (4 << 48 | 0,))
    conn.execute("DELETE FROM records WHERE pos = 17")
    conn.close()
    with pytest.raises(IndexUnreadable, match=r"Merkle node 4/0 is missing; delete the index"):
        reader.index.perfect(4, 0)
    with pytest.raises(IndexUnreadable, match=r"Merkle node 1/8 is missing; delete the index"):
        reader.index.perfect(1, 8)
    assert reader.index.perfect(1, 7) == _mth([_leaf(line) for line in _lines(tmp_path)[14:16]])
    # A proof needs both: the reader rebuilds the index from the log rather than fail.
    leaves = [_leaf(line) for line in _lines(tmp_path)]
    proof = reader.consistency(3)
    assert (proof.old_root, proof.new_root) == (_mth(leaves[:3]).hex(), _mth(leaves).hex()) and proof.verify()
    conn = _db(tmp_path)
    conn.execute("DELETE FROM nodes")
    conn.close()
    inclusion = reader.prove(5)
    assert inclusion.root == _mth(leaves).hex() and inclusion.verify()


def test_an_index_corrupt_past_its_header_is_rebuilt_not_a_crash(tmp_path: Path) -> None:
    logger = _log(tmp_path, 300)
    leaves = [_leaf(line) for line in _lines(tmp_path)]
    db = tmp_path / INDEX_NAME

    def corrupt() -> None:
        assert _in_thread(lambda: AuditReader(tmp_path).count()) == 300
        conn = _db(tmp_path)  # every page into the database file, so that all can be damaged
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        conn.close()
        data = bytearray(db.read_bytes())
        assert len(data) > 3 * 4096
        for page in range(4096, len(data), 4096):  # every page but the first (header and schema)
            data[page + 64 : page + 512] = b"\xff" * 448
        db.write_bytes(bytes(data))

    corrupt()
    assert _in_thread(lambda: _seqs(AuditReader(tmp_path).query(order="asc", limit=500))) == list(
        range(1, 301)
    )
    corrupt()
    assert _in_thread(lambda: AuditReader(tmp_path).prove(40).root) == _mth(leaves).hex()
    corrupt()
    assert _in_thread(lambda: AuditReader(tmp_path).consistency(7).new_root) == _mth(leaves).hex()
    corrupt()
    # The writer's tree head too: the same root as the log's own, not a crash.
    head = _in_thread(logger.checkpoint)
    assert (head.size, head.root) == (300, _mth(leaves).hex())
    assert logger.check().ok


# -- format ---------------------------------------------------------------------------------------


def test_an_index_of_another_format_is_refused_by_name_and_rebuilt_by_the_reader(tmp_path: Path) -> None:
    _log(tmp_path, 5)
    assert AuditReader(tmp_path).count() == 5
    conn = _db(tmp_path)
    conn.execute("PRAGMA user_version = 7")
    conn.execute("DELETE FROM records WHERE pos > 0")  # what another format might hold
    conn.close()

    def fresh_count() -> int:
        return AuditIndex(tmp_path, LOG_NAME).count()

    with pytest.raises(IndexUnreadable, match=r"index format 7, expected 1\); delete it"):
        _in_thread(fresh_count)
    assert _in_thread(lambda: _seqs(AuditReader(tmp_path).query(order="asc"))) == [1, 2, 3, 4, 5]
    assert _in_thread(fresh_count) == 5


# -- connections ----------------------------------------------------------------------------------


def test_a_thread_keeps_at_most_eight_index_connections_open(tmp_path: Path) -> None:
    folders = [tmp_path / f"a{i}" for i in range(10)]
    for folder in folders:
        _log(folder, 1)

    def open_after_reading_all() -> list[int]:
        for folder in folders:
            assert AuditReader(folder).count() == 1
        return [len(_open_index_fds(folder)) for folder in folders]

    # The two used least recently are closed; the eight others stay open for the next request.
    assert _in_thread(open_after_reading_all) == [0, 0] + [1] * 8


def test_a_replaced_or_rebuilt_index_is_reopened_and_the_old_connection_closed(tmp_path: Path) -> None:
    _log(tmp_path, 3)
    reader = AuditReader(tmp_path)
    assert reader.count() == 3
    conn = reader.index._connect()
    assert reader.index._connect() is conn  # cached
    assert _open_index_fds(tmp_path) == [str(tmp_path / INDEX_NAME)]
    (tmp_path / INDEX_NAME).unlink()  # what the error message tells a user to do
    assert _seqs(reader.query(order="asc")) == [1, 2, 3]
    assert reader.index._connect() is not conn
    assert _open_index_fds(tmp_path) == [str(tmp_path / INDEX_NAME)]  # the old one was closed
    before = reader.index._connect()
    assert reader.sync(force=True)  # a rebuild: new files, and again one connection
    assert reader.index._connect() is not before
    assert _open_index_fds(tmp_path) == [str(tmp_path / INDEX_NAME)]


def test_a_forked_child_opens_its_own_index_connection_and_leaves_the_parents_alone(tmp_path: Path) -> None:
    _log(tmp_path, 3)
    reader = AuditReader(tmp_path)
    assert reader.count() == 3
    parent = reader.index._connect()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            mine = reader.index._connect()
            parent.total_changes  # noqa: B018 - raises if the child closed the parent's connection
            ok = mine is not parent and _seqs(reader.query(order="asc")) == [1, 2, 3]
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert reader.index._connect() is parent
    assert _seqs(reader.query(order="asc")) == [1, 2, 3]


def test_another_thread_reads_what_this_one_indexed(tmp_path: Path) -> None:
    _log(tmp_path, 4)
    assert AuditReader(tmp_path).count() == 4  # this thread's connection stays open, its WAL unmerged
    assert (tmp_path / f"{INDEX_NAME}-wal").stat().st_size > 0
    assert _in_thread(lambda: AuditIndex(tmp_path, LOG_NAME).count()) == 4


def test_side_files_left_by_a_deleted_index_are_not_taken_into_a_new_one(tmp_path: Path) -> None:
    _log(tmp_path, 4)
    reader = AuditReader(tmp_path)
    assert reader.count() == 4
    wal = tmp_path / f"{INDEX_NAME}-wal"
    old_wal = wal.read_bytes()
    assert old_wal
    reader.index.reset()
    # A crashed process's WAL is left, the database deleted; meanwhile the log was replaced.
    wal.write_bytes(old_wal)
    (tmp_path / LOG_NAME).unlink()
    _log(tmp_path, 2, start=10)
    assert _in_thread(lambda: AuditIndex(tmp_path, LOG_NAME).count()) == 0
    _assert_answers_like_the_log(tmp_path)


# -- links and files --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_a_reader_refuses_a_link_in_place_of_any_index_file(tmp_path: Path, suffix: str) -> None:
    folder = tmp_path / "audit"
    _log(folder, 2)
    assert AuditReader(folder).count() == 2
    AuditIndex(folder, LOG_NAME).reset()
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    (folder / f"{INDEX_NAME}{suffix}").symlink_to(target)
    with pytest.raises(GovernanceError, match=r"the audit index is a symbolic link"):
        _in_thread(lambda: AuditReader(folder).query())
    assert target.read_bytes() == b"keep"


def test_a_link_in_place_of_the_log_is_refused_by_name(tmp_path: Path) -> None:
    real = tmp_path / "real"
    _log(real, 2)
    folder = tmp_path / "audit"
    folder.mkdir()
    (folder / LOG_NAME).symlink_to(real / LOG_NAME)
    with pytest.raises(GovernanceError, match=r"audit.jsonl: the audit file is a symbolic link"):
        AuditReader(folder).query()


def test_a_folder_in_place_of_the_log_is_the_os_error_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / LOG_NAME).mkdir()
    with pytest.raises(IsADirectoryError):
        AuditLogger(tmp_path).log("acme.alpha", actor="a")
    assert os.listdir(tmp_path / LOG_NAME) == []


def test_a_new_log_is_readable_by_all_and_writable_by_its_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        _log(tmp_path, 1)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / LOG_NAME).stat().st_mode) == 0o644


# -- the reader over a log that keeps changing --------------------------------------------------


def _rewrite_after_every_sync(reader: AuditReader, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the index's syncs race a writer that rewrites the first record (same size) each time."""
    path = reader.path
    real_sync = reader.index.sync
    calls: list[int] = []

    def racing_sync(log_fd: int, log_size: int, *, force: bool) -> None:
        real_sync(log_fd, log_size, force=force)
        calls.append(force)
        data = path.read_bytes()
        i = data.index(b'"actor":"') + len(b'"actor":"')
        path.write_bytes(data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :])

    monkeypatch.setattr(reader.index, "sync", racing_sync)
    return calls


@pytest.mark.parametrize(
    "read", [lambda reader: reader.query(order="asc"), lambda reader: reader.prove(1)], ids=["query", "prove"]
)
def test_a_read_gives_up_by_name_when_the_log_changes_under_every_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read: Callable[[AuditReader], object]
) -> None:
    _log(tmp_path, 3)
    reader = AuditReader(tmp_path)
    calls = _rewrite_after_every_sync(reader, monkeypatch)
    with pytest.raises(GovernanceError, match="the audit index could not be brought in step with the log"):
        read(reader)
    assert calls == [False, True]  # caught up once, then one forced rebuild, then the error


def test_proofs_start_at_record_one_and_cover_a_one_record_log(tmp_path: Path) -> None:
    _log(tmp_path, 1)
    reader = AuditReader(tmp_path)
    with pytest.raises(GovernanceError, match="record 0 is not in the tree of 1 records"):
        reader.prove(0)
    (line,) = _lines(tmp_path)
    proof = reader.consistency(0)
    assert (proof.old_size, proof.new_size) == (0, 1)
    assert (proof.old_root, proof.new_root) == (_mth([]).hex(), _leaf(line).hex()) and proof.verify()
    assert reader.prove(1).root == _leaf(line).hex()
