"""The audit folder of a store: found (or refused), checked against the store's manifests, its latest head."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenir.core.errors import GovernanceError
from provenir.core.store import RunStore
from provenir.governance.audit import AuditLogger
from provenir.governance.audit_folder import (
    check_audit_folder,
    find_audit_folder,
    latest_tree_head,
    parse_anchored_head,
)


def _logged(root: Path, records: int = 3) -> Path:
    folder = RunStore(root).audit_dir
    logger = AuditLogger(folder)
    for i in range(records):
        logger.log("step", i=i)
    return folder


def test_the_folder_of_a_store_is_found_only_when_it_holds_a_log(tmp_path: Path) -> None:
    with pytest.raises(GovernanceError, match="no audit log in .*audit.jsonl not found"):
        find_audit_folder(tmp_path)
    assert not (tmp_path / "audit").exists()  # looking did not create one
    folder = _logged(tmp_path)
    assert find_audit_folder(tmp_path) == folder
    assert find_audit_folder(legacy_dir=folder) == folder  # the deprecated --dir names the folder itself
    with pytest.raises(GovernanceError, match="not both"):
        find_audit_folder(tmp_path, folder)


@pytest.mark.parametrize("text", ["12", "x:" + "a" * 64, "3:" + "a" * 63, ":" + "a" * 64])
def test_a_malformed_anchored_head_is_refused(text: str) -> None:
    with pytest.raises(GovernanceError, match="invalid --head"):
        parse_anchored_head(text)


def test_an_anchored_head_is_checked_against_the_log(tmp_path: Path) -> None:
    folder = _logged(tmp_path)
    result = check_audit_folder(folder)
    assert result.ok and result.records == 3
    anchored = parse_anchored_head(f"{result.head_seq}:{result.head_hash}")
    assert anchored == (3, result.head_hash)
    assert check_audit_folder(folder, expected_head=anchored).ok
    assert not check_audit_folder(folder, expected_head=(3, "0" * 64)).ok


def test_an_edited_record_fails_the_check(tmp_path: Path) -> None:
    folder = _logged(tmp_path)
    log = folder / "audit.jsonl"
    log.write_text(log.read_text().replace('"i":1', '"i":7'))
    result = check_audit_folder(folder)
    assert not result.ok and result.problems


def test_latest_tree_head_is_refused_until_one_is_written(tmp_path: Path) -> None:
    folder = _logged(tmp_path)
    with pytest.raises(GovernanceError, match="no tree head in"):
        latest_tree_head(folder)
    written = latest_tree_head(folder, write=True)
    assert written.head.size == 3 and not written.head.signed
    AuditLogger(folder).log("step", i=3)
    assert latest_tree_head(folder).head.size == 3  # reading writes nothing
    assert latest_tree_head(folder, write=True).head.size == 4
