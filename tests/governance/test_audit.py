"""Audit log: hash chain, concurrency, tamper detection, torn lines, redaction, paginated reader."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provenir.core.errors import AuditTamperedError, GovernanceError
from provenir.governance.audit import GENESIS_HASH, INDEX_NAME, AuditLogger, AuditReader

RUN = "123e4567-e89b-42d3-a456-426614174000"


def _lines(d: Path) -> list[bytes]:
    return (d / "audit.jsonl").read_bytes().splitlines(keepends=True)


def _write_lines(d: Path, lines: list[bytes]) -> None:
    (d / "audit.jsonl").write_bytes(b"".join(lines))


def _drop_index(d: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (d / f"{INDEX_NAME}{suffix}").unlink(missing_ok=True)


def _filled(tmp_path: Path, n: int = 5) -> AuditLogger:
    audit = AuditLogger(tmp_path / "audit")
    for i in range(n):
        audit.log("step", actor="tester", run_id=RUN, i=i)
    return audit


def test_seed_snippet_and_record_shape(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path / "artifacts" / "audit")
    rec = audit.log("training_complete", actor="ci-bot", run_id=RUN, steps=500)
    assert (rec.seq, rec.event, rec.actor, rec.run_id, rec.fields) == (
        1,
        "training_complete",
        "ci-bot",
        RUN,
        {"steps": 500},
    )
    assert rec.prev_hash == GENESIS_HASH
    line = json.loads(_lines(tmp_path / "artifacts" / "audit")[0])
    assert line == rec.to_dict()
    second = audit.log("eval_complete", actor="ci-bot", run_id=RUN)
    assert second.seq == 2 and second.prev_hash == rec.hash
    assert audit.verify().ok and audit.head() == (2, second.hash)


def test_actor_defaults_to_env_then_os_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audit = AuditLogger(tmp_path)
    monkeypatch.setenv("PROVENIR_ACTOR", "release-bot")
    assert audit.log("x").actor == "release-bot"
    monkeypatch.delenv("PROVENIR_ACTOR")
    actor = audit.log("x").actor
    assert actor and actor != "release-bot"


def _append_many(directory: str, worker: int, n: int) -> None:
    audit = AuditLogger(directory)
    for i in range(n):
        audit.log("append", actor=f"worker-{worker}", worker=worker, i=i)


@pytest.mark.slow
def test_eight_processes_two_thousand_appends_each_form_one_chain(tmp_path: Path) -> None:
    directory = str(tmp_path / "audit")
    ctx = mp.get_context("spawn" if os.name == "nt" else "fork")
    start = time.perf_counter()
    procs = [ctx.Process(target=_append_many, args=(directory, w, 2000)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    elapsed = time.perf_counter() - start
    audit = AuditLogger(directory)
    result = audit.verify()
    assert result.records == 16_000 and result.head_seq == 16_000
    # Every worker's records are all there, in its own order.
    per_worker: dict[int, list[int]] = {}
    for raw in _lines(Path(directory)):
        rec = json.loads(raw)
        per_worker.setdefault(rec["fields"]["worker"], []).append(rec["fields"]["i"])
    assert {w: seq for w, seq in per_worker.items()} == {w: list(range(2000)) for w in range(8)}
    assert AuditReader(directory).count() == 16_000
    assert elapsed < 120, f"16,000 locked appends took {elapsed:.1f}s"


@pytest.mark.parametrize("victim", [0, 2, 4])
def test_editing_any_record_is_detected(tmp_path: Path, victim: int) -> None:
    audit = _filled(tmp_path)
    lines = _lines(audit.directory)
    lines[victim] = lines[victim].replace(b'"i":' + str(victim).encode(), b'"i":99')
    _write_lines(audit.directory, lines)
    result = audit.check()
    assert not result.ok and any("does not match its hash" in p for p in result.problems)
    with pytest.raises(AuditTamperedError):
        audit.verify()


def test_edit_that_recomputes_the_hash_still_breaks_the_chain(tmp_path: Path) -> None:
    from provenir.core.hashing import canonical_json, sha256_json

    audit = _filled(tmp_path)
    lines = _lines(audit.directory)
    rec = json.loads(lines[1])
    rec["fields"]["i"] = 42
    rec["hash"] = sha256_json({k: v for k, v in rec.items() if k != "hash"})
    lines[1] = canonical_json(rec) + b"\n"
    _write_lines(audit.directory, lines)
    problems = audit.check().problems
    assert any("prev_hash does not link" in p for p in problems)


def test_whitespace_edit_is_detected(tmp_path: Path) -> None:
    audit = _filled(tmp_path)
    lines = _lines(audit.directory)
    lines[2] = lines[2].replace(b'"event":', b'"event": ')
    _write_lines(audit.directory, lines)
    assert any("canonical form" in p for p in audit.check().problems)


@pytest.mark.parametrize("victim", [0, 2])
def test_deleting_a_record_is_detected(tmp_path: Path, victim: int) -> None:
    audit = _filled(tmp_path)
    lines = _lines(audit.directory)
    del lines[victim]
    _write_lines(audit.directory, lines)
    problems = audit.check().problems
    assert any("deleted or reordered" in p for p in problems)


def test_deleting_the_last_record_is_detected_by_index_and_anchor(tmp_path: Path) -> None:
    audit = _filled(tmp_path)
    anchor = audit.head()
    assert AuditReader(audit.directory).count() == 5  # the index exists once anything read the log
    lines = _lines(audit.directory)
    _write_lines(audit.directory, lines[:-1])
    assert any("index lists 5 records" in p for p in audit.check().problems)
    # Even with the index removed too, an anchored head catches the truncation.
    _drop_index(audit.directory)
    assert audit.check().ok
    assert any("records were deleted" in p for p in audit.check(expected_head=anchor).problems)


def test_reordering_records_is_detected(tmp_path: Path) -> None:
    audit = _filled(tmp_path)
    lines = _lines(audit.directory)
    lines[1], lines[3] = lines[3], lines[1]
    _write_lines(audit.directory, lines)
    assert not audit.check().ok


def test_torn_last_line_is_reported_blocks_appends_and_repair_truncates_it(tmp_path: Path) -> None:
    audit = _filled(tmp_path)
    with (audit.directory / "audit.jsonl").open("ab") as fh:
        fh.write(b'{"actor":"tester","event":"st')  # a crash in the middle of a write
    result = audit.check()
    assert result.torn_tail and result.records == 5 and not result.ok
    with pytest.raises(GovernanceError, match="torn"):
        audit.log("after_crash")
    # The reader still serves the good records meanwhile.
    assert [r.seq for r in AuditReader(audit.directory).query(limit=10).records] == [5, 4, 3, 2, 1]
    repair = audit.repair()
    assert repair.action == "truncated" and repair.removed_bytes == 29
    assert Path(repair.saved_to or "").read_bytes() == b'{"actor":"tester","event":"st'
    verified = audit.verify()
    assert verified.records == 6  # the 5 good records + the audit_repaired event
    assert audit.query(limit=1).records[0].event == "audit_repaired"


def test_repair_keeps_an_intact_record_that_only_lost_its_newline(tmp_path: Path) -> None:
    audit = _filled(tmp_path)
    path = audit.directory / "audit.jsonl"
    path.write_bytes(path.read_bytes()[:-1])
    assert audit.check().torn_tail
    assert audit.repair().action == "completed_newline"
    assert audit.verify().records == 6


def test_repair_does_nothing_to_a_healthy_log_and_never_hides_tampering(tmp_path: Path) -> None:
    audit = _filled(tmp_path)
    before = (audit.directory / "audit.jsonl").read_bytes()
    assert audit.repair().action == "none"
    lines = _lines(audit.directory)
    del lines[1]
    _write_lines(audit.directory, lines)
    audit.repair()
    assert not audit.check().ok
    assert before != (audit.directory / "audit.jsonl").read_bytes()


SECRETS = {
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_" + "A1b2C3d4E5" * 4,
    "slack": "xoxb-123456789012-1234567890123-abcdefghijABCDEFGHIJklmn",
    "stripe": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "hf": "hf_" + "abcdefghijklmnopqrstuvwxyz0123456789",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\n"
    "-----END RSA PRIVATE KEY-----",
    "pw": "correct-horse-battery",
    "bearer": "abcdefghijklmnopqrstuvwxyz123456",
    "urlpw": "s3cr3t-p4ss",
}


def test_secrets_never_appear_in_the_audit_log(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path)
    audit.log(
        "config_loaded",
        actor=f"ci {SECRETS['github']}",
        run_id=RUN,
        note=f"uploaded with {SECRETS['aws']} and {SECRETS['hf']}",
        nested={"headers": {"Authorization": f"Bearer {SECRETS['bearer']}"}, "list": [SECRETS["slack"]]},
        hf_token="hf_short",
        password=SECRETS["pw"],
        command=f"deploy --key {SECRETS['stripe']} --jwt {SECRETS['jwt']}",
        url=f"https://admin:{SECRETS['urlpw']}@db.example.com/x",
        key_file=SECRETS["pem"],
        max_new_tokens=32,
        tokenizer="gpt2",
    )
    raw = (tmp_path / "audit.jsonl").read_text()
    for name, secret in SECRETS.items():
        assert secret not in raw, name
    assert "hf_short" not in raw
    fields = json.loads(raw)["fields"]
    # Ordinary values survive untouched; only the secret spans are replaced.
    assert fields["max_new_tokens"] == 32 and fields["tokenizer"] == "gpt2"
    assert fields["note"].startswith("uploaded with [REDACTED:aws_access_key] and ")
    assert fields["url"] == "https://admin:[REDACTED:url_credentials]@db.example.com/x"
    assert AuditLogger(tmp_path).verify().ok


def test_bad_input_gives_clear_governance_errors(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path)
    with pytest.raises(GovernanceError, match="invalid audit event name"):
        audit.log("bad event\nname")
    with pytest.raises(GovernanceError, match="cannot store a object"):
        audit.log("x", thing=object())
    with pytest.raises(GovernanceError, match="run_id must be a string"):
        audit.log("x", run_id=5)
    with pytest.raises(GovernanceError, match="actor"):
        audit.log("x", actor="  ")
    with pytest.raises(GovernanceError, match="invalid page limit"):
        audit.query(limit=0)
    with pytest.raises(GovernanceError, match="ISO-8601"):
        audit.query(since="yesterday")
    # Non-JSON Python values that have an obvious JSON form are stored.
    rec = audit.log(
        "x", path=tmp_path, loss=float("nan"), tags={"b", "a"}, when=datetime(2025, 1, 1, tzinfo=UTC)
    )
    assert rec.fields == {
        "path": str(tmp_path),
        "loss": "nan",
        "tags": ["a", "b"],
        "when": "2025-01-01T00:00:00+00:00",
    }


def test_reader_pages_filters_and_survives_a_lost_index(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path)
    other = "223e4567-e89b-42d3-a456-426614174000"
    for i in range(30):
        audit.log(
            "step" if i % 2 else "eval", actor="a" if i < 15 else "b", run_id=RUN if i % 3 else other, i=i
        )
    reader = AuditReader(tmp_path)
    seen: list[int] = []
    cursor = None
    while True:
        page = reader.query(limit=7, cursor=cursor)
        seen += [r.seq for r in page.records]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(range(30, 0, -1)) and page.total == 30
    asc = reader.query(order="asc", limit=100, event="eval", actor="b", run_id=other)
    assert [r.fields["i"] for r in asc.records] == [
        i for i in range(30) if i % 2 == 0 and i >= 15 and i % 3 == 0
    ]
    # Time window: everything logged before `now` and nothing after.
    now = datetime.now(UTC)
    assert len(reader.query(until=now, limit=100).records) == 30
    assert reader.query(since=now + timedelta(seconds=1)).records == []
    assert len(reader.query(since=(now - timedelta(hours=1)).isoformat(), limit=100).records) == 30
    # Losing or corrupting the index does not lose records: it is rebuilt from the log.
    _drop_index(tmp_path)
    (tmp_path / INDEX_NAME).write_bytes(b"garbage")
    assert [r.seq for r in reader.query(limit=3).records] == [30, 29, 28]
    _drop_index(tmp_path)
    assert reader.count() == 30


def test_reader_detects_a_stale_index_after_the_log_was_rewritten(tmp_path: Path) -> None:
    first = AuditLogger(tmp_path)
    for i in range(5):
        first.log("old", i=i)
    AuditReader(tmp_path).count()
    # Replace the log by a different chain of the same byte length: the index still lists the
    # old lines at the very same offsets (writers leave an index that is not in step alone).
    size = (tmp_path / "audit.jsonl").stat().st_size
    (tmp_path / "audit.jsonl").unlink()
    fresh = AuditLogger(tmp_path)
    for i in range(5):
        fresh.log("new", i=i)
    assert (tmp_path / "audit.jsonl").stat().st_size == size
    assert [r.event for r in AuditReader(tmp_path).query(limit=5).records] == ["new"] * 5


def test_reader_on_missing_folder_is_empty(tmp_path: Path) -> None:
    page = AuditReader(tmp_path / "nothing").query()
    assert page.records == [] and page.next_cursor is None and page.total == 0
    assert not (tmp_path / "nothing").exists()
