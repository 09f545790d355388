"""The audit log's full check names each way its witnesses disagree with the log: an edited tree
head in a manifest, a record an older manifest anchored that was rewritten, an index whose
hashes differ from the log's, an expected head the chain does not hold; and it accepts the head
of the empty tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_audit_merkle import (
    RUN,
    _drop_index,
    _forge,
    _lines,
    _seal_in_manifest,
    _store_with_log,
    anchoring_manifest,
)

from provenir.core.store import RunStore
from provenir.core.tree_head import TreeHead
from provenir.governance.audit import CHECKPOINTS_NAME, LOG_NAME, AuditLogger
from provenir.governance.merkle import EMPTY_ROOT

LABEL = f"run {RUN}'s manifest"


@pytest.fixture(autouse=True)
def _unsigned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVENIR_SIGNING_KEY", raising=False)


def _anchor_in_manifest(store: RunStore, seq: int, digest: str) -> None:
    """An older manifest that anchored the chain's ``(seq, hash)`` in ``extra``, saved in ``store``."""
    manifest = anchoring_manifest(seq, digest)
    path = store.manifest_path(RUN)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest.save(path)


def _record_hash(directory: Path, seq: int) -> str:
    return str(json.loads(_lines(directory)[seq - 1])["hash"])


def test_an_edited_tree_head_in_a_manifest_is_named(tmp_path: Path) -> None:
    store, audit = _store_with_log(tmp_path, 4)
    _seal_in_manifest(store, audit.checkpoint())
    assert audit.check(manifests_dir=store.manifests_dir).ok
    path = store.manifest_path(RUN)
    data = json.loads(path.read_text())
    data["audit_checkpoint"]["root"] = "not a root"
    path.write_text(json.dumps(data))
    (audit.directory / CHECKPOINTS_NAME).unlink()  # the manifest is the only witness left
    result = audit.check(manifests_dir=store.manifests_dir)
    assert result.problems == [f"{LABEL}: audit_checkpoint is not a tree head (edited)"]
    assert not result.ok and result.tree_heads_checked == 0


def test_a_head_of_the_empty_tree_is_checked_against_the_empty_root(tmp_path: Path) -> None:
    """A run that sealed a head before any record was written: that head stays true as the log grows."""
    store = RunStore(tmp_path / "artifacts")
    audit = AuditLogger(store.audit_dir)
    empty = audit.checkpoint()
    assert (empty.size, empty.root) == (0, EMPTY_ROOT.hex())
    _seal_in_manifest(store, empty)
    for i in range(3):
        audit.log("step", actor="tester", i=i)
    result = audit.check(manifests_dir=store.manifests_dir)
    assert result.ok and result.records == 3 and result.tree_heads_checked == 2, result.problems
    # A head of size 0 naming another root is a rewritten (empty) log all the same.
    forged = TreeHead(size=0, root="ab" * 32, timestamp=empty.timestamp)
    _seal_in_manifest(store, forged)
    assert audit.check(manifests_dir=store.manifests_dir).problems == [
        f"records 1..0 do not hash to the root sealed by {LABEL}: the log was rewritten"
    ]


def test_an_anchored_record_that_was_rewritten_is_named(tmp_path: Path) -> None:
    store, audit = _store_with_log(tmp_path, 10)
    _anchor_in_manifest(store, 5, _record_hash(audit.directory, 5))
    assert audit.check(manifests_dir=store.manifests_dir).ok
    # Records from 4 on are replaced by a chain that verifies on its own: only the anchor sees it.
    _forge(audit.directory, keep=3, appended=7)
    _drop_index(audit.directory)
    result = audit.check(manifests_dir=store.manifests_dir)
    assert result.problems == [f"record 5 is not the one {LABEL} anchored: the log was rewritten"]
    assert result.records == 10


def test_an_index_that_disagrees_with_the_logs_hashes_is_named(tmp_path: Path) -> None:
    _, audit = _store_with_log(tmp_path, 10)
    assert audit.query(limit=1).total == 10  # a reader indexes the log
    assert audit.check().ok
    _forge(audit.directory, keep=7, appended=3)  # same length, a chain intact on its own
    result = audit.check()
    assert result.problems == ["the index disagrees with the log's record hashes: records were rewritten"]
    assert result.records == 10


def test_an_expected_head_must_be_in_the_chain(tmp_path: Path) -> None:
    _, audit = _store_with_log(tmp_path, 5)
    third = _record_hash(audit.directory, 3)
    assert audit.check(expected_head=(3, third)).ok
    wrong = "f" * 64
    assert audit.check(expected_head=(3, wrong)).problems == [
        f"anchored head seq 3 hash {wrong[:12]}... is not in the chain"
    ]
    # Record 3 deleted: the log still has at least 3 records, but none is the expected one.
    lines = _lines(audit.directory)
    (audit.directory / LOG_NAME).write_bytes(b"".join(line + b"\n" for line in lines[:2] + lines[3:]))
    _drop_index(audit.directory)
    problems = audit.check(expected_head=(3, third)).problems
    assert f"anchored head seq 3 hash {third[:12]}... is not in the chain" in problems
    assert "line 3: seq 4 follows seq 2 (deleted or reordered records)" in problems
