"""GET /audit/proof/{seq}, /audit/consistency, /audit/checkpoint, and /audit/verify against the
tree heads sealed in manifests: the real app, proofs checked with pymerkle."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pymerkle
import pytest
from api_support import TOKEN, make_manifest, run_id_for

from provenir.core.signing_keys import generate_signing_key
from provenir.core.tree_head import TreeHead
from provenir.governance.audit import LOG_NAME, AuditLogger


@pytest.fixture()
def logger(artifacts: Path) -> AuditLogger:
    audit = AuditLogger(artifacts / "audit")
    for i in range(37):
        audit.log("step", actor="ci", run_id=run_id_for(i % 3), i=i)
    return audit


def _reference(artifacts: Path) -> pymerkle.InmemoryTree:
    tree = pymerkle.InmemoryTree(algorithm="sha256")
    for line in (artifacts / "audit" / LOG_NAME).read_bytes().splitlines():
        tree.append_entry(line)
    return tree


def test_checkpoint_and_inclusion_proofs(
    artifacts: Path, logger: AuditLogger, serve, client, tmp_path
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    url, _ = serve(artifacts, token=TOKEN)
    missing = client.get(f"{url}/audit/checkpoint")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"

    key = tmp_path / "signing.key"
    generate_signing_key(key)
    logger.checkpoint(key, run_id=run_id_for(0))
    head = client.get(f"{url}/audit/checkpoint").json()
    assert head["size"] == 37 and head["signed"] is True and head["run_id"] == run_id_for(0)
    text = head["note"].split("\n\n")[0] + "\n"
    signature = base64.b64decode(head["note"].rstrip("\n").rsplit(" ", 1)[1])[4:]
    Ed25519PublicKey.from_public_bytes(base64.b64decode(head["public_key"])).verify(signature, text.encode())

    reference = _reference(artifacts)
    assert bytes.fromhex(head["root"]) == reference.get_root(37)
    for seq, size in ((1, None), (17, None), (37, None), (5, 8), (8, 8)):
        params = {"size": size} if size else {}
        r = client.get(f"{url}/audit/proof/{seq}", params=params)
        assert r.status_code == 200, r.text
        proof = r.json()
        tree_size = size or 37
        theirs = reference.prove_inclusion(seq, tree_size)  # pymerkle counts leaves from 1
        assert [bytes.fromhex(h) for h in proof["path"]] == theirs.path[1:]
        assert bytes.fromhex(proof["leaf_hash"]) == theirs.path[0]
        assert bytes.fromhex(proof["root"]) == reference.get_root(tree_size)
        pymerkle.verify_inclusion(bytes.fromhex(proof["leaf_hash"]), reference.get_root(tree_size), theirs)

    for seq, params in ((38, {}), (9, {"size": 8}), (1, {"size": 99})):
        r = client.get(f"{url}/audit/proof/{seq}", params=params)
        assert r.status_code == 404 and r.json()["error"] == "not_found", (seq, params)
    assert client.get(f"{url}/audit/proof/0").status_code == 422
    # Behind the same auth as the rest of the audit log.
    assert httpx.get(f"{url}/audit/proof/1").status_code == 401
    assert httpx.get(f"{url}/audit/checkpoint").status_code == 401


def test_consistency_between_two_heads(artifacts: Path, logger: AuditLogger, serve, client) -> None:
    url, _ = serve(artifacts, token=TOKEN)
    old = logger.checkpoint()
    for i in range(20):
        logger.log("later", actor="ci", i=i)
    new = logger.checkpoint()
    r = client.get(f"{url}/audit/consistency", params={"old": old.size, "new": new.size})
    assert r.status_code == 200, r.text
    proof = r.json()
    assert (proof["old_root"], proof["new_root"]) == (old.root, new.root)
    from provenir.governance import merkle

    assert merkle.verify_consistency(
        old.size,
        new.size,
        bytes.fromhex(old.root),
        bytes.fromhex(new.root),
        [bytes.fromhex(h) for h in proof["path"]],
    )
    pymerkle.verify_consistency(
        bytes.fromhex(old.root),
        bytes.fromhex(new.root),
        _reference(artifacts).prove_consistency(old.size, new.size),
    )
    assert client.get(f"{url}/audit/consistency", params={"old": 58}).status_code == 404


def test_verify_checks_heads_sealed_in_manifests(artifacts: Path, logger: AuditLogger, serve, client) -> None:
    head: TreeHead = logger.checkpoint()
    make_manifest(artifacts, 0, audit_checkpoint=head)
    url, _ = serve(artifacts, token=TOKEN)
    ok = client.get(f"{url}/audit/verify").json()
    assert ok["ok"] is True and ok["tree_heads_checked"] == 2 and ok["tree_root"] == head.root
    log = artifacts / "audit" / LOG_NAME
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:30]))
    broken = client.get(f"{url}/audit/verify").json()
    assert broken["ok"] is False
    assert (
        f"the log has 30 records but run {run_id_for(0)}'s manifest sealed a tree of 37: records were removed"
        in broken["problems"]
    )
