"""The audit log as a verifiable log: proofs, signed tree heads, truncation and forged appends
after a sealed head, symbolic links, torn tails. Proofs are checked with the RFC 9162
verifiers transcribed in ``test_merkle.py`` and with pymerkle, never with our own verifier only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pymerkle
import pytest
from test_merkle import rfc_verify_consistency, rfc_verify_inclusion

from provenir.core.errors import AuditTamperedError, GovernanceError
from provenir.core.hashing import canonical_json, sha256_json
from provenir.core.manifest import RunManifest
from provenir.core.signing_keys import generate_signing_key
from provenir.core.store import RunStore
from provenir.core.tree_head import TreeHead
from provenir.governance.audit import CHECKPOINTS_NAME, INDEX_NAME, LOG_NAME, AuditLogger, AuditReader

RUN = "123e4567-e89b-42d3-a456-426614174000"


def _lines(d: Path) -> list[bytes]:
    return (d / LOG_NAME).read_bytes().splitlines()


def _drop_index(d: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (d / f"{INDEX_NAME}{suffix}").unlink(missing_ok=True)


def _store_with_log(tmp_path: Path, n: int) -> tuple[RunStore, AuditLogger]:
    store = RunStore(tmp_path / "artifacts")
    audit = AuditLogger(store.audit_dir)
    for i in range(n):
        audit.log("step", actor="tester", run_id=RUN, i=i)
    return store, audit


def _seal_in_manifest(store: RunStore, head: TreeHead, run_id: str = RUN) -> None:
    """A run manifest that sealed ``head`` (what the run driver writes at the end of a run)."""
    manifest = RunManifest(
        run_id=run_id,
        name="sealed",
        backend="stub",
        algorithm="sft",
        config_hash="c" * 64,
        dataset_hash="d" * 64,
        seed=0,
        config={},
        audit_checkpoint=head,
    ).seal()
    path = store.manifest_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest.save(path)


def _forge(directory: Path, keep: int, appended: int) -> None:
    """Cut the log to ``keep`` records and append ``appended`` records whose chain hashes are
    recomputed: a chain that verifies on its own."""
    lines = _lines(directory)[:keep]
    prev = json.loads(lines[-1])
    for i in range(appended):
        record = {
            "seq": prev["seq"] + 1,
            "timestamp": prev["timestamp"],
            "event": "step",
            "actor": "tester",
            "run_id": RUN,
            "fields": {"i": 1000 + i},
            "prev_hash": prev["hash"],
        }
        record["hash"] = sha256_json(record)
        lines.append(canonical_json(record))
        prev = record
    (directory / LOG_NAME).write_bytes(b"\n".join(lines) + b"\n")


# -- proofs -------------------------------------------------------------------------------------


def test_proofs_of_every_record_verify_against_the_sealed_roots(tmp_path: Path) -> None:
    store, audit = _store_with_log(tmp_path, 23)
    first = audit.checkpoint()
    for i in range(23, 40):
        audit.log("step", actor="tester", i=i)
    second = audit.checkpoint()
    lines = _lines(audit.directory)
    reference = pymerkle.InmemoryTree(algorithm="sha256")
    for line in lines:
        reference.append_entry(line)
    assert (first.size, second.size) == (23, 40)
    assert bytes.fromhex(first.root) == reference.get_root(23)
    assert bytes.fromhex(second.root) == reference.get_root(40)

    reader = AuditReader(audit.directory)
    for head in (first, second):
        for seq in range(1, head.size + 1):
            proof = reader.prove(seq, head.size).to_dict()
            leaf = hashlib.sha256(b"\x00" + proof["record"].encode()).digest()
            assert proof["record"].encode() == lines[seq - 1] and leaf.hex() == proof["leaf_hash"]
            path = [bytes.fromhex(h) for h in proof["path"]]
            assert rfc_verify_inclusion(seq - 1, head.size, leaf, path, bytes.fromhex(head.root)), seq
    # The consistency proof between the two heads verifies: the later log extends the earlier one.
    proof = reader.consistency(first.size, second.size)
    assert (proof.old_root, proof.new_root) == (first.root, second.root)
    assert rfc_verify_consistency(
        first.size,
        second.size,
        bytes.fromhex(first.root),
        bytes.fromhex(second.root),
        [bytes.fromhex(h) for h in proof.path],
    )
    # Proofs come from the index, which is a cache: rebuilt from the log, it gives the same.
    before = reader.prove(7, 23).to_dict()
    _drop_index(audit.directory)
    assert AuditReader(audit.directory).prove(7, 23).to_dict() == before


def test_index_kept_by_writers_equals_one_rebuilt_from_the_log(tmp_path: Path) -> None:
    _, audit = _store_with_log(tmp_path, 70)  # written record by record by the logger
    reader = AuditReader(audit.directory)
    reference = pymerkle.InmemoryTree(algorithm="sha256")
    for line in _lines(audit.directory):
        reference.append_entry(line)
    incremental = [reader.consistency(size, 70).old_root for size in range(1, 71)]
    assert incremental == [reference.get_root(size).hex() for size in range(1, 71)]
    _drop_index(audit.directory)
    rebuilt = AuditReader(audit.directory)
    assert [rebuilt.consistency(size, 70).old_root for size in range(1, 71)] == incremental


def test_proof_arguments_outside_the_log_are_refused(tmp_path: Path) -> None:
    _, audit = _store_with_log(tmp_path, 5)
    reader = AuditReader(audit.directory)
    with pytest.raises(GovernanceError, match="not in the tree of 5"):
        reader.prove(6)
    with pytest.raises(GovernanceError, match="it has 5 records"):
        reader.prove(1, 9)
    with pytest.raises(GovernanceError, match="old size 4"):
        reader.consistency(4, 3)


# -- tree heads ---------------------------------------------------------------------------------


def test_signed_tree_head_is_a_c2sp_signed_note(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = tmp_path / "signing.key"
    generate_signing_key(key)
    _, audit = _store_with_log(tmp_path, 3)
    head = audit.checkpoint(key, run_id=RUN)
    assert head.signed and head.signature_state() == "valid"
    latest = audit.latest_checkpoint()
    assert latest is not None and latest.head == head and latest.run_id == RUN and latest.line == 1

    # Check the note by hand, as a C2SP verifier does: text, blank line, "— name base64(id||sig)".
    note = head.to_note()
    text, _, signature_line = note.partition("\n\n")
    origin, size, root_b64, _timestamp = text.split("\n")
    assert (origin, int(size), base64.b64decode(root_b64).hex()) == ("provenir-audit", 3, head.root)
    dash, name, blob = signature_line.split()
    assert dash == "\u2014" and name == "provenir-audit"
    raw = base64.b64decode(blob)
    public = base64.b64decode(head.public_key or "")
    assert raw[:4] == hashlib.sha256(b"provenir-audit\n\x01" + public).digest()[:4]
    Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], (text + "\n").encode())

    # An edited head no longer verifies, and verify says so.
    lines = (audit.directory / CHECKPOINTS_NAME).read_bytes().splitlines()
    edited = json.loads(lines[0])
    edited["timestamp"] = "2020-01-01T00:00:00.000000+00:00"
    (audit.directory / CHECKPOINTS_NAME).write_bytes(canonical_json(edited) + b"\n")
    problems = audit.check().problems
    assert any("signature does not verify" in p for p in problems), problems


def test_unsigned_heads_are_recorded_and_marked_unsigned(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PROVENIR_SIGNING_KEY", raising=False)
    _, audit = _store_with_log(tmp_path, 2)
    head = audit.checkpoint()
    assert not head.signed and head.signature_state() == "unsigned" and head.to_note().count("\n") == 4
    saved = json.loads((audit.directory / CHECKPOINTS_NAME).read_bytes())
    assert saved["signature"] is None and saved["size"] == 2
    assert audit.verify().tree_heads_checked == 1


# -- what verify detects ------------------------------------------------------------------------


@pytest.mark.parametrize("drop_index", [False, True])
def test_truncation_after_a_sealed_head_is_detected_and_names_the_run(
    tmp_path: Path, drop_index: bool
) -> None:
    store, audit = _store_with_log(tmp_path, 150)
    _seal_in_manifest(store, audit.checkpoint())
    (audit.directory / LOG_NAME).write_bytes(b"".join(line + b"\n" for line in _lines(audit.directory)[:120]))
    if drop_index:
        _drop_index(audit.directory)
    (audit.directory / CHECKPOINTS_NAME).unlink()  # the manifest alone is witness enough
    problems = audit.check(manifests_dir=store.manifests_dir).problems
    assert (
        f"the log has 120 records but run {RUN}'s manifest sealed a tree of 150: records were removed"
        in problems
    )
    # Without the manifests (and with the index gone) a clean cut leaves nothing to compare with.
    if drop_index:
        assert audit.check().ok


@pytest.mark.parametrize("witness", ["manifest", "checkpoints"])
def test_forged_append_after_a_sealed_head_is_detected(tmp_path: Path, witness: str) -> None:
    store, audit = _store_with_log(tmp_path, 150)
    head = audit.checkpoint()
    _seal_in_manifest(store, head)
    _forge(audit.directory, keep=140, appended=30)  # 170 records, a chain intact on its own
    _drop_index(audit.directory)  # the attacker removes the index too
    if witness == "manifest":
        (audit.directory / CHECKPOINTS_NAME).unlink()
    manifests = store.manifests_dir if witness == "manifest" else None
    result = audit.check(manifests_dir=manifests)
    label = f"run {RUN}'s manifest" if witness == "manifest" else f"tree head #1 of {CHECKPOINTS_NAME}"
    assert result.problems == [
        f"records 1..150 do not hash to the root sealed by {label}: the log was rewritten"
    ]
    assert result.records == 170 and not result.torn_tail
    # The chain alone cannot see it: that is what the tree heads are for.
    (store.manifests_dir / f"{RUN}.json").unlink()
    (audit.directory / CHECKPOINTS_NAME).unlink(missing_ok=True)
    assert audit.check().ok


def test_no_new_head_is_signed_over_a_log_that_does_not_extend_the_last(tmp_path: Path) -> None:
    _, audit = _store_with_log(tmp_path, 20)
    audit.checkpoint()
    _forge(audit.directory, keep=15, appended=10)
    with pytest.raises(AuditTamperedError, match=r"records 1..20 no longer hash .* the log was rewritten"):
        audit.checkpoint()
    with pytest.raises(AuditTamperedError, match="rewritten"):
        audit.check_ready()
    (audit.directory / LOG_NAME).write_bytes(b"".join(line + b"\n" for line in _lines(audit.directory)[:12]))
    with pytest.raises(AuditTamperedError, match="the log has 12 records but tree head #1 .* covers 20"):
        audit.checkpoint()
    assert len((audit.directory / CHECKPOINTS_NAME).read_bytes().splitlines()) == 1


def anchoring_manifest(seq: int, digest: str) -> RunManifest:
    """A sealed manifest as written before tree heads: it anchored the chain's ``(seq, hash)`` in ``extra``."""
    return RunManifest(
        run_id=RUN,
        name="old",
        backend="stub",
        algorithm="sft",
        config_hash="c" * 64,
        dataset_hash="d" * 64,
        seed=0,
        config={},
        extra={"audit_head": {"seq": seq, "hash": digest}},
    ).seal()


