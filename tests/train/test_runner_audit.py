"""The run driver and the verifiable audit log: a torn log stops a run before it writes anything,
every run seals a (signed) tree head, and removing records after a run is then detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import GovernanceError
from provenir.core.manifest import RunManifest
from provenir.core.signing_keys import generate_signing_key
from provenir.core.store import RunStore
from provenir.governance.audit import CHECKPOINTS_NAME, LOG_NAME, AuditLogger, AuditReader
from provenir.train.runner import train


def _config(tmp_path: Path, **manifest: str) -> RunConfig:
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"prompt": "What is 2 plus 2?", "response": "4"}) + "\n")
    return RunConfig.from_dict(
        {
            "backend": "stub",
            "output_dir": str(tmp_path / "artifacts"),
            "data": {"path": str(data)},
            "manifest": manifest,
        }
    )


def test_a_torn_audit_tail_stops_the_run_before_any_manifest(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = RunStore(config.output_dir)
    AuditLogger(store.audit_dir).log("earlier", actor="t")
    with (store.audit_dir / LOG_NAME).open("ab") as fh:
        fh.write(b'{"actor":"t","ev')  # a writer crashed here
    with pytest.raises(GovernanceError) as excinfo:
        train(config)
    assert f"provenir audit repair --output-dir {store.root}" in str(excinfo.value)
    assert not store.manifests_dir.exists() and not store.runs_dir.exists()  # no orphan `running` manifest
    AuditLogger(store.audit_dir).repair()
    assert train(config).status == "completed"


def test_every_run_seals_a_signed_tree_head_and_cut_records_name_the_run(tmp_path: Path) -> None:
    key = tmp_path / "signing.key"
    generate_signing_key(key)
    config = _config(tmp_path, signing_key_path=str(key))
    store = RunStore(config.output_dir)
    first = train(config)
    second = train(config)
    for manifest in (first, second):
        loaded, raw = RunManifest.load_with_text(store.manifest_path(manifest.run_id))
        assert loaded.check(raw=raw).ok and loaded.audit_checkpoint == manifest.audit_checkpoint
    head = second.audit_checkpoint
    assert head is not None and head.signature_state() == "valid"
    assert second.signature is not None and head.public_key == second.signature.public_key
    # The second run's head covers the first run entirely (with the attestation its signing key
    # wrote) and its own start record.
    events = [r.event for r in AuditReader(store.audit_dir).query(order="asc", limit=head.size).records]
    assert events == ["training_started", "training_completed", "attestation_written", "training_started"]
    # A head is also recorded after each run's last record.
    heads = (store.audit_dir / CHECKPOINTS_NAME).read_bytes().splitlines()
    assert [json.loads(h)["size"] for h in heads] == [1, 3, 4, 6]
    audit = AuditLogger(store.audit_dir)
    assert audit.verify(manifests_dir=store.manifests_dir).tree_heads_checked == 6

    # Cut the second run's records off the log (and its own record of the cut).
    lines = (store.audit_dir / LOG_NAME).read_bytes().splitlines(keepends=True)
    (store.audit_dir / LOG_NAME).write_bytes(b"".join(lines[:3]))
    (store.audit_dir / CHECKPOINTS_NAME).unlink()
    problems = audit.check(manifests_dir=store.manifests_dir).problems
    assert (
        f"the log has 3 records but run {second.run_id}'s manifest sealed a tree of 4: records were removed"
        in problems
    )
