"""The pre-registered gate: sealed before training, decided with that spec only, re-registered only
on purpose and audited; ``provenir gate`` exits 0 / 1 / 2 and writes JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import GateConfig, RunConfig
from provenir.core.errors import ConfigError, EvaluationError, ManifestTamperedError
from provenir.core.hashing import sha256_json
from provenir.core.manifest import RunManifest
from provenir.core.store import GATE_FILE, GATE_REGISTRATIONS_FILE, RunStore
from provenir.eval.harness import EVAL_FILENAME, EvalResult, metric_result_from_scores
from provenir.eval.run_evaluation import attach_to_manifest
from provenir.governance.audit import AuditLogger
from provenir.governance.audit_events import EVENTS
from provenir.testing.cli import run_cli
from provenir.train.preregistered_gate import (
    decide_registered_gate,
    gate_spec_sha256,
    register_gate_spec,
    registered_spec,
)
from provenir.train.runner import train

BASE_EM = [1.0] * 80 + [0.0] * 20
BASE_F1 = [0.6 + 0.003 * i for i in range(100)]


def _eval(em: list[float], f1: list[float]) -> EvalResult:
    metrics = {
        "exact_match": metric_result_from_scores("exact_match", em, binary=True),
        "token_f1": metric_result_from_scores("token_f1", f1, binary=False, n_bootstrap=200),
    }
    return EvalResult(metrics=metrics, n=len(em))


def _run(tmp_path: Path, gate: dict[str, Any] | None, new: EvalResult) -> tuple[Path, RunStore, RunManifest]:
    """A stub run trained with ``gate``; its eval.json is ``new``, attached to the manifest."""
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"prompt": "What is 2 plus 2?", "response": "4"}) + "\n")
    config = {"backend": "stub", "output_dir": str(tmp_path / "artifacts"), "data": {"path": str(data)}}
    if gate is not None:
        config["gate"] = gate
    manifest = train(RunConfig.from_dict(config))
    store = RunStore(tmp_path / "artifacts")
    path = store.manifest_path(manifest.run_id)
    attach_to_manifest(path, new, new.save(store.run_dir(manifest.run_id) / EVAL_FILENAME))
    return path, store, RunManifest.load(path)


@pytest.fixture()
def baseline(tmp_path: Path) -> Path:
    return _eval(BASE_EM, BASE_F1).save(tmp_path / "baseline.json")


def _gate(baseline: Path, **more: Any) -> dict[str, Any]:
    return {"baseline": str(baseline), "metrics": ["exact_match", "token_f1"], "tolerance": 0.02, **more}


def _events(store: RunStore, event: str) -> list[Any]:
    return AuditLogger(store.audit_dir).query(event=event, limit=100).records


def test_the_gate_spec_is_sealed_in_the_manifest_and_covered_by_config_hash(
    tmp_path: Path, baseline: Path
) -> None:
    path, _, manifest = _run(tmp_path, _gate(baseline), _eval(BASE_EM, BASE_F1))
    spec = GateConfig.from_dict(_gate(baseline))
    assert manifest.gate_spec_sha256 == gate_spec_sha256(spec) == sha256_json(manifest.config["gate"])
    assert RunConfig.from_dict(manifest.config).config_hash() == manifest.config_hash
    other = RunConfig.from_dict({**manifest.config, "gate": _gate(baseline, tolerance=0.05)})
    assert other.config_hash() != manifest.config_hash
    found = registered_spec(path)
    assert found is not None and found.source == "sealed" and found.spec == spec
    # No gate: no key in the config dump, none in the manifest, and the hash of a gate-less config is unchanged.
    plain = RunConfig()
    assert "gate" not in plain.model_dump(mode="json") and plain.gate_spec_sha256() is None
    assert (
        "gate_spec_sha256"
        not in RunManifest(
            name="r", backend="stub", algorithm="sft", config_hash="c", dataset_hash="d", seed=1, config={}
        ).to_json()
    )


def test_decides_with_the_sealed_spec_audits_and_records_it(tmp_path: Path, baseline: Path) -> None:
    path, store, manifest = _run(tmp_path, _gate(baseline), _eval(BASE_EM, BASE_F1))
    outcome = decide_registered_gate(path)
    assert outcome.decision.passed and outcome.exit_code == 0 and outcome.spec_source == "sealed"
    assert outcome.decision.correction == "holm" and outcome.decision.retention == {}
    (event,) = _events(store, "gate_decision")
    assert event.run_id == manifest.run_id and event.fields["spec_sha256"] == manifest.gate_spec_sha256
    assert event.fields["passed"] is True
    assert set(event.fields) == set(EVENTS["gate_decision"].required)  # the field set every gate logs
    recorded = json.loads((store.run_dir(manifest.run_id) / GATE_FILE).read_text())
    assert recorded["decision"]["passed"] is True
    # Asking for exactly the sealed values is no change: decided, nothing registered.
    same = decide_registered_gate(path, requested={"tolerance": 0.02, "metrics": ["exact_match", "token_f1"]})
    assert not same.registered_now and not (store.run_dir(manifest.run_id) / GATE_REGISTRATIONS_FILE).exists()


def test_a_spec_changed_after_training_is_refused_then_registered_and_audited(
    tmp_path: Path, baseline: Path
) -> None:
    dropped = _eval([1.0] * 77 + [0.0] * 23, BASE_F1)  # exact match -3 points
    path, store, manifest = _run(tmp_path, _gate(baseline), dropped)
    assert not decide_registered_gate(path).decision.passed
    with pytest.raises(ConfigError, match=r"tolerance 0\.05 \(registered: 0\.02\).*--register"):
        decide_registered_gate(path, requested={"tolerance": 0.05})
    with pytest.raises(ConfigError, match="metrics"):
        decide_registered_gate(path, requested={"metrics": ["token_f1"]})
    assert _events(store, "gate_registered") == []  # a refusal registers nothing
    outcome = decide_registered_gate(path, requested={"tolerance": 0.05}, register=True)
    assert outcome.registered_now and outcome.spec_source == "registration" and outcome.decision.passed
    (event,) = _events(store, "gate_registered")
    assert event.fields["previous_spec_sha256"] == manifest.gate_spec_sha256
    assert event.fields["spec_sha256"] == outcome.spec_sha256 != manifest.gate_spec_sha256
    lines = (store.run_dir(manifest.run_id) / GATE_REGISTRATIONS_FILE).read_text().splitlines()
    record = json.loads(lines[0])
    assert record["record_sha256"] == event.fields["record_sha256"] and record["spec"]["tolerance"] == 0.05
    decision_event = _events(store, "gate_decision")[0]  # newest first
    assert decision_event.fields["spec_sha256"] == outcome.spec_sha256
    # From now on the registration is the spec: the old tolerance is itself a change.
    assert decide_registered_gate(path).spec_sha256 == outcome.spec_sha256
    with pytest.raises(ConfigError, match="registered: 0.05"):
        decide_registered_gate(path, requested={"tolerance": 0.02})
    # A second registration chains onto the first.
    again = register_gate_spec(path, GateConfig.from_dict(_gate(baseline, tolerance=0.01)))
    assert again.registration == 2 and registered_spec(path) == again
    second = json.loads(
        (store.run_dir(manifest.run_id) / GATE_REGISTRATIONS_FILE).read_text().splitlines()[1]
    )
    assert (
        second["previous_spec_sha256"] == outcome.spec_sha256
        and second["prev_record_sha256"] == record["record_sha256"]
    )
    assert register_gate_spec(path, GateConfig.from_dict(_gate(baseline, tolerance=0.01))) == again  # no-op


def _rewrite(path: Path, change) -> None:
    from provenir.core.hashing import canonical_json

    records = [json.loads(line) for line in path.read_text().splitlines()]
    change(records)
    path.write_text("".join(canonical_json(r).decode() + "\n" for r in records))


def test_an_edited_registration_file_is_detected(tmp_path: Path, baseline: Path) -> None:
    from provenir.train.preregistered_gate import _record_hash

    path, store, manifest = _run(tmp_path, _gate(baseline), _eval(BASE_EM, BASE_F1))
    register_gate_spec(path, GateConfig.from_dict(_gate(baseline, tolerance=0.05)))
    register_gate_spec(path, GateConfig.from_dict(_gate(baseline, tolerance=0.1)))
    file = store.run_dir(manifest.run_id) / GATE_REGISTRATIONS_FILE
    original = file.read_text()

    def loosen(records: list[dict[str, Any]]) -> None:
        records[-1]["spec"]["tolerance"] = 0.5

    _rewrite(file, loosen)
    with pytest.raises(ManifestTamperedError, match="record_sha256"):
        registered_spec(path)

    def loosen_and_rehash(records: list[dict[str, Any]]) -> None:
        records[-1]["spec"]["tolerance"] = 0.5
        records[-1]["spec_sha256"] = sha256_json(records[-1]["spec"])
        records[-1]["record_sha256"] = _record_hash(records[-1])

    file.write_text(original)
    _rewrite(file, loosen_and_rehash)
    with pytest.raises(ManifestTamperedError, match="no gate_registered event"):
        registered_spec(path)

    def spec_only(records: list[dict[str, Any]]) -> None:
        records[-1]["spec"]["tolerance"] = 0.5
        records[-1]["record_sha256"] = _record_hash(records[-1])

    file.write_text(original)
    _rewrite(file, spec_only)
    with pytest.raises(ManifestTamperedError, match="spec_sha256"):
        registered_spec(path)
    file.write_text(original)
    _rewrite(file, lambda records: records.pop(0))
    with pytest.raises(ManifestTamperedError, match="chain"):
        registered_spec(path)

    def swap_previous(records: list[dict[str, Any]]) -> None:
        records[-1]["previous_spec_sha256"] = "0" * 64
        records[-1]["record_sha256"] = _record_hash(records[-1])

    file.write_text(original)
    _rewrite(file, swap_previous)
    with pytest.raises(ManifestTamperedError):
        registered_spec(path)
    file.write_text(original + "not json\n")
    with pytest.raises(ManifestTamperedError, match="not a JSON"):
        registered_spec(path)
    file.write_text(original)
    assert registered_spec(path).spec.tolerance == 0.1  # type: ignore[union-attr]


def test_a_run_without_a_gate_must_register_one_and_retention_needs_lm_eval_results(
    tmp_path: Path, baseline: Path
) -> None:
    path, store, _ = _run(tmp_path, None, _eval(BASE_EM, BASE_F1))
    assert registered_spec(path) is None
    with pytest.raises(ConfigError, match="no registered gate"):
        decide_registered_gate(path)
    with pytest.raises(ConfigError, match="no registered gate"):
        decide_registered_gate(path, requested={"baseline": str(baseline)})
    outcome = decide_registered_gate(path, requested={"baseline": str(baseline)}, register=True)
    assert outcome.registered_now and outcome.decision.passed
    assert _events(store, "gate_registered")[0].fields["previous_spec_sha256"] is None
    register_gate_spec(path, GateConfig.from_dict({"baseline": str(baseline), "retention_tasks": ["mmlu"]}))
    with pytest.raises(EvaluationError, match="no lm-eval results for task 'mmlu'"):
        decide_registered_gate(path)


def test_gate_config_validates_names() -> None:
    for bad in (
        {"retention_tasks": ["mm lu"]},
        {"retention_tasks": ["a,b"]},
        {"retention_tasks": ["x", "x"]},
        {"metrics": []},
        {"metrics": ["em", "em"]},
        {"metrics": [""]},
        {"tolerance": -0.1},
        {"alpha": 1.0},
        {"mode": "ratio"},
        {"correction": "bonferroni"},
    ):
        with pytest.raises(ConfigError):
            GateConfig.from_dict({"baseline": "b", **bad})
    with pytest.raises(ConfigError, match="baseline"):
        GateConfig.from_dict({})
    ok = GateConfig.from_dict({"baseline": "b", "retention_tasks": ["mmlu", "tasks/gsm8k.yaml"]})
    assert ok.retention_tasks == ["mmlu", "tasks/gsm8k.yaml"] and ok.metrics is None and ok.correction is None


def test_the_baseline_can_be_a_run_id(tmp_path: Path) -> None:
    base_path, store, base_manifest = _run(tmp_path, None, _eval(BASE_EM, BASE_F1))
    data = tmp_path / "rows.jsonl"
    config = RunConfig.from_dict(
        {
            "backend": "stub",
            "output_dir": str(tmp_path / "artifacts"),
            "data": {"path": str(data)},
            "seed": 7,
            "gate": {"baseline": base_manifest.run_id[:8]},
        }
    )
    manifest = train(config)
    path = store.manifest_path(manifest.run_id)
    new = _eval(BASE_EM, BASE_F1)
    attach_to_manifest(path, new, new.save(store.run_dir(manifest.run_id) / EVAL_FILENAME))
    outcome = decide_registered_gate(path)
    assert outcome.baseline_path == store.run_dir(base_manifest.run_id) / EVAL_FILENAME
    assert outcome.decision.passed and outcome.decision.paired


# -- the command line -------------------------------------------------------------------------------


def test_cli_exit_codes_json_and_markdown(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, store, manifest = _run(
        tmp_path,
        _gate(baseline),
        _eval(BASE_EM, [f - 0.05 + 0.01 * ((i * 7) % 5 - 2) for i, f in enumerate(BASE_F1)]),
    )
    out_dir = ["--output-dir", str(tmp_path / "artifacts")]
    md = tmp_path / "gate.md"
    assert run_cli(["gate", manifest.run_id, *out_dir, "--markdown", str(md)]) == 1  # token_f1 -5 points
    text = capsys.readouterr().out
    assert "regression gate tripped: token_f1 dropped" in text and "cannot detect a drop smaller than" in text
    summary = md.read_text()
    assert summary.startswith(f"### Regression gate for run `{manifest.run_id}`: FAILED")
    assert "| token_f1 | 0.7485 | 0.6985 | -0.0500 |" in summary and "**regression**" in summary
    assert f"gate spec sha256 `{manifest.gate_spec_sha256[:12]}` (sealed)" in summary  # type: ignore[index]

    assert run_cli(["gate", manifest.run_id, *out_dir, "--json"]) == 1
    body = json.loads(capsys.readouterr().out)
    assert body["passed"] is False and body["spec_sha256"] == manifest.gate_spec_sha256
    f1 = body["decision"]["comparisons"]["token_f1"]
    assert f1["verdict"] == "regression" and f1["p_adjusted"] >= f1["p_value"] and f1["mde"] > 0
    assert body["decision"]["correction"] == "holm" and body["decision"]["retention"] == {}

    # A different tolerance: refused with one line, exit 2; then registered on purpose, exit 0.
    assert run_cli(["gate", manifest.run_id, *out_dir, "--tolerance", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "--register" in err
    assert run_cli(["gate", manifest.run_id, *out_dir, "--tolerance", "0.1", "--register", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["passed"] is True and body["registered_now"] is True and body["spec"]["tolerance"] == 0.1
    assert _events(store, "gate_registered")[0].fields["spec_sha256"] == body["spec_sha256"]
    assert run_cli(["gate", manifest.run_id, *out_dir]) == 0
    assert "regression gate passed" in capsys.readouterr().out

    # Errors are exit 2: an unknown run, a run without eval.json.
    assert run_cli(["gate", "ffffffff", *out_dir]) == 2
    (store.run_dir(manifest.run_id) / EVAL_FILENAME).unlink()
    capsys.readouterr()
    assert run_cli(["gate", manifest.run_id, *out_dir]) == 2
    assert "error:" in capsys.readouterr().err
