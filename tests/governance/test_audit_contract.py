"""The audit log's small contracts that a silent change would break: the genesis link, how field
values are stored, the JSON forms the API and CLI print, the reader's argument checks, and the
proofs refusing a record, leaf or root that is not the one proven."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath

import pytest

from provenir.core.errors import GovernanceError
from provenir.governance import audit as audit_module
from provenir.governance.audit import (
    AuditLogger,
    AuditPage,
    AuditReader,
    AuditVerification,
    default_actor,
)


def _stored(directory: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (directory / "audit.jsonl").read_text(encoding="utf-8").splitlines()]


def _steps(folder: Path, n: int) -> AuditLogger:
    """A log of ``n`` records ``step`` by actor ``a``, field ``i`` = 0..n-1."""
    logger = AuditLogger(folder)
    for i in range(n):
        logger.log("step", actor="a", i=i)
    return logger


def test_the_first_record_links_to_sixty_four_zeros_and_counts_from_one(tmp_path: Path) -> None:
    logger = AuditLogger(tmp_path)
    first = logger.log("started", actor="a")
    second = logger.log("finished", actor="a")
    assert (first.seq, first.prev_hash) == (1, "0" * 64)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert [r["prev_hash"] for r in _stored(tmp_path)] == ["0" * 64, first.hash]


class _Colour(enum.Enum):
    RED = "red"


@dataclass
class _Point:
    x: int
    y: float


def test_field_values_are_stored_as_exact_json(tmp_path: Path) -> None:
    from provenir.core.config import RunConfig

    limit = 2**53 - 1  # JavaScript's MAX_SAFE_INTEGER: 2**53 itself is not canonical JSON
    record = AuditLogger(tmp_path).log(
        "values",
        actor="a",
        safe=limit,
        negative_safe=-limit,
        too_big=limit + 1,
        too_small=-limit - 1,
        nan=float("nan"),
        inf=float("inf"),
        colour=_Colour.RED,
        when=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        day=date(2026, 1, 2),
        where=PurePosixPath("/a/b"),
        raw=b"caf\xc3\xa9 \xff",
        tags={"b", "a"},
        point=_Point(1, 2.5),
        config=RunConfig.from_dict({"name": "audited", "max_steps": 3}),
    )
    (stored,) = _stored(tmp_path)
    fields = stored["fields"]
    assert isinstance(fields, dict) and fields == record.fields
    # Integers JSON carries exactly stay numbers; beyond them they are kept as their digits.
    assert (fields["safe"], fields["negative_safe"]) == (limit, -limit)
    assert (fields["too_big"], fields["too_small"]) == (str(limit + 1), str(-limit - 1))
    assert (fields["nan"], fields["inf"]) == ("nan", "inf")
    assert fields["colour"] == "red"
    assert (fields["when"], fields["day"]) == ("2026-01-02T03:04:05+00:00", "2026-01-02")
    assert fields["where"] == "/a/b"
    assert fields["raw"] == "café \ufffd"
    assert fields["tags"] == ["a", "b"]
    assert fields["point"] == {"x": 1, "y": 2.5}
    assert fields["config"]["name"] == "audited" and fields["config"]["max_steps"] == 3
    with pytest.raises(GovernanceError, match=r"audit field fields\.bad\.inner: cannot store a object"):
        AuditLogger(tmp_path).log("bad", actor="a", bad={"inner": object()})


def test_lists_keep_their_order_and_sets_are_sorted_whatever_the_hash_seed(tmp_path: Path) -> None:
    # A set of thirty strings practically never iterates in sorted order, whatever the hash seed.
    words = [f"w{i:02d}" for i in range(30)]
    shuffled = words[7:] + words[:7]
    record = AuditLogger(tmp_path).log(
        "values", actor="a", order=shuffled, tags=set(shuffled), frozen=frozenset(words)
    )
    (stored,) = _stored(tmp_path)
    assert stored["fields"] == record.fields
    assert record.fields["order"] == shuffled  # a list is a sequence: never reordered
    assert record.fields["tags"] == words and record.fields["frozen"] == words


def test_the_actor_defaults_to_the_environment_then_the_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    monkeypatch.setenv("PROVENIR_ACTOR", "ci-bot")
    assert default_actor() == "ci-bot"
    monkeypatch.delenv("PROVENIR_ACTOR")
    monkeypatch.setattr(getpass, "getuser", lambda: "alice")
    assert default_actor() == "alice"

    def no_user() -> str:
        raise KeyError("uid not found")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert default_actor() == "unknown"


def test_pages_and_verifications_have_the_json_forms_the_api_returns(tmp_path: Path) -> None:
    logger = _steps(tmp_path, 3)
    page = logger.query(limit=2, order="asc")
    assert isinstance(page, AuditPage)
    assert page.to_dict() == {
        "records": [r.to_dict() for r in page.records],
        "next_cursor": page.next_cursor,
        "total": 3,
    }
    assert [r["fields"]["i"] for r in page.to_dict()["records"]] == [0, 1]  # type: ignore[index]

    verification = logger.check()
    body = verification.to_dict()
    assert body["ok"] is True and body["records"] == 3 and body["problems"] == []
    assert body["torn_tail"] is False and body["tree_heads_checked"] == 0
    assert body["head_seq"] == 3 and body["tree_root"] == verification.tree_root


def test_a_fresh_verification_has_no_problems_and_summarises_the_first_three() -> None:
    fresh = AuditVerification(records=0, head_seq=0, head_hash="0" * 64)
    assert fresh.ok and not fresh.torn_tail and fresh.tree_heads_checked == 0 and fresh.summary() == ""
    three = replace(fresh, problems=["p1", "p2", "p3"])
    assert not three.ok and three.summary() == "p1; p2; p3"
    five = replace(fresh, problems=["p1", "p2", "p3", "p4", "p5"])
    assert five.summary() == "p1; p2; p3 (+2 more)"
    assert five.to_dict()["ok"] is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "invalid page limit 0"),
        ({"limit": 10_001}, "invalid page limit 10001"),
        ({"limit": "5"}, "invalid page limit '5'"),
        ({"order": "up"}, "invalid order 'up'"),
        ({"cursor": -1}, "invalid cursor -1"),
        ({"cursor": "3"}, "invalid cursor '3'"),
    ],
)
def test_the_reader_refuses_bad_paging_arguments(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    AuditLogger(tmp_path).log("one", actor="a")
    with pytest.raises(GovernanceError, match=message):
        AuditReader(tmp_path).query(**kwargs)  # type: ignore[arg-type]


def test_paging_limits_at_the_edges_are_accepted(tmp_path: Path) -> None:
    _steps(tmp_path, 3)
    reader = AuditReader(tmp_path)
    first = reader.query(limit=1, cursor=0, order="asc")
    assert [r.seq for r in first.records] == [1]
    assert len(reader.query(limit=10_000).records) == 3
    assert [r.seq for r in reader.query(limit=1).records] == [3]  # newest first by default


def test_an_inclusion_proof_fails_for_another_record_leaf_or_root(tmp_path: Path) -> None:
    _steps(tmp_path, 5)
    reader = AuditReader(tmp_path)
    proof = reader.prove(3)
    assert proof.verify() and proof.verify(proof.root)
    assert proof.to_dict()["seq"] == 3 and proof.to_dict()["record"] == proof.record
    other_root = reader.prove(3, size=4).root
    assert not proof.verify(other_root)
    assert not replace(proof, record=proof.record.replace('"i":2', '"i":9')).verify()
    # A leaf hash that is not the record's is refused even when the path and root are right.
    assert not replace(proof, leaf_hash="00" * 32).verify()
    assert not replace(proof, root="00" * 32).verify()


def test_a_consistency_proof_fails_for_other_roots(tmp_path: Path) -> None:
    _steps(tmp_path, 6)
    reader = AuditReader(tmp_path)
    proof = reader.consistency(3)
    assert proof.verify() and proof.to_dict()["old_size"] == 3 and proof.to_dict()["new_size"] == 6
    assert not replace(proof, old_root=reader.prove(1, size=2).root).verify()
    assert not replace(proof, new_root="00" * 32).verify()
    empty = reader.consistency(0, 0)
    assert (empty.old_size, empty.new_size, empty.path) == (0, 0, [])
    assert empty.old_root == empty.new_root


def test_commands_named_in_messages_point_at_the_folder(tmp_path: Path) -> None:
    store_audit = tmp_path / "artifacts" / "audit"
    elsewhere = tmp_path / "logs"
    assert (
        audit_module._verify_command(store_audit)
        == f"provenir audit verify --output-dir {store_audit.parent}"
    )
    assert audit_module._verify_command(elsewhere) == f"provenir audit verify --dir {elsewhere}"
    assert (
        audit_module._repair_command(store_audit)
        == f"provenir audit repair --output-dir {store_audit.parent}"
    )
    assert audit_module._repair_command(elsewhere) == f"provenir audit repair --dir {elsewhere}"


def test_four_problems_show_three_and_count_the_fourth() -> None:
    four = AuditVerification(records=0, head_seq=0, head_hash="0" * 64, problems=["p1", "p2", "p3", "p4"])
    assert four.summary() == "p1; p2; p3 (+1 more)"


@pytest.mark.parametrize("length", [8191, 8192, 8193, 8194, 16385, 16386])
def test_the_head_of_a_one_line_log_is_read_whole_at_every_window_boundary(
    tmp_path: Path, length: int
) -> None:
    # The last line is read backwards in windows of 8192 bytes, then 16384...: a line that ends
    # exactly where a window starts must still be read from its first byte.
    probe = AuditLogger(tmp_path / "probe").log("padded", actor="a", pad="")
    base = len((tmp_path / "probe" / "audit.jsonl").read_bytes()) - 1  # without the newline
    assert probe.seq == 1
    folder = tmp_path / str(length)
    record = AuditLogger(folder).log("padded", actor="a", pad="x" * (length - base))
    assert len((folder / "audit.jsonl").read_bytes()) == length + 1
    assert AuditLogger(folder).head() == (1, record.hash)  # a fresh logger: no cached head
    second = AuditLogger(folder).log("next", actor="a")
    assert second.prev_hash == record.hash


def test_a_writer_that_cannot_get_the_lock_in_time_refuses_to_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from filelock import FileLock

    monkeypatch.setattr(audit_module, "_LOCK_TIMEOUT_S", 0.2)  # before the logger makes its lock
    logger = AuditLogger(tmp_path)
    logger.log("first", actor="a")
    other = FileLock(str(tmp_path / "audit.lock"))  # another holder: its own open file, so flock excludes us
    with other, pytest.raises(GovernanceError, match=r"could not lock the audit log within 0s"):
        logger.log("second", actor="a")
    assert [r["event"] for r in _stored(tmp_path)] == ["first"]
    assert logger.log("second", actor="a").seq == 2


def test_a_forked_child_takes_its_own_lock_while_the_parent_holds_its(tmp_path: Path) -> None:
    import os
    import time

    logger = AuditLogger(tmp_path)
    logger.log("setup", actor="a")
    lock = logger._locked()  # held by the parent (and re-entered by its own log call below)
    try:
        pid = os.fork()
        if pid == 0:  # the child: must wait for the parent's lock, not inherit it
            code = 1
            try:
                logger.log("child", actor="a")
                code = 0
            finally:
                os._exit(code)
        time.sleep(0.5)
        logger.log("parent", actor="a")
    finally:
        lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [r["event"] for r in _stored(tmp_path)] == ["setup", "parent", "child"]
    assert logger.check().ok


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_a_link_in_place_of_any_index_file_is_refused_before_writing(tmp_path: Path, suffix: str) -> None:
    from provenir.governance.audit_index import INDEX_NAME

    folder = tmp_path / "audit"
    AuditLogger(folder).log("first", actor="a")
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    link = folder / f"{INDEX_NAME}{suffix}"
    if link.exists():
        link.unlink()
    link.symlink_to(target)
    with pytest.raises(GovernanceError, match="link"):
        AuditLogger(folder).log("second", actor="a")
    assert target.read_bytes() == b"keep"
    assert [r["event"] for r in _stored(folder)] == ["first"]


def test_tree_head_lines_that_are_not_heads_or_are_torn_are_reported(tmp_path: Path) -> None:
    logger = AuditLogger(tmp_path)
    logger.log("one", actor="a")
    logger.checkpoint()
    with (tmp_path / "checkpoints.jsonl").open("ab") as fh:
        fh.write(b'{"size": "not a head"}\n')
        fh.write(b'{"size": 1, "root"')  # torn: no newline
    heads, problems = logger.checkpoints()
    assert [h.line for h in heads] == [1]
    assert problems == [
        "checkpoints.jsonl line 2: not a tree head (edited or corrupted)",
        "checkpoints.jsonl line 3: torn (no newline); ignored",
    ]
    verification = logger.check()
    assert not verification.ok
    assert problems[0] in verification.problems and problems[1] in verification.problems
    # The newest readable head is still found behind the broken lines.
    latest = logger.latest_checkpoint()
    assert latest is not None and latest.line == 1 and latest.head == heads[0].head


def test_a_check_lists_twenty_problems_by_default_and_counts_the_rest(tmp_path: Path) -> None:
    logger = _steps(tmp_path, 30)
    path = tmp_path / "audit.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    # Every record's hash no longer matches its body: one problem per line at least.
    path.write_bytes(b"".join(line.replace(b'"i":', b'"i": ') for line in lines))
    verification = logger.check()
    assert len(verification.problems) == 21 and verification.problems[-1].startswith("... and ")
    assert len(logger.check(max_problems=5).problems) == 6


def test_the_reader_counts_what_the_log_holds_even_after_it_shrank(tmp_path: Path) -> None:
    assert AuditReader(tmp_path / "none").count() == 0
    _steps(tmp_path, 3)
    reader = AuditReader(tmp_path)
    assert reader.count() == 3
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:2]))  # rewritten shorter
    assert reader.count() == 2 and AuditReader(tmp_path).count() == 2
    assert [r.seq for r in reader.query(order="asc").records] == [1, 2]


def test_a_page_has_fifty_records_by_default(tmp_path: Path) -> None:
    _steps(tmp_path, 55)
    page = AuditReader(tmp_path).query()
    assert len(page.records) == 50 and page.total == 55 and page.next_cursor is not None


def test_reading_a_log_whose_index_is_current_never_waits_for_the_writers_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from filelock import FileLock

    monkeypatch.setattr(audit_module, "_LOCK_TIMEOUT_S", 0.2)
    _steps(tmp_path, 3)
    reader = AuditReader(tmp_path)
    assert reader.count() == 3  # brings the index in step once
    with FileLock(str(tmp_path / "audit.lock")):  # a writer holds the lock
        assert [r.seq for r in reader.query(order="asc").records] == [1, 2, 3]
        assert reader.count() == 3 and reader.prove(2).verify()
        # A torn tail (a writer mid-append, no newline yet) is not a record: still no lock needed.
        with (tmp_path / "audit.jsonl").open("ab") as fh:
            fh.write(b'{"seq": 4, "ti')
        assert [r.seq for r in reader.query(order="asc").records] == [1, 2, 3]
        # A new complete line the index has not seen needs the lock to be indexed: refused in time, not stale.
        with (tmp_path / "audit.jsonl").open("ab") as fh:
            fh.write(b'me": 1}\n')
        with pytest.raises(GovernanceError, match="could not lock the audit log"):
            reader.query()


def test_a_log_rewritten_to_the_same_size_is_reindexed_not_read_at_stale_offsets(tmp_path: Path) -> None:
    logger = _steps(tmp_path, 3)
    reader = AuditReader(tmp_path)
    assert reader.count() == 3
    path = tmp_path / "audit.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    # One byte longer, one byte shorter: same size, but every line after the first moved.
    lines[0] = lines[0][:-1] + b" \n"
    lines[2] = lines[2][:-3] + b"}\n"
    rewritten = b"".join(lines)
    assert len(rewritten) == path.stat().st_size
    path.write_bytes(rewritten)
    page = reader.query(order="asc")
    assert [r.seq for r in page.records] == [1, 2]  # the third line is no record any more: skipped
    assert not logger.check().ok


def test_proofs_of_an_empty_folder_name_the_empty_tree(tmp_path: Path) -> None:
    reader = AuditReader(tmp_path)
    with pytest.raises(GovernanceError, match="record 1 is not in the tree of 0 records"):
        reader.prove(1)
    with pytest.raises(GovernanceError, match="tree size 1 is not a tree of this log: it has 0 records"):
        reader.prove(1, size=1)


def test_the_latest_tree_head_is_numbered_by_its_line_even_past_one_mebibyte(tmp_path: Path) -> None:
    logger = AuditLogger(tmp_path)
    logger.log("one", actor="a")
    for _ in range(3):
        logger.checkpoint()
    latest = logger.latest_checkpoint()
    assert latest is not None and latest.line == 3
    heads = tmp_path / "checkpoints.jsonl"
    first = heads.read_bytes().splitlines(keepends=True)[0]
    copies = (1 << 20) // len(first) + 10  # the file grows past the 1 MiB counting window
    with heads.open("ab") as fh:
        fh.write(first * copies)
    latest = logger.latest_checkpoint()
    assert latest is not None and latest.line == 3 + copies
    assert heads.stat().st_size > 1 << 20


def test_a_proof_after_a_same_size_rewrite_is_made_from_the_reindexed_log(tmp_path: Path) -> None:
    _steps(tmp_path, 4)
    reader = AuditReader(tmp_path)
    before = reader.prove(3)
    path = tmp_path / "audit.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[0] = lines[0][:-1] + b" \n"  # every later line moves one byte...
    lines[3] = lines[3][:-3] + b"}\n"  # ...and the file keeps its size
    path.write_bytes(b"".join(lines))
    proof = reader.prove(3)
    assert proof.seq == 3 and proof.record == before.record and proof.verify()
    assert proof.root != before.root  # the first record's bytes changed: another tree