def test_older_manifests_anchors_are_checked_and_their_bytes_still_verify(tmp_path: Path) -> None:
    store, audit = _store_with_log(tmp_path, 10)
    seq, digest = audit.head() or (0, "")
    raw = anchoring_manifest(seq, digest).to_json()
    assert "audit_checkpoint" not in raw  # no key at all: manifests written before it still verify
    path = store.manifest_path(RUN)
    path.parent.mkdir(parents=True)
    path.write_text(raw)
    loaded, text = RunManifest.load_with_text(path)
    assert loaded.check(raw=text).ok
    assert audit.check(manifests_dir=store.manifests_dir).ok
    (audit.directory / LOG_NAME).write_bytes(b"".join(line + b"\n" for line in _lines(audit.directory)[:8]))
    problems = audit.check(manifests_dir=store.manifests_dir).problems
    assert (
        f"the log has 8 records but run {RUN}'s manifest anchored record 10: records were removed" in problems
    )


# -- symbolic links and torn tails --------------------------------------------------------------


@pytest.mark.parametrize("name", [LOG_NAME, INDEX_NAME, CHECKPOINTS_NAME, "audit.lock"])
def test_writes_refuse_a_symlinked_audit_file(tmp_path: Path, name: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    folder = tmp_path / "audit"
    folder.mkdir()
    (folder / name).symlink_to(victim)
    audit = AuditLogger(folder)
    for action in (lambda: audit.log("x", actor="t"), audit.checkpoint, audit.check_ready):
        with pytest.raises(GovernanceError, match="symbolic link"):
            action()
    assert victim.read_text() == "precious\n"


def test_a_symlinked_audit_folder_is_an_error(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    (tmp_path / "audit").symlink_to(real, target_is_directory=True)
    audit = AuditLogger(tmp_path / "audit")
    for action in (lambda: audit.log("x", actor="t"), audit.checkpoint, audit.check_ready, audit.check):
        with pytest.raises(GovernanceError, match="audit folder is a symbolic link"):
            action()
    with pytest.raises(GovernanceError, match="symbolic link"):
        AuditReader(tmp_path / "audit").query()
    assert os.listdir(real) == []


def test_torn_tail_is_reported_with_the_repair_command(tmp_path: Path) -> None:
    store, audit = _store_with_log(tmp_path, 3)
    with (audit.directory / LOG_NAME).open("ab") as fh:
        fh.write(b'{"actor":"tes')
    expected = f"run `provenir audit repair --output-dir {store.root}`"
    with pytest.raises(GovernanceError, match="torn") as excinfo:
        audit.check_ready()
    assert expected in str(excinfo.value)
    with pytest.raises(GovernanceError, match="torn"):
        audit.checkpoint()
    audit.repair()
    audit.check_ready()
    assert audit.checkpoint().size == 4  # three records and the repair's own
