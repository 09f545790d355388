"""The run driver scans data when configured and leaves an audit trail of what it did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import DataError
from provenir.core.store import RunStore
from provenir.governance.audit import AuditLogger, AuditReader
from provenir.train.reproduce import reproduce
from provenir.train.runner import train

ROWS = [
    {"prompt": "Who do I email?", "response": "Write to jane.doe@example.com for help."},
    {"prompt": "What is 2 plus 2?", "response": "4"},
]


def config_for(tmp_path: Path, scan: str) -> RunConfig:
    data = tmp_path / "pii.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return RunConfig.from_dict(
        {
            "backend": "stub",
            "output_dir": str(tmp_path / "artifacts"),
            "data": {"path": str(data), "scan": scan},
        }
    )


def test_scan_refuse_stops_before_training(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="EMAIL"):
        train(config_for(tmp_path, "refuse"))
    assert not (tmp_path / "artifacts" / "manifests").exists()


def test_scan_mask_records_summary_without_the_value(tmp_path: Path) -> None:
    manifest = train(config_for(tmp_path, "mask"))
    assert manifest.scans is not None and manifest.scans["action"] == "masked"
    text = manifest.to_json()
    assert "EMAIL" in text and "jane.doe@example.com" not in text


def test_training_and_reproduce_are_audited(tmp_path: Path) -> None:
    config = config_for(tmp_path, "off")
    manifest = train(config)
    reproduce(RunStore(config.output_dir).manifest_path(manifest.run_id))
    audit_dir = Path(config.output_dir) / "audit"
    AuditLogger(audit_dir).verify()
    events = [r["event"] for r in AuditReader(audit_dir).query(limit=50, order="asc").to_dict()["records"]]
    assert events == [
        "training_started",
        "training_completed",
        "training_started",
        "training_completed",
        "reproduce_completed",
    ]
    # The manifest seals a tree head over the log up to its own start record.
    head = manifest.audit_checkpoint
    assert head is not None and head.size == 1 and head.signature is None
    checked = AuditLogger(audit_dir).check(manifests_dir=RunStore(config.output_dir).manifests_dir)
    assert checked.ok and checked.tree_heads_checked >= 3
    page = AuditReader(audit_dir).query(run_id=manifest.run_id, limit=10).to_dict()
    assert {r["event"] for r in page["records"]} == {"training_started", "training_completed"}


def test_non_finite_metrics_do_not_break_the_seal(tmp_path: Path) -> None:
    from provenir.core.abstractions import TrainResult
    from provenir.train.runner import RunOptions

    class Diverging:
        def fit(self, config: RunConfig, dataset: object) -> TrainResult:
            return TrainResult(adapter_dir=None, metrics={"final_loss": float("nan"), "steps": 3.0})

    manifest = train(config_for(tmp_path, "off"), RunOptions(backend=Diverging()))
    assert manifest.verify().ok
    assert manifest.metrics == {"steps": 3.0}
    assert manifest.extra["non_finite_metrics"] == {"final_loss": "nan"}


def test_contamination_result_is_recorded(tmp_path: Path) -> None:
    long_answer = "the quick brown fox jumps over the lazy dog while the river runs to the sea at night"
    train_file = tmp_path / "train.jsonl"
    eval_file = tmp_path / "eval.jsonl"
    train_file.write_text(json.dumps({"prompt": "Tell me a story.", "response": long_answer}) + "\n")
    eval_file.write_text(json.dumps({"prompt": "Another story?", "response": long_answer}) + "\n")
    config = RunConfig.from_dict(
        {
            "backend": "stub",
            "output_dir": str(tmp_path / "artifacts"),
            "data": {"path": str(train_file), "eval_path": str(eval_file), "contamination_check": "warn"},
        }
    )
    with pytest.warns(Warning):
        manifest = train(config)
    recorded = manifest.extra["contamination"]
    assert (
        recorded["contaminated"] == 1 and recorded["n"] == 13 and recorded["eval_rows"] == [1]
    )  # 1-based row numbers
    assert long_answer not in manifest.to_json()
