"""The stage ledger: a record is reused only while its fingerprint and its output's hash hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenir.core.errors import DataError
from provenir.core.jsonl import read_jsonl, write_jsonl
from provenir.core.stages import StageLedger


def fresh(folder: Path) -> StageLedger:
    return StageLedger(folder / "state.json", {"schema_version": 1, "stages": {}})


def test_record_survives_a_reload_and_is_reused_only_with_its_fingerprint(tmp_path: Path) -> None:
    ledger = fresh(tmp_path)
    assert not (tmp_path / "state.json").exists()  # nothing written until a stage completes
    out = write_jsonl(tmp_path / "out.jsonl", [{"b": 1, "a": "é"}])
    ledger.record("mine", {"fingerprint": "f1", **ledger.output(out), "counts": {"rows": 1}}, "stages")

    again = fresh(tmp_path)
    rec = again.completed("mine", "stages", fingerprint="f1")
    assert rec is not None and rec["path"] == "out.jsonl" and rec["counts"] == {"rows": 1}
    assert again.completed("mine", "stages", fingerprint="f2") is None
    assert again.completed("generate", "stages", fingerprint="f1") is None
    assert json.loads((tmp_path / "state.json").read_text())["schema_version"] == 1


def test_a_changed_or_missing_output_is_not_reused(tmp_path: Path) -> None:
    ledger = fresh(tmp_path)
    out = write_jsonl(tmp_path / "out.jsonl", [{"a": 1}])
    ledger.record("mine", {"fingerprint": "f", **ledger.output(out)}, "stages")
    out.write_text('{"a": 2}\n')
    assert ledger.completed("mine", "stages", fingerprint="f") is None
    out.unlink()
    assert ledger.completed("mine", "stages", fingerprint="f") is None


def test_nested_scopes_and_records_without_an_output(tmp_path: Path) -> None:
    # RLAIF's layout: records per iteration, absolute-or-as-given paths under "file".
    ledger = StageLedger(
        tmp_path / "state.json", {"iterations": {}, "best": None}, output_key="file", relative_outputs=False
    )
    assert ledger.completed("train", "iterations", "1") is None
    assert ledger.data["iterations"] == {}  # looking does not add an empty iteration
    out = write_jsonl(tmp_path / "iter-1" / "pairs.jsonl", [])
    ledger.record("pairs", {**ledger.output(out), "count": 0}, "iterations", "1")
    ledger.record("train", {"run_id": "r1"}, "iterations", "1")
    assert ledger.stages("iterations", "1")["pairs"]["file"] == str(out)
    assert ledger.completed("train", "iterations", "1") == {"run_id": "r1"}
    ledger.data["best"] = "r1"
    ledger.save()
    assert StageLedger(tmp_path / "state.json", {}).data["best"] == "r1"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"stages": {"mine": 3}}'])
def test_a_damaged_ledger_is_a_data_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "state.json").write_text(text)
    with pytest.raises(DataError, match="damaged stage ledger"):
        fresh(tmp_path).completed("mine", "stages")


def test_write_jsonl_is_canonical_and_reads_back(tmp_path: Path) -> None:
    rows = [{"b": 2, "a": "ünïcode"}, {"z": None}]
    path = write_jsonl(tmp_path / "sub" / "rows.jsonl", rows)
    assert path.read_text(encoding="utf-8").splitlines()[0] == '{"a": "ünïcode", "b": 2}'
    assert read_jsonl(path) == rows
