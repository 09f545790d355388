"""Attestation checks one by one: what each statement says, and each thing verification must name.

The forged attestations here are signed with the run's own key, as a careless or hostile holder
of that key could sign them: the signature verifies, so only the content checks stand between
such a file and an ``ok``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenir import __version__
from provenir.core.config import RunConfig
from provenir.core.dsse import sign_envelope
from provenir.core.errors import AttestationError
from provenir.core.hashing import canonical_json, sha256_file
from provenir.core.inputs import FileSetPin, RowsPin, RunInputs
from provenir.core.manifest import RunManifest
from provenir.core.signers import fingerprint as raw_fingerprint
from provenir.core.signers import parse_public_key
from provenir.core.signing_keys import generate_signing_key, load_signing_key, public_key_b64
from provenir.core.store import ATTESTATION_FILE, GATE_FILE, RunStore
from provenir.governance.attestation import (
    EVALUATION_PREDICATE,
    GATE_PREDICATE,
    SLSA_PROVENANCE,
    attest_if_configured,
    evaluation_statement,
    gate_statement,
    provenance_statement,
    rfc3339,
    run_statements,
    verify_attestations,
)
from provenir.train.runner import train

ROWS = [{"prompt": f"What is {i} plus {i}?", "response": str(2 * i)} for i in range(8)]


@pytest.fixture()
def key(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "run.pem"
    generate_signing_key(path)
    return path, public_key_b64(load_signing_key(path))


@pytest.fixture()
def run(tmp_path: Path, key: tuple[Path, str]) -> tuple[RunStore, RunManifest]:
    """A stub run trained with a signing key: attested at its end."""
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    config = RunConfig.from_dict(
        {
            "backend": "stub",
            "output_dir": str(tmp_path / "artifacts"),
            "data": {"path": str(data), "eval_split": 0.25},
            "manifest": {"signing_key_path": str(key[0])},
        }
    )
    return RunStore(config.output_dir), train(config)


def _statements(store: RunStore, run_id: str) -> list[dict[str, Any]]:
    envelopes = [json.loads(line) for line in store.attestation_path(run_id).read_text().splitlines()]
    import base64

    return [json.loads(base64.b64decode(e["payload"])) for e in envelopes]


def _write_signed(store: RunStore, run_id: str, key_path: Path, statements: list[Any], **kw: str) -> None:
    key = load_signing_key(key_path)
    lines = [sign_envelope(canonical_json(s), key, **kw).to_json() for s in statements]
    store.attestation_path(run_id).write_text("".join(line + "\n" for line in lines))


def _problems(store: RunStore, run_id: str, public: str) -> list[str]:
    return verify_attestations(store, run_id, public_keys=[public]).problems


def _manifest(**changes: Any) -> RunManifest:
    fields: dict[str, Any] = {
        "name": "m",
        "backend": "stub",
        "algorithm": "sft",
        "config_hash": "c" * 64,
        "dataset_hash": "d" * 64,
        "seed": 1,
        "config": {"name": "m"},
        "status": "completed",
        "outputs": {"adapter/w.bin": "a" * 64, "adapter/cfg.json": "b" * 64, "train_log.jsonl": "e" * 64},
        "adapter_hash": "a" * 64,
    }
    fields.update(changes)
    return RunManifest(**fields).seal()


# -- what a good attestation reports -----------------------------------------------------------------


def test_a_good_attestation_names_signer_subjects_and_trust(
    run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = run
    result = verify_attestations(store, manifest.run_id, public_keys=[key[1]])
    assert result.ok and result.trusted and result.run_id == manifest.run_id
    assert result.signer == raw_fingerprint(parse_public_key(key[1]))
    assert result.subjects == len(manifest.outputs)
    assert result.predicate_types == [SLSA_PROVENANCE]
    embedded = verify_attestations(store, manifest.run_id)
    assert embedded.ok and not embedded.trusted


# -- each problem verification must name --------------------------------------------------------------


def test_an_unreadable_manifest_is_the_only_problem(
    run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = run
    store.manifest_path(manifest.run_id).write_text("{not json")
    result = verify_attestations(store, manifest.run_id, public_keys=[key[1]])
    assert result.run_id is None and result.subjects == 0 and not result.trusted and result.signer is None
    assert len(result.problems) == 1 and "not valid manifest JSON" in result.problems[0]


def test_a_missing_or_unreadable_attestation_is_named(
    run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = run
    path = store.attestation_path(manifest.run_id)
    path.unlink()
    assert _problems(store, manifest.run_id, key[1]) == [
        f"no attestation: runs/{manifest.run_id}/{ATTESTATION_FILE} is missing"
    ]
    path.write_bytes(b"\xff\xfe not text")
    (problem,) = _problems(store, manifest.run_id, key[1])
    assert problem.startswith(f"{ATTESTATION_FILE} cannot be read (")


def test_envelopes_are_numbered_from_one_and_their_type_is_checked(
    run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = run
    statement = _statements(store, manifest.run_id)[0]
    _write_signed(store, manifest.run_id, key[0], [statement], payload_type="text/plain")
    problems = _problems(store, manifest.run_id, key[1])
    assert problems[0] == "envelope 1: payloadType is 'text/plain', not application/vnd.in-toto+json"


@pytest.mark.parametrize("payload", [[1, 2], {"_type": "https://in-toto.io/Statement/v0.1"}])
def test_a_payload_that_is_not_a_statement_is_named(
    run: tuple[RunStore, RunManifest], key: tuple[Path, str], payload: Any
) -> None:
    store, manifest = run
    _write_signed(store, manifest.run_id, key[0], [payload])
    problems = _problems(store, manifest.run_id, key[1])
    assert "envelope 1: the payload is not an in-toto Statement v1" in problems
    assert "provenance is not attested; re-attest with `provenir attest " + manifest.run_id + "`" in problems


def test_each_bad_subject_is_named(run: tuple[RunStore, RunManifest], key: tuple[Path, str]) -> None:
    store, manifest = run
    statement = _statements(store, manifest.run_id)[0]
    run_dir = store.run_dir(manifest.run_id)
    (run_dir / "extra.txt").write_text("not an output")
    statement["subject"] += [
        {"name": "no-digest"},
        {"digest": {"sha256": "0" * 64}},
        {"name": "../outside.bin", "digest": {"sha256": "0" * 64}},
        {"name": "gone.bin", "digest": {"sha256": "0" * 64}},
        {"name": "extra.txt", "digest": {"sha256": sha256_file(run_dir / "extra.txt")}},
    ]
    _write_signed(store, manifest.run_id, key[0], [statement])
    problems = _problems(store, manifest.run_id, key[1])
    assert problems.count("provenance: a subject lacks a name or a sha256 digest") == 2
    assert "provenance: subject ../outside.bin is outside the run folder" in problems
    assert "provenance: subject gone.bin is missing" in problems
    assert "provenance: subject gone.bin is not an output of the manifest with that sha256" in problems
    assert "provenance: subject extra.txt is not an output of the manifest with that sha256" in problems
    assert not any("extra.txt changed" in p for p in problems)


def test_a_deleted_output_is_named_as_a_missing_subject(
    run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = run
    (store.run_dir(manifest.run_id) / "train_log.jsonl").unlink()
    problems = _problems(store, manifest.run_id, key[1])
    assert "provenance: subject train_log.jsonl is missing" in problems
    assert any(p.startswith("run: ") and "train_log.jsonl" in p for p in problems)


def test_duplicate_misordered_and_unknown_statements_are_named(
    run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = run
    provenance = _statements(store, manifest.run_id)[0]
    unknown = {**provenance, "predicateType": "https://example.com/other/v1"}
    _write_signed(store, manifest.run_id, key[0], [unknown, provenance, provenance])
    problems = _problems(store, manifest.run_id, key[1])
    assert "the file holds more than one statement of the same type" in problems
    assert "the first statement is not the SLSA provenance" in problems
    assert (
        "statement 'https://example.com/other/v1': the run has nothing this statement could describe"
        in problems
    )


def test_a_changed_field_is_named_by_its_path(
    run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = run
    provenance = _statements(store, manifest.run_id)[0]
    cases = {
        "predicate.buildDefinition.buildType": lambda s: s["predicate"]["buildDefinition"].update(
            buildType={"x": 1}
        ),
        "predicate.buildDefinition.externalParameters": lambda s: s["predicate"]["buildDefinition"].update(
            externalParameters=["not", "a", "config"]
        ),
        "subject (length 1, expected 3)": lambda s: s.update(subject=s["subject"][:1]),
        "predicate.runDetails.metadata.invocationId": None,
    }
    assert len(provenance["subject"]) == 3
    for where, change in cases.items():
        forged = json.loads(json.dumps(provenance))
        if change is None:  # another run's id: named as such, not as a field
            forged["predicate"]["runDetails"]["metadata"]["invocationId"] = "0" * 8
            expected = f"provenance: attests run {'0' * 8}, not {manifest.run_id}"
        else:
            change(forged)
            expected = f"provenance: {where} does not match the run"
        _write_signed(store, manifest.run_id, key[0], [forged])
        assert expected in _problems(store, manifest.run_id, key[1]), where


def test_an_evaluation_left_out_of_the_attestation_is_named(
    run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = run
    manifest.eval = {"metrics": {"exact_match": {"mean": 0.5, "n": 2}}, "n": 2}
    manifest.seal(key[0]).save(store.manifest_path(manifest.run_id))
    fresh, _ = run_statements(store, manifest)
    _write_signed(store, manifest.run_id, key[0], fresh[:1])
    assert _problems(store, manifest.run_id, key[1]) == [
        f"evaluation is not attested; re-attest with `provenir attest {manifest.run_id}`"
    ]


def test_a_gate_record_that_cannot_be_read_stops_the_statements(
    run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = run
    gate = store.run_dir(manifest.run_id) / GATE_FILE
    gate.write_text("{broken")
    with pytest.raises(AttestationError, match=f"runs/{manifest.run_id}/{GATE_FILE} cannot be read"):
        run_statements(store, manifest)
    problems = _problems(store, manifest.run_id, key[1])
    assert any(p.startswith("the run's statements cannot be rebuilt (") for p in problems)


def test_a_gate_record_about_no_evaluation_is_not_attested(run: tuple[RunStore, RunManifest]) -> None:
    store, manifest = run
    (store.run_dir(manifest.run_id) / GATE_FILE).write_text(json.dumps({"decision": {"passed": True}}))
    statements, notes = run_statements(store, manifest)
    assert [s["predicateType"] for s in statements] == [SLSA_PROVENANCE]
    assert notes == [f"{GATE_FILE} is about another evaluation than the current eval.json: not attested"]


def test_only_a_completed_run_is_attested(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    manifest = _manifest(status="failed")
    manifest.save(store.manifest_path(manifest.run_id))
    with pytest.raises(AttestationError, match="has status failed: only a completed run"):
        run_statements(store, manifest)


def test_a_key_that_is_not_a_path_attests_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVENIR_SIGNING_KEY", raising=False)
    store = RunStore(tmp_path)
    for configured in (5, "", None):
        manifest = _manifest(config={"manifest": {"signing_key_path": configured}})
        manifest.save(store.manifest_path(manifest.run_id))
        assert attest_if_configured(store, manifest.run_id) is None


# -- what the statements say ------------------------------------------------------------------------------


def test_outputs_that_cannot_be_attested_are_refused() -> None:
    for outputs, message in (
        ({"../escape.bin": "a" * 64}, "is not a path inside the run folder"),
        ({"/abs/w.bin": "a" * 64}, "is not a path inside the run folder"),
        ({"a\\b.bin": "a" * 64}, "is not a path inside the run folder"),
        ({"": "a" * 64}, "is not a path inside the run folder"),
        ({}, "lists no output files: nothing to attest"),
    ):
        with pytest.raises(AttestationError, match=message):
            provenance_statement(_manifest(outputs=outputs), "0" * 64)


def test_the_model_is_the_folder_of_the_weights_file_or_that_file() -> None:
    def subjects(manifest: RunManifest) -> list[str]:
        return [s["name"] for s in evaluation_statement(manifest, {"metrics": {}}, None)["subject"]]

    assert subjects(_manifest()) == ["adapter/cfg.json", "adapter/w.bin"]
    top = {"model.bin": "a" * 64, "notes.txt": "b" * 64, "train_log.jsonl": "e" * 64}
    assert subjects(_manifest(outputs=top)) == ["model.bin"]
    # No weights hash recorded: every output except the training log and the evaluation file.
    loose = {"w.bin": "1" * 64, "train_log.jsonl": "e" * 64, "eval.json": "f" * 64}
    assert subjects(_manifest(outputs=loose, adapter_hash=None)) == ["w.bin"]
    with pytest.raises(AttestationError, match="has no model files to attest an evaluation about"):
        subjects(_manifest(outputs={"train_log.jsonl": "e" * 64}, adapter_hash=None))


def test_the_evaluated_rows_are_named_by_file_when_they_are_the_runs_own() -> None:
    inputs = RunInputs(
        training_rows=RowsPin(path="data/train.jsonl", sha256="1" * 64, count=6),
        eval_rows=RowsPin(path="data/eval.jsonl", sha256="2" * 64, count=2),
    )
    manifest = _manifest(inputs=inputs)
    own = {"metrics": {}, "extra": {"data_sha256": "2" * 64, "data": "somewhere", "data_rows": 2}}
    dataset = evaluation_statement(manifest, own, None)["predicate"]["dataset"]
    assert dataset == {"name": "data/eval.jsonl", "digest": {"sha256": "2" * 64}, "annotations": {"rows": 2}}
    other = {"metrics": {}, "extra": {"data_sha256": "3" * 64, "data": "hub:org/set"}}
    dataset = evaluation_statement(manifest, other, "9" * 64)["predicate"]["dataset"]
    assert dataset == {"name": "evaluation data", "uri": "hub:org/set", "digest": {"sha256": "3" * 64}}
    no_inputs = evaluation_statement(_manifest(), own, None)["predicate"]["dataset"]
    assert no_inputs["name"] == "evaluation data" and no_inputs["uri"] == "somewhere"


def test_the_gate_statement_carries_the_decision() -> None:
    record = {
        "decision": {"passed": False, "tripped": ["exact_match"], "tolerance": 0.02, "mode": "absolute"},
        "baseline": {"sha256": "4" * 64},
        "evaluation": {"path": "eval.json", "sha256": "5" * 64},
        "created_at": "2025-01-02T03:04:05+00:00",
    }
    predicate = gate_statement(_manifest(), record)["predicate"]
    assert predicate["passed"] is False and predicate["tripped"] == ["exact_match"]
    assert predicate["baseline"] == {"name": "baseline evaluation", "digest": {"sha256": "4" * 64}}
    assert predicate["evaluation"] == {"name": "eval.json", "digest": {"sha256": "5" * 64}}
    assert predicate["decidedAt"] == "2025-01-02T03:04:05Z"


def test_internal_parameters_and_schema_one_dependencies() -> None:
    parent = "11111111-1111-4111-8111-111111111111"
    manifest = _manifest(
        provenance=[parent],
        relation="reproduce",
        eval_dataset_hash="f" * 64,
        data_path="data/train.jsonl",
        git_sha="abc123",
        git_dirty=True,
    )
    statement = provenance_statement(manifest, "0" * 64)
    internal = statement["predicate"]["buildDefinition"]["internalParameters"]
    assert internal["datasetHash"] == "d" * 64 and internal["evalDatasetHash"] == "f" * 64
    assert internal["parentRuns"] == [parent] and internal["relation"] == "reproduce"
    assert "unpinnedInputs" not in internal
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert deps == [
        {"name": "train dataset", "uri": "data/train.jsonl", "digest": {"sha256": "d" * 64}},
        {"name": "eval dataset", "digest": {"sha256": "f" * 64}},
        {"name": "code", "digest": {"gitCommit": "abc123"}, "annotations": {"workingTreeDirty": True}},
    ]
    bare = provenance_statement(_manifest(dataset_hash=""), "0" * 64)["predicate"]["buildDefinition"]
    assert "datasetHash" not in bare["internalParameters"] and "parentRuns" not in bare["internalParameters"]
    assert bare["resolvedDependencies"] == []


def test_local_and_unresolved_hub_models_carry_no_commit() -> None:
    files = {"w.bin": "1" * 64}
    for kind, revision in (("local", "abc"), ("hub", None)):
        pin = FileSetPin(source="org/m", kind=kind, resolved_revision=revision, files=files, digest="2" * 64)
        inputs = RunInputs(model=pin, training_rows=RowsPin(path="t.jsonl", sha256="3" * 64, count=1))
        deps = provenance_statement(_manifest(inputs=inputs), "0" * 64)["predicate"]["buildDefinition"][
            "resolvedDependencies"
        ]
        model, weights = deps[0], deps[1]
        assert set(model["digest"]) == {"dirHash"}, kind
        assert "uri" not in weights and weights["digest"] == {"sha256": "1" * 64}
        assert ("uri" in model) == (kind == "hub")


def test_the_builder_names_the_recorded_versions() -> None:
    environment = {"python": "3.11.7", "packages": {"provenir": "0.9.1", "torch": "2.1+cpu", "peft": None}}
    builder = provenance_statement(_manifest(environment=environment), "0" * 64)["predicate"]["runDetails"][
        "builder"
    ]
    assert builder["id"] == "https://provenir.dev/builder/provenir@v0.9.1"
    assert builder["version"] == {"provenir": "0.9.1", "python": "3.11.7", "torch": "2.1+cpu"}
    assert builder["builderDependencies"] == [{"name": "torch", "uri": "pkg:pypi/torch@2.1%2Bcpu"}]
    plain = provenance_statement(_manifest(environment={}), "0" * 64)["predicate"]["runDetails"]["builder"]
    assert plain == {
        "id": f"https://provenir.dev/builder/provenir@v{__version__}",
        "version": {"provenir": __version__},
    }


def test_times_are_rfc3339_utc_or_refused() -> None:
    assert rfc3339("2025-01-02T03:04:05") == "2025-01-02T03:04:05Z"  # naive: UTC
    assert rfc3339("") is None
    with pytest.raises(AttestationError, match="'yesterday' is not an ISO-8601 time"):
        rfc3339("yesterday")


def test_predicate_types_in_file_order(run: tuple[RunStore, RunManifest]) -> None:
    store, manifest = run
    manifest.eval = {"metrics": {}, "n": 0}
    statements, _ = run_statements(store, manifest)
    assert [s["predicateType"] for s in statements] == [SLSA_PROVENANCE, EVALUATION_PREDICATE]
    assert GATE_PREDICATE not in [s["predicateType"] for s in statements]


def test_a_subject_that_leaves_the_run_folder_through_a_link_or_dots_is_outside(
    run: tuple[RunStore, RunManifest], key: tuple[Path, str], tmp_path: Path
) -> None:
    store, manifest = run
    statement = _statements(store, manifest.run_id)[0]
    run_dir = store.run_dir(manifest.run_id)
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the run")
    (run_dir / "escape").symlink_to(tmp_path, target_is_directory=True)
    statement["subject"] += [
        {"name": "escape/secret.txt", "digest": {"sha256": sha256_file(secret)}},
        {"name": "adapter/../train_log.jsonl", "digest": {"sha256": manifest.outputs["train_log.jsonl"]}},
    ]
    _write_signed(store, manifest.run_id, key[0], [statement])
    problems = _problems(store, manifest.run_id, key[1])
    assert "provenance: subject escape/secret.txt is outside the run folder" in problems
    assert "provenance: subject adapter/../train_log.jsonl is outside the run folder" in problems
