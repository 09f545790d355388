"""Signed in-toto attestations: checked with other people's code (securesystemslib, in-toto's models).

Our envelopes must verify with securesystemslib's DSSE implementation, our statements must parse
strictly into the in-toto attestation protobuf models (Statement v1, SLSA Provenance v1), and every
digest they carry must equal the files on disk and the manifest. Tampering, a foreign key and a
stale attestation are each detected.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from provenir.core.config import RunConfig
from provenir.core.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, pae
from provenir.core.errors import AttestationError
from provenir.core.hashing import sha256_file
from provenir.core.inputs import FileSetPin
from provenir.core.manifest import RunManifest
from provenir.core.signers import fingerprint as raw_fingerprint
from provenir.core.signers import parse_public_key
from provenir.core.signing_keys import generate_signing_key, load_signing_key, public_key_b64
from provenir.core.store import ATTESTATION_FILE, GATE_FILE, RunStore
from provenir.eval.harness import EVAL_FILENAME, EvalResult, MultiMetricEvaluator
from provenir.eval.regression import RegressionGate
from provenir.eval.run_evaluation import attach_to_manifest
from provenir.governance.attestation import (
    BUILD_TYPE,
    EVALUATION_FILE,
    EVALUATION_PREDICATE,
    GATE_PREDICATE,
    SLSA_PROVENANCE,
    STATEMENT_TYPE,
    attest_run,
    dir_hash,
    provenance_statement,
    rfc3339,
    verify_attestations,
)
from provenir.governance.audit import AuditReader
from provenir.train.evaluation import record_gate
from provenir.train.runner import train

ROWS = [{"prompt": f"What is {i} plus {i}?", "response": str(2 * i)} for i in range(12)]


# -- fixtures ---------------------------------------------------------------------------------------


def _key(path: Path) -> tuple[Path, str]:
    generate_signing_key(path)
    return path, public_key_b64(load_signing_key(path))


@pytest.fixture()
def key(tmp_path: Path) -> tuple[Path, str]:
    """The run's signing key: (PEM path, base64 public key)."""
    return _key(tmp_path / "run.pem")


def _config(tmp_path: Path, key_path: Path | None) -> RunConfig:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return RunConfig.from_dict(
        {
            "backend": "stub",
            "output_dir": str(tmp_path / "artifacts"),
            "data": {"path": str(data), "eval_split": 0.25},
            "manifest": {"signing_key_path": str(key_path) if key_path else None},
        }
    )


@pytest.fixture()
def signed_run(tmp_path: Path, key: tuple[Path, str]) -> tuple[RunStore, RunManifest]:
    """A stub run trained with a signing key configured: attested automatically at its end."""
    config = _config(tmp_path, key[0])
    return RunStore(config.output_dir), train(config)


def _lines(store: RunStore, run_id: str) -> list[str]:
    return store.attestation_path(run_id).read_text(encoding="utf-8").splitlines()


def _statements(store: RunStore, run_id: str) -> list[dict[str, Any]]:
    return [json.loads(base64.b64decode(json.loads(line)["payload"])) for line in _lines(store, run_id)]


def fingerprint(public_b64: str) -> str:
    return raw_fingerprint(parse_public_key(public_b64))


def _sslib_key(public_b64: str, keyid: str | None = None) -> SSlibKey:
    raw = base64.b64decode(public_b64)
    return SSlibKey(keyid or fingerprint(public_b64), "ed25519", "ed25519", {"public": raw.hex()})


def _sslib_verify(line: str, public_b64: str, keyid: str | None = None) -> dict[str, Any]:
    return SslibEnvelope.from_dict(json.loads(line)).verify(keys=[_sslib_key(public_b64, keyid)], threshold=1)


def _evaluate(store: RunStore, run_id: str, predictions: list[str]) -> EvalResult:
    """Score ``predictions`` against the run's stored eval rows and attach them (as `provenir eval` does)."""
    rdir = store.run_dir(run_id)
    rows = [json.loads(line) for line in (rdir / "data" / "eval.jsonl").read_text().splitlines()]
    result = MultiMetricEvaluator(["exact_match", "token_f1"], keep_predictions=True).evaluate(
        rows, predictions[: len(rows)]
    )
    result.extra.update(run_id=run_id, data="run eval rows", data_sha256="ab" * 32, data_rows=len(rows))
    path = result.save(rdir / EVAL_FILENAME)
    attach_to_manifest(store.manifest_path(run_id), result, path)
    return result


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from provenir.cli.main import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


