"""CLI: provenir audit prove / consistency / checkpoint, and audit verify against sealed heads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_merkle import rfc_verify_consistency, rfc_verify_inclusion

from provenir.core.signing_keys import generate_signing_key
from provenir.core.store import RunStore
from provenir.governance import merkle
from provenir.governance.audit import LOG_NAME, AuditLogger


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    pytest.importorskip("provenir.cli.train_commands")  # the full CLI is assembled from every module
    from provenir.cli.main import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_prove_consistency_and_checkpoint_print_verifiable_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = RunStore(tmp_path)
    audit = AuditLogger(store.audit_dir)
    for i in range(12):
        audit.log("step", actor="ci", i=i)
    key = tmp_path / "signing.key"
    generate_signing_key(key)
    root = ["--output-dir", str(tmp_path)]

    code, out, err = _main(["audit", "checkpoint", "--write", "--key", str(key), *root], capsys)
    assert code == 0, err
    old = json.loads(out)
    assert old["size"] == 12 and old["signed"] is True and old["public_key"]
    for i in range(12, 30):
        audit.log("step", actor="ci", i=i)
    code, out, _ = _main(["audit", "checkpoint", "--write", *root], capsys)
    new = json.loads(out)
    assert new["size"] == 30 and new["signed"] is False  # no key: recorded, marked unsigned

    code, out, _ = _main(["audit", "prove", "5", "--size", "12", *root], capsys)
    proof = json.loads(out)
    leaf = merkle.leaf_hash(proof["record"].encode())
    assert proof["record"].encode() == (store.audit_dir / LOG_NAME).read_bytes().splitlines()[4]
    assert rfc_verify_inclusion(
        4, 12, leaf, [bytes.fromhex(h) for h in proof["path"]], bytes.fromhex(old["root"])
    )

    code, out, _ = _main(["audit", "consistency", "12", "30", *root], capsys)
    cons = json.loads(out)
    assert rfc_verify_consistency(
        12,
        30,
        bytes.fromhex(old["root"]),
        bytes.fromhex(new["root"]),
        [bytes.fromhex(h) for h in cons["path"]],
    )

    code, out, _ = _main(["audit", "checkpoint", "--note", *root], capsys)
    assert code == 0 and out.startswith("provenir-audit\n30\n")
    code, out, _ = _main(["audit", "verify", *root], capsys)
    assert code == 0 and "2 sealed tree head(s) match" in out and f"Merkle root {new['root']}" in out

    code, _, err = _main(["audit", "prove", "31", *root], capsys)
    assert code == 2 and err.strip() == "error: record 31 is not in the tree of 30 records"


def test_verify_names_the_head_a_rewritten_log_no_longer_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = AuditLogger(RunStore(tmp_path).audit_dir)
    for i in range(4):
        audit.log("step", actor="ci", i=i)
    audit.checkpoint()
    log = audit.directory / LOG_NAME
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:3]))
    code, _, err = _main(["audit", "verify", "--output-dir", str(tmp_path)], capsys)
    assert code == 2
    assert (
        "the log has 3 records but tree head #1 of checkpoints.jsonl sealed a tree of 4: records were removed"
        in err
    )
