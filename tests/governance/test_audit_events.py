"""Typed audit events: every event Provenir writes has one schema, and the logger enforces it."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from provenir.core.errors import GovernanceError
from provenir.eval.harness import EvalResult, metric_result_from_scores
from provenir.eval.regression import RegressionGate
from provenir.governance.audit import AuditLogger
from provenir.governance.audit_events import EVENTS, LEGACY_EVENTS, canonical_event, validate_event
from provenir.train.evaluation import audited_gate

SRC = Path(__file__).resolve().parents[2] / "src" / "provenir"
RUN = "123e4567-e89b-42d3-a456-426614174000"


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments (event names kept in constants)."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def _names(arg: ast.expr, constants: dict[str, str], where: str) -> list[str]:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    if isinstance(arg, ast.Name) and arg.id in constants:
        return [constants[arg.id]]
    if isinstance(arg, ast.IfExp):
        return _names(arg.body, constants, where) + _names(arg.orelse, constants, where)
    raise AssertionError(f"{where}: an audit event name this test cannot resolve; keep names literal")


def _audit_calls() -> list[tuple[str, str, ast.Call]]:
    """(event name, place, call) for every ``<something>.log("event", ...)`` call in src."""
    calls = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "log" or not node.args:
                continue
            where = f"{path.relative_to(SRC)}:{node.lineno}"
            first = node.args[0]
            if isinstance(
                first, ast.Dict | ast.DictComp
            ):  # a tracker's run.log({metrics}), not an audit event
                continue
            calls += [(name, where, node) for name in _names(first, constants, where)]
    return calls


def test_every_event_provenir_writes_has_a_schema_and_its_call_sites_fit_it() -> None:
    calls = _audit_calls()
    written = {name for name, _, _ in calls}
    # The scan sees the variable names too (a constant, a conditional) and every known writer.
    assert {
        "training_started",
        "training_resumed",
        "model_signed",
        "model_exported",
        "gate_decision",
    } <= written
    for name, where, call in calls:
        assert name in EVENTS, f"{where}: audit event {name!r} has no schema in audit_events.EVENTS"
        schema = EVENTS[name]
        given = {k.arg for k in call.keywords if k.arg is not None} - {"actor", "run_id"}
        assert given <= set(schema.fields), f"{where}: {sorted(given - set(schema.fields))} not in {name!r}"
        if all(k.arg is not None for k in call.keywords):  # no **fields: every required one is spelled out
            assert set(schema.required) <= given, f"{where}: {name!r} misses {set(schema.required) - given}"
    # The reference page's "written by" is where the events are really written.
    writers: dict[str, set[str]] = {}
    for name, where, _ in calls:
        module = where.split(":")[0].removesuffix(".py").replace("/", ".")
        writers.setdefault(name, set()).add(
            module if module.startswith("provenir.") else f"provenir.{module}"
        )
    for name, modules in writers.items():
        assert {w.strip() for w in EVENTS[name].written_by.split(",")} == modules, name


def test_names_are_past_tense_unique_and_renamed_ones_map_to_their_successor() -> None:
    assert all(name == s.name for name, s in EVENTS.items())
    assert canonical_event("flywheel_complete") == "flywheel_completed"
    assert canonical_event("flywheel_stage") == "flywheel_stage_completed"
    assert canonical_event("training_completed") == "training_completed"
    assert set(LEGACY_EVENTS).isdisjoint(EVENTS)
    # The drifted spellings are gone: one name per happening.
    assert "training_complete" not in EVENTS and "flywheel_complete" not in EVENTS
    assert {"flywheel_started", "flywheel_stage_completed", "flywheel_completed"} <= set(EVENTS)


def _completed(**over: Any) -> dict[str, Any]:
    fields = {"adapter_hash": "a" * 64, "manifest_hash": "m", "final_loss": 0.5, "resumed_from": None}
    return {**fields, **over}


def test_the_logger_refuses_an_event_that_does_not_fit_its_schema(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path)
    with pytest.raises(GovernanceError, match=r"'training_completed': unknown field 'steps'"):
        audit.log("training_completed", run_id=RUN, **_completed(steps=500))
    fields = _completed()
    del fields["manifest_hash"]
    with pytest.raises(
        GovernanceError, match=r"'training_completed': missing required field 'manifest_hash'"
    ):
        audit.log("training_completed", run_id=RUN, **fields)
    with pytest.raises(
        GovernanceError, match=r"'training_completed': field 'final_loss' must be float or null"
    ):
        audit.log("training_completed", run_id=RUN, **_completed(final_loss="low"))
    with pytest.raises(GovernanceError, match=r"missing required field 'run_id'"):
        audit.log("training_completed", **_completed())
    with pytest.raises(GovernanceError, match=r"'manifest_hash' must be str, got int 5"):
        audit.log("training_completed", run_id=RUN, **_completed(manifest_hash=5))
    exported = {"parent_run_id": RUN, "max_abs_diff": 0.0, "adapter_hash": None, "manifest_hash": "m"}
    with pytest.raises(GovernanceError, match=r"'files' must be int, got bool True"):
        audit.log("model_exported", run_id=RUN, files=True, **exported)
    with pytest.raises(GovernanceError, match=r"'identical' must be bool, got int 1"):
        audit.log("reproduce_completed", run_id=RUN, original_run_id=RUN, identical=1, adapter_hash=None)
    with pytest.raises(GovernanceError, match=r"'statements' must be list\[str\]"):
        audit.log("attestation_written", run_id=RUN, path="p", sha256="s", statements=[1], keyid="k")
    stage = {"stage": "mine", "output": "f.jsonl", "sha256": "s", "counts": {}}
    with pytest.raises(GovernanceError, match=r"'status' must be \"completed\" \| \"skipped\", got a str"):
        audit.log("flywheel_stage_completed", run_id="flywheel:x", status="done", **stage)
    with pytest.raises(GovernanceError, match=r"'dataset_scanned': field 'run_id' is not part"):
        audit.log("dataset_scanned", run_id=RUN, dataset="d", has_pii=False, has_secrets=False,
                  pii_counts=None, secret_counts=None, masked_to=None)  # fmt: skip
    # Nothing refused reached the log.
    assert not (tmp_path / "audit.jsonl").exists() or (tmp_path / "audit.jsonl").read_text() == ""
    record = audit.log("training_completed", run_id=RUN, **_completed(final_loss=1))
    assert record.fields == _completed(final_loss=1) and audit.verify().ok


def test_a_string_value_of_the_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    secret = "hf_" + "a" * 34
    with pytest.raises(GovernanceError) as caught:
        AuditLogger(tmp_path).log("training_completed", run_id=RUN, **_completed(final_loss=secret))
    assert secret not in str(caught.value) and "got a str" in str(caught.value)


def test_renamed_events_are_refused_for_writing() -> None:
    with pytest.raises(GovernanceError, match=r"'flywheel_complete' was renamed to 'flywheel_completed'"):
        validate_event("flywheel_complete", {}, run_id="flywheel:x")
    with pytest.raises(GovernanceError, match=r"'flywheel_stage' was renamed to 'flywheel_stage_completed'"):
        validate_event("flywheel_stage", {}, run_id="flywheel:x")


def test_other_names_are_free_form_for_plugins_and_users(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path)
    # A plugin's namespaced event, and the seed's own example (a name Provenir does not write).
    plugin = audit.log("acme.reward_scored", run_id=RUN, anything={"goes": [1, 2]}, score=0.5)
    assert plugin.fields == {"anything": {"goes": [1, 2]}, "score": 0.5}
    seed = audit.log("training_complete", actor="ci-bot", run_id=RUN, steps=500)
    assert seed.event == "training_complete" and seed.fields == {"steps": 500}
    assert audit.verify().ok


def test_an_old_log_with_renamed_events_still_reads_and_verifies(tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path)
    audit.log("acme.placeholder", run_id="flywheel:x")
    # Rewrite the record as an old Provenir wrote it, with a valid chain: reading never validates.
    from provenir.governance.audit import _record_hash

    record = json.loads((tmp_path / "audit.jsonl").read_text())
    record.update(event="flywheel_complete", fields={"output_sha256": "s", "stages_run": []})
    record.pop("hash")
    record["hash"] = _record_hash(record)
    from provenir.core.hashing import canonical_json

    (tmp_path / "audit.jsonl").write_bytes(canonical_json(record) + b"\n")
    (tmp_path / "audit.index.db").unlink(missing_ok=True)
    fresh = AuditLogger(tmp_path)
    assert fresh.verify().ok
    (found,) = fresh.query(event="flywheel_complete").records
    assert canonical_event(found.event) == "flywheel_completed"


def _result(em: list[float]) -> EvalResult:
    return EvalResult(
        metrics={"exact_match": metric_result_from_scores("exact_match", em, binary=True)}, n=len(em)
    )


def test_every_gate_logs_one_field_set(tmp_path: Path) -> None:
    baseline = _result([1.0] * 80 + [0.0] * 20)
    baseline_path = baseline.save(tmp_path / "baseline.json")
    audited_gate(
        RegressionGate(0.02), baseline, baseline, tmp_path / "audit", run_id=RUN, baseline_path=baseline_path
    )
    audited_gate(RegressionGate(0.02), baseline, baseline, tmp_path / "audit")
    with_file, without = AuditLogger(tmp_path / "audit").query(event="gate_decision", order="asc").records
    required = set(EVENTS["gate_decision"].required)
    assert set(with_file.fields) == set(without.fields) == required
    assert with_file.fields["baseline_sha256"] is not None and without.fields["baseline_sha256"] is None
    assert with_file.fields["spec_sha256"] is None and with_file.fields["correction"] == "none"