# -- DSSE ---------------------------------------------------------------------------------------------


def test_pae_equals_securesystemslibs() -> None:
    for payload_type, body in [
        ("http://example.com/HelloWorld", b"hello world"),
        (IN_TOTO_PAYLOAD_TYPE, b""),
    ]:
        assert pae(payload_type, body) == SslibEnvelope(body, payload_type, {}).pae()
    assert pae("t", b"xy") == b"DSSEv1 1 t 2 xy"


def test_envelope_round_trips_and_rejects_malformed_input() -> None:
    env = Envelope(IN_TOTO_PAYLOAD_TYPE, b'{"a":1}', ())
    with pytest.raises(AttestationError, match="no signatures"):
        Envelope.from_dict(env.to_dict())
    with pytest.raises(AttestationError, match="invalid JSON"):
        Envelope.from_json("{not json")
    with pytest.raises(AttestationError, match="base64"):
        Envelope.from_dict({"payloadType": "x", "payload": "***", "signatures": [{"keyid": "", "sig": ""}]})


# -- the provenance written at the end of train --------------------------------------------------------


def test_train_with_a_key_attests_and_securesystemslib_verifies_it(
    signed_run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = signed_run
    path = store.attestation_path(manifest.run_id)
    lines = _lines(store, manifest.run_id)
    assert len(lines) == 1  # provenance only: no evaluation yet
    accepted = _sslib_verify(lines[0], key[1])
    assert list(accepted) == [fingerprint(key[1])] == [manifest.signature.fingerprint]  # type: ignore[union-attr]
    assert json.loads(lines[0])["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    # Not an output of the manifest (it is sealed before the attestation is written)...
    assert ATTESTATION_FILE not in manifest.outputs and store.verify(manifest.run_id).ok
    # ...but listed, with its hash, in the audit log.
    events = AuditReader(store.audit_dir).query(run_id=manifest.run_id, limit=10, order="asc").records
    assert [e.event for e in events] == ["training_started", "training_completed", "attestation_written"]
    assert events[-1].fields["sha256"] == sha256_file(path)
    assert events[-1].fields["statements"] == [SLSA_PROVENANCE]
    assert verify_attestations(store, manifest.run_id, public_keys=[key[1]]).ok


def test_provenance_parses_strictly_into_in_toto_models(signed_run: tuple[RunStore, RunManifest]) -> None:
    store, manifest = signed_run
    (statement,) = _statements(store, manifest.run_id)
    # Unknown fields are errors in protobuf's JSON parser: every field we write is one the specs define.
    pb = json_format.ParseDict(statement, statement_pb2.Statement())
    Statement.copy_from_pb(pb).validate()
    provenance = json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == SLSA_PROVENANCE
    definition = provenance.build_definition
    assert definition.build_type == BUILD_TYPE
    assert json_format.MessageToDict(definition.external_parameters) == manifest.config
    for dep in definition.resolved_dependencies:
        ResourceDescriptor.copy_from_pb(dep).validate()
    details = provenance.run_details
    assert details.builder.id.startswith("https://provenir.dev/builder/provenir@v")
    assert details.metadata.invocation_id == manifest.run_id
    # protobuf parsed the RFC 3339 times: they are the manifest's instants.
    assert details.metadata.started_on.ToDatetime(tzinfo=UTC) == datetime.fromisoformat(manifest.timestamp)
    assert details.metadata.finished_on.ToDatetime(tzinfo=UTC) == datetime.fromisoformat(
        manifest.finished_at or ""
    )
    byproduct = statement["predicate"]["runDetails"]["byproducts"][0]
    assert byproduct["digest"]["sha256"] == sha256_file(store.manifest_path(manifest.run_id))
    assert byproduct["annotations"]["manifestHash"] == manifest.manifest_hash


def test_every_subject_is_an_output_file_with_its_sha256(signed_run: tuple[RunStore, RunManifest]) -> None:
    store, manifest = signed_run
    (statement,) = _statements(store, manifest.run_id)
    run_dir = store.run_dir(manifest.run_id)
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects == manifest.outputs
    assert {"adapter/stub_adapter.bin", "train_log.jsonl"} <= subjects.keys()
    for name, digest in subjects.items():
        assert sha256_file(run_dir / name) == digest


def test_resolved_dependencies_are_the_manifest_inputs(signed_run: tuple[RunStore, RunManifest]) -> None:
    store, manifest = signed_run
    (statement,) = _statements(store, manifest.run_id)
    deps = {d["name"]: d for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}
    inputs = manifest.inputs
    assert inputs is not None and inputs.eval_rows is not None and inputs.chat_template is not None
    for source in inputs.datasets:
        dep = deps[f"{source.role} dataset"]
        assert (dep["uri"], dep["digest"], dep["annotations"]["rows"]) == (
            source.uri,
            {"sha256": source.sha256},
            source.rows,
        )
    for pin in (inputs.training_rows, inputs.eval_rows):
        assert deps[pin.path]["digest"] == {"sha256": pin.sha256}
        assert deps[pin.path]["annotations"]["rows"] == pin.count
        assert sha256_file(store.run_dir(manifest.run_id) / pin.path) == pin.sha256
    assert deps[f"chat template {inputs.chat_template.name}"]["digest"] == {
        "sha256": inputs.chat_template.sha256
    }
    if manifest.git_sha:  # the tests run inside the project's git checkout
        assert deps["code"]["digest"] == {"gitCommit": manifest.git_sha}
    internal = statement["predicate"]["buildDefinition"]["internalParameters"]
    assert (internal["backend"], internal["algorithm"]) == ("stub", manifest.algorithm)
    assert internal["unpinnedInputs"] == inputs.notes  # the stub loads no model, and says so


def test_model_files_are_dependencies_with_a_dirhash_sha256sum_agrees_with(
    signed_run: tuple[RunStore, RunManifest], tiny_model_path: Path
) -> None:
    from provenir.train.model_files import pin_model

    _, manifest = signed_run
    pin = pin_model("provenir/tiny-llama")
    assert manifest.inputs is not None
    manifest.inputs.model = pin
    deps = {
        d["name"]: d
        for d in provenance_statement(manifest, "0" * 64)["predicate"]["buildDefinition"][
            "resolvedDependencies"
        ]
    }
    for rel, sha in pin.files.items():
        assert deps[f"model/{rel}"]["digest"] == {"sha256": sha}
    # in-toto's dirHash, computed by the shell command its spec gives, over the model folder.
    shell = subprocess.run(
        "find . -type f | cut -c3- | LC_ALL=C sort | xargs -r sha256sum | sha256sum | cut -f1 -d' '",
        shell=True,
        cwd=tiny_model_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    on_disk = sorted(
        p.relative_to(tiny_model_path).as_posix() for p in tiny_model_path.rglob("*") if p.is_file()
    )
    if on_disk == sorted(pin.files):  # the pin covers the whole folder, so the two hashes must agree
        assert deps["model"]["digest"]["dirHash"] == shell
    assert deps["model"]["annotations"]["provenirDigest"] == pin.digest


def test_a_hub_model_carries_its_commit_and_resolve_urls(signed_run: tuple[RunStore, RunManifest]) -> None:
    _, manifest = signed_run
    assert manifest.inputs is not None
    commit = "a" * 40
    files = {"config.json": "1" * 64, "model.safetensors": "2" * 64}
    manifest.inputs.model = FileSetPin(
        source="org/model",
        kind="hub",
        requested_revision="main",
        resolved_revision=commit,
        files=files,
        digest="3" * 64,
    )
    deps = {
        d["name"]: d
        for d in provenance_statement(manifest, "0" * 64)["predicate"]["buildDefinition"][
            "resolvedDependencies"
        ]
    }
    assert deps["model"]["digest"] == {"dirHash": dir_hash(files), "gitCommit": commit}
    assert deps["model"]["uri"] == "https://huggingface.co/org/model"
    assert (
        deps["model/config.json"]["uri"] == f"https://huggingface.co/org/model/resolve/{commit}/config.json"
    )


def test_dir_hash_matches_sha256sum_over_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    (folder / "sub").mkdir(parents=True)
    files = {"b.txt": b"b", "a.txt": b"a", "sub/c.bin": b"\x00c", "Z.json": b"{}"}
    for rel, data in files.items():
        (folder / rel).write_bytes(data)
    shell = subprocess.run(
        "find . -type f | cut -c3- | LC_ALL=C sort | xargs -r sha256sum | sha256sum | cut -f1 -d' '",
        shell=True,
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert dir_hash({rel: sha256_file(folder / rel) for rel in files}) == shell


def test_rfc3339_is_utc_with_z() -> None:
    assert rfc3339("2025-01-02T03:04:05.123456+00:00") == "2025-01-02T03:04:05.123456Z"
    assert rfc3339("2025-01-02T05:04:05+02:00") == "2025-01-02T03:04:05Z"
    assert rfc3339(None) is None


# -- tampering, foreign keys, staleness -----------------------------------------------------------


def test_a_tampered_payload_fails_third_party_and_our_verification(
    signed_run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = signed_run
    path = store.attestation_path(manifest.run_id)
    envelope = json.loads(_lines(store, manifest.run_id)[0])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64  # point the attestation at other bytes
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(VerificationError):
        _sslib_verify(json.dumps(envelope), key[1])
    path.write_text(json.dumps(envelope) + "\n")
    result = verify_attestations(store, manifest.run_id, public_keys=[key[1]])
    assert not result.ok and any("no signature verifies" in p for p in result.problems)


def test_a_foreign_key_fails_third_party_and_our_verification(
    signed_run: tuple[RunStore, RunManifest], tmp_path: Path, key: tuple[Path, str]
) -> None:
    store, manifest = signed_run
    _, other = _key(tmp_path / "other.pem")
    line = _lines(store, manifest.run_id)[0]
    with pytest.raises(VerificationError):
        _sslib_verify(line, other)
    with pytest.raises(VerificationError):  # claiming the right keyid does not help the wrong key
        _sslib_verify(line, other, keyid=fingerprint(key[1]))
    result = verify_attestations(store, manifest.run_id, public_keys=[other])
    assert not result.ok and "no signature verifies" in result.problems[0]
    # An attacker re-signing with their own key is caught by the trusted key, not by the embedded one.
    attest_run(store, manifest.run_id, key=tmp_path / "other.pem")
    assert not verify_attestations(store, manifest.run_id, public_keys=[key[1]]).ok
    assert verify_attestations(store, manifest.run_id, public_keys=[other]).ok


def test_a_changed_output_file_is_reported(
    signed_run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = signed_run
    weights = store.run_dir(manifest.run_id) / "adapter" / "stub_adapter.bin"
    weights.write_bytes(weights.read_bytes() + b"!")
    problems = verify_attestations(store, manifest.run_id, public_keys=[key[1]]).problems
    assert (
        "provenance: subject adapter/stub_adapter.bin changed (sha256 differs from the attestation)"
        in problems
    )
    with pytest.raises(AttestationError, match="does not verify"):
        attest_run(store, manifest.run_id)  # never vouch for a tampered run


def test_a_reseal_after_the_attestation_is_reported_as_stale(
    signed_run: tuple[RunStore, RunManifest], key: tuple[Path, str]
) -> None:
    store, manifest = signed_run
    manifest.extra["note"] = "changed after attesting"
    manifest.seal(str(key[0])).save(store.manifest_path(manifest.run_id))
    problems = verify_attestations(store, manifest.run_id, public_keys=[key[1]]).problems
    assert problems == [
        f"provenance is stale: the manifest changed after it was signed; re-attest with `provenir attest {manifest.run_id}`"
    ]
    attest_run(store, manifest.run_id)
    assert verify_attestations(store, manifest.run_id, public_keys=[key[1]]).ok


def test_without_a_key_nothing_is_attested_and_attest_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVENIR_SIGNING_KEY", raising=False)
    config = _config(tmp_path, None)
    manifest = train(config)
    store = RunStore(config.output_dir)
    assert not store.attestation_path(manifest.run_id).exists()
    code, out, err = _main(["attest", manifest.run_id[:8], "--output-dir", config.output_dir], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: no signing key: pass --key KEY")
    assert not store.attestation_path(manifest.run_id).exists()
    # Verification of an unsigned run without a key to check against fails, naming what to pass.
    assert "pass --public-key" in verify_attestations(store, manifest.run_id).problems[0]


def test_a_failed_attestation_fails_train_after_the_run_is_recorded(
    tmp_path: Path, key: tuple[Path, str]
) -> None:
    from provenir.train.runner import RunOptions

    config = _config(tmp_path, key[0])
    store = RunStore(config.output_dir)
    run_id = "123e4567-e89b-42d3-a456-426614174000"
    store.attestation_path(run_id).mkdir(parents=True)  # something the user must clear away
    with pytest.raises(AttestationError, match=f"fix that, then run `provenir attest {run_id}`"):
        train(config, RunOptions(run_id=run_id))
    # The run itself completed and verifies; only its attestation is missing.
    assert RunManifest.load(store.manifest_path(run_id)).status == "completed"
    assert store.verify(run_id).ok
    store.attestation_path(run_id).rmdir()
    attest_run(store, run_id)
    assert verify_attestations(store, run_id, public_keys=[key[1]]).ok


def test_the_environment_key_attests_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_path, public = _key(tmp_path / "env.pem")
    monkeypatch.setenv("PROVENIR_SIGNING_KEY", str(key_path))
    config = _config(tmp_path, None)
    manifest = train(config)
    store = RunStore(config.output_dir)
    _sslib_verify(_lines(store, manifest.run_id)[0], public)


# -- evaluation and gate statements ---------------------------------------------------------------------


def test_evaluation_and_gate_get_their_own_signed_statements(
    signed_run: tuple[RunStore, RunManifest], key: tuple[Path, str], tmp_path: Path
) -> None:
    store, manifest = signed_run
    run_id = manifest.run_id
    result = _evaluate(store, run_id, ["0", "2", "4", "7"])
    # The evaluation re-sealed the manifest: the provenance written by train is now stale.
    assert any("stale" in p for p in verify_attestations(store, run_id, public_keys=[key[1]]).problems)
    attest_run(store, run_id)
    baseline = result.save(tmp_path / "baseline.json")  # the same results: the gate passes
    decision = RegressionGate(0.02).compare(result, EvalResult.load(baseline))
    record_gate(store.manifest_path(run_id), decision, baseline)  # re-attests: a key is configured
    lines = _lines(store, run_id)
    assert len(lines) == 3
    for line in lines:
        _sslib_verify(line, key[1])
        Statement.copy_from_pb(
            json_format.ParseDict(
                json.loads(base64.b64decode(json.loads(line)["payload"])), statement_pb2.Statement()
            )
        ).validate()
    provenance, evaluation, gate = _statements(store, run_id)
    manifest = RunManifest.load(store.manifest_path(run_id))
    assert [s["predicateType"] for s in (provenance, evaluation, gate)] == [
        SLSA_PROVENANCE,
        EVALUATION_PREDICATE,
        GATE_PREDICATE,
    ]
    adapter = {rel: sha for rel, sha in manifest.outputs.items() if rel.startswith("adapter/")}
    for statement in (evaluation, gate):
        assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]} == adapter
    assert EVALUATION_FILE in {s["name"] for s in provenance["subject"]}  # eval.json is an output now
    predicate = evaluation["predicate"]
    exact = predicate["metrics"]["exact_match"]
    assert (exact["mean"], exact["ciLower"], exact["ciUpper"], exact["n"]) == (
        result.metrics["exact_match"].mean,
        result.metrics["exact_match"].ci_lower,
        result.metrics["exact_match"].ci_upper,
        3,
    )
    assert predicate["dataset"]["digest"] == {"sha256": "ab" * 32}
    assert predicate["dataset"]["annotations"] == {"rows": 3}
    assert predicate["results"]["digest"] == {"sha256": sha256_file(store.run_dir(run_id) / EVAL_FILENAME)}
    assert predicate["run"]["invocationId"] == run_id
    gate_predicate = gate["predicate"]
    assert gate_predicate["passed"] is True and gate_predicate["tolerance"] == 0.02
    comparison = gate_predicate["comparisons"]["exact_match"]
    assert comparison["test"] == "mcnemar" and comparison["pValue"] == 1.0
    assert gate_predicate["baseline"]["digest"] == {"sha256": sha256_file(baseline)}
    assert gate_predicate["evaluation"] == predicate["results"]
    assert verify_attestations(store, run_id, public_keys=[key[1]]).ok
    # A gate decision edited after it was attested no longer matches the signed statement.
    gate_file = store.run_dir(run_id) / GATE_FILE
    record = json.loads(gate_file.read_text())
    record["decision"]["tolerance"] = 0.5
    gate_file.write_text(json.dumps(record))
    problems = verify_attestations(store, run_id, public_keys=[key[1]]).problems
    assert problems == ["regression gate: predicate.tolerance does not match the run"]


def test_attest_and_verify_on_the_command_line(
    signed_run: tuple[RunStore, RunManifest],
    key: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, manifest = signed_run
    out_dir = str(store.root)
    code, out, _ = _main(["attest", "latest", "--output-dir", out_dir, "--key", str(key[0])], capsys)
    assert code == 0 and f"signed by key {fingerprint(key[1])}" in out
    trusted = tmp_path / "trusted.keys"
    trusted.write_text(f"# release signers\n{key[1]} ci\n")
    for policy in (["--public-key", key[1]], ["--trusted-keys", str(trusted)], []):
        code, out, err = _main(
            ["attest", "verify", manifest.run_id, "--output-dir", out_dir, *policy], capsys
        )
        assert code == 0, err
        assert out.startswith(f"ok {manifest.run_id}: SLSA provenance;")
    _, other = _key(tmp_path / "other.pem")
    code, out, err = _main(
        ["attest", "verify", manifest.run_id, "--output-dir", out_dir, "--public-key", other], capsys
    )
    assert code == 2 and "error: attestations of run" in err and "no signature verifies" in err
    # Copying the attestation of one run over another's is caught: its subjects and id are not this run's.
    (tmp_path / "second").mkdir()
    second = train(_config(tmp_path / "second", key[0]))
    second_store = RunStore(tmp_path / "second" / "artifacts")
    shutil.copy(store.attestation_path(manifest.run_id), second_store.attestation_path(second.run_id))
    code, _, err = _main(
        ["attest", "verify", second.run_id, "--output-dir", str(second_store.root), "--public-key", key[1]],
        capsys,
    )
    assert code == 2 and f"provenance: attests run {manifest.run_id}, not {second.run_id}" in err


@pytest.mark.slow
def test_provenir_eval_and_its_gate_re_attest_a_real_run(
    tiny_model_path: Path, tmp_path: Path, key: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A real tiny LoRA run: train attests, `provenir eval` re-attests, `--baseline` adds the gate."""
    config = RunConfig.from_dict(
        {
            "output_dir": str(tmp_path / "artifacts"),
            "max_steps": 1,
            "batch_size": 4,
            "peft": {"rank": 4, "alpha": 8},
            "data": {"max_samples": 16, "eval_split": 0.25},
            "manifest": {"signing_key_path": str(key[0])},
        }
    )
    manifest = train(config)
    store = RunStore(config.output_dir)
    run_id = manifest.run_id
    (provenance,) = _statements(store, run_id)
    deps = {d["name"] for d in provenance["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert manifest.inputs is not None and manifest.inputs.model is not None
    assert {"model", *(f"model/{rel}" for rel in manifest.inputs.model.files)} <= deps
    code, _, err = _main(["eval", run_id, "--output-dir", config.output_dir, "--max-new-tokens", "4"], capsys)
    assert code == 0, err
    assert [s["predicateType"] for s in _statements(store, run_id)] == [SLSA_PROVENANCE, EVALUATION_PREDICATE]
    baseline = shutil.copy(store.run_dir(run_id) / EVAL_FILENAME, tmp_path / "baseline.json")
    args = [
        "eval",
        run_id,
        "--output-dir",
        config.output_dir,
        "--max-new-tokens",
        "4",
        "--baseline",
        str(baseline),
    ]
    code, out, err = _main(args, capsys)
    assert code == 0 and "regression gate passed" in out, err
    statements = _statements(store, run_id)
    assert [s["predicateType"] for s in statements] == [SLSA_PROVENANCE, EVALUATION_PREDICATE, GATE_PREDICATE]
    for line in _lines(store, run_id):
        _sslib_verify(line, key[1])
    assert statements[1]["predicate"]["n"] == 4
    # It scored the rows the run stored: the dataset is that file, by its hash.
    assert manifest.inputs.eval_rows is not None
    assert statements[1]["predicate"]["dataset"]["name"] == manifest.inputs.eval_rows.path
    assert statements[1]["predicate"]["dataset"]["digest"] == {"sha256": manifest.inputs.eval_rows.sha256}
    assert statements[2]["predicate"]["baseline"]["digest"] == {"sha256": sha256_file(baseline)}
    assert verify_attestations(store, run_id, public_keys=[key[1]]).ok
    events = [
        r.event for r in AuditReader(store.audit_dir).query(run_id=run_id, limit=50, order="asc").records
    ]
    # After train, after each of the two evaluations, after the gate.
    assert events.count("attestation_written") == 4
