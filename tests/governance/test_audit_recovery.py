"""Audit log edge cases: malformed records are reported (never a crash), and the smallest, the
longest and the torn logs are read, verified and repaired correctly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenir.core.errors import AuditTamperedError, GovernanceError
from provenir.core.hashing import canonical_json
from provenir.governance.audit import GENESIS_HASH, AuditLogger, AuditRecord

RUN = "123e4567-e89b-42d3-a456-426614174000"


def _good() -> dict[str, Any]:
    return {
        "seq": 1,
        "timestamp": "2025-01-01T00:00:00.000000+00:00",
        "event": "step",
        "actor": "tester",
        "run_id": RUN,
        "fields": {"i": 1},
        "prev_hash": GENESIS_HASH,
        "hash": "a" * 64,
    }


BAD_RECORDS = {
    "missing key": lambda d: d.pop("actor"),
    "extra key": lambda d: d.__setitem__("note", "x"),
    "seq not an int": lambda d: d.__setitem__("seq", "1"),
    "fields not an object": lambda d: d.__setitem__("fields", [1]),
    "timestamp not a string": lambda d: d.__setitem__("timestamp", 17),
    "event not a string": lambda d: d.__setitem__("event", None),
    "actor not a string": lambda d: d.__setitem__("actor", ["a"]),
    "prev_hash not a string": lambda d: d.__setitem__("prev_hash", 0),
    "hash not hex": lambda d: d.__setitem__("hash", "z" * 64),
    "hash not a string": lambda d: d.__setitem__("hash", 5),
    "hash too short": lambda d: d.__setitem__("hash", "a" * 63),
    "run_id not a string": lambda d: d.__setitem__("run_id", 12),
}


@pytest.mark.parametrize("change", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_a_record_with_wrong_keys_or_types_is_refused(change) -> None:
    data = _good()
    change(data)
    with pytest.raises(GovernanceError, match="not an audit record"):
        AuditRecord.from_dict(data)


def test_a_good_record_round_trips_and_a_non_mapping_is_refused() -> None:
    assert AuditRecord.from_dict(_good()).to_dict() == _good()
    assert AuditRecord.from_dict({**_good(), "run_id": None}).run_id is None
    with pytest.raises(GovernanceError, match="unexpected keys"):
        AuditRecord.from_dict([("seq", 1)])  # type: ignore[arg-type]


@pytest.mark.parametrize("change", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_a_malformed_record_in_the_log_is_reported_not_a_crash(tmp_path: Path, change) -> None:
    audit = AuditLogger(tmp_path)
    for i in range(3):
        audit.log("step", actor="tester", i=i)
    lines = (tmp_path / "audit.jsonl").read_bytes().splitlines(keepends=True)
    data = json.loads(lines[1])
    change(data)
    lines[1] = canonical_json(data) + b"\n"
    (tmp_path / "audit.jsonl").write_bytes(b"".join(lines))
    result = audit.check()
    assert result.records == 3 and not result.torn_tail
    assert "line 2: not a valid audit record (edited or corrupted)" in result.problems
    # The record after it is still judged (its link to an unreadable record is not blamed).
    assert not any(p.startswith("line 3") for p in result.problems)
    with pytest.raises(AuditTamperedError, match="line 2: not a valid audit record"):
        audit.verify()


def test_a_one_line_log_is_read_verified_and_extended(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path)
    first = audit.log("only", actor="tester")
    assert AuditLogger(tmp_path).head() == (1, first.hash)  # a fresh logger reads it from disk
    result = AuditLogger(tmp_path).verify()
    assert (result.records, result.head_seq, result.head_hash) == (1, 1, first.hash)
    assert AuditLogger(tmp_path).repair().action == "none"
    second = AuditLogger(tmp_path).log("next", actor="tester")
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert AuditLogger(tmp_path).verify().records == 2


def test_a_last_line_longer_than_the_read_window(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path)
    first = audit.log("small", actor="tester")
    big = audit.log("big", actor="tester", text="x" * 40_000)  # several 8 KiB windows
    assert len((tmp_path / "audit.jsonl").read_bytes().splitlines()[-1]) > 40_000
    assert AuditLogger(tmp_path).head() == (2, big.hash)
    after = AuditLogger(tmp_path).log("after", actor="tester")
    assert (after.seq, after.prev_hash) == (3, big.hash)
    assert AuditLogger(tmp_path).verify().records == 3
    assert first.hash != big.hash


def test_a_long_only_line_is_read_from_the_start_of_the_file(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path)
    only = audit.log("big", actor="tester", text="y" * 20_000)
    assert AuditLogger(tmp_path).head() == (1, only.hash)
    assert AuditLogger(tmp_path).log("after", actor="tester").prev_hash == only.hash


def test_a_torn_long_last_line_is_cut_back_to_the_record_before(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path)
    first = audit.log("small", actor="tester")
    log = tmp_path / "audit.jsonl"
    intact = log.read_bytes()
    torn = b'{"actor":"tester","event":"big","fields":{"text":"' + b"z" * 30_000
    log.write_bytes(intact + torn)
    with pytest.raises(GovernanceError, match="the last line is torn"):
        AuditLogger(tmp_path).head()
    repair = AuditLogger(tmp_path).repair()
    assert repair.action == "truncated" and repair.removed_bytes == len(torn)
    assert Path(repair.saved_to or "").read_bytes() == torn
    assert log.read_bytes().startswith(intact)
    records = AuditLogger(tmp_path).verify()
    assert records.records == 2 and AuditLogger(tmp_path).query(limit=1).records[0].prev_hash == first.hash


def test_a_log_whose_only_line_is_torn(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_bytes(b'{"actor":"tester","ev')
    audit = AuditLogger(tmp_path)
    result = audit.check()
    assert result.torn_tail and result.records == 0
    assert result.problems[0].startswith(
        "line 1: torn last line (21 bytes, no newline): run `provenir audit repair"
    )
    with pytest.raises(GovernanceError, match="the last line is torn"):
        audit.head()
    with pytest.raises(GovernanceError, match="nothing more can be recorded until it is repaired"):
        audit.log("refused", actor="tester")
    repair = audit.repair()
    assert repair.action == "truncated" and repair.removed_bytes == 21
    # Cut to nothing, then the repair itself is recorded as the first record of a fresh chain.
    head = audit.head()
    assert head is not None and head[0] == 1
    (record,) = audit.query(limit=5).records
    assert record.event == "audit_repaired" and record.prev_hash == GENESIS_HASH
    assert record.fields == {"action": "truncated", "removed_bytes": 21, "saved_to": repair.saved_to}


def test_an_only_record_that_lost_its_newline_is_completed(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path)
    only = audit.log("only", actor="tester")
    log = tmp_path / "audit.jsonl"
    log.write_bytes(log.read_bytes()[:-1])
    fresh = AuditLogger(tmp_path)
    with pytest.raises(GovernanceError, match="torn"):
        fresh.head()
    repair = fresh.repair()
    assert (repair.action, repair.removed_bytes, repair.saved_to) == ("completed_newline", 0, None)
    assert fresh.verify().records == 2
    assert fresh.query(limit=2, order="asc").records[0].hash == only.hash


def test_a_torn_record_that_does_not_follow_its_predecessor_is_cut(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path)
    audit.log("one", actor="tester")
    audit.log("two", actor="tester")
    log = tmp_path / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    # The second record, intact but for its newline, placed after itself: wrong seq and link.
    log.write_bytes(lines[0] + lines[1] + lines[1].rstrip(b"\n"))
    repair = AuditLogger(tmp_path).repair()
    assert repair.action == "truncated" and repair.removed_bytes == len(lines[1]) - 1


def test_repair_refuses_when_the_record_before_the_torn_line_is_unreadable(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_bytes(b"not a record\n" + b'{"torn')
    with pytest.raises(
        AuditTamperedError, match="the record before the torn line is unreadable; not repairing"
    ):
        AuditLogger(tmp_path).repair()
    assert log.read_bytes() == b"not a record\n" + b'{"torn'


def test_repair_of_an_empty_or_missing_log_does_nothing(tmp_path: Path) -> None:
    assert AuditLogger(tmp_path / "none").repair().action == "none"
    assert not (tmp_path / "none" / "audit.jsonl").exists()
    (tmp_path / "audit.jsonl").write_bytes(b"")
    audit = AuditLogger(tmp_path)
    repair = audit.repair()
    assert (repair.action, repair.removed_bytes, repair.saved_to) == ("none", 0, None)
    assert (tmp_path / "audit.jsonl").read_bytes() == b""  # no audit_repaired event for nothing
    assert audit.head() is None


def test_head_of_an_empty_or_unreadable_log(tmp_path: Path) -> None:
    assert AuditLogger(tmp_path / "none").head() is None
    (tmp_path / "audit.jsonl").write_bytes(b'["not", "a", "record"]\n')
    with pytest.raises(AuditTamperedError, match="the last record is unreadable"):
        AuditLogger(tmp_path).head()
    with pytest.raises(AuditTamperedError, match="the last record is unreadable"):
        AuditLogger(tmp_path).log("refused", actor="tester")
