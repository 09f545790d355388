"""Signed in-toto attestations of a run, readable by other people's tools.

``provenir attest RUN`` (and, with a signing key configured, the end of ``train``, ``eval`` and
a regression gate) writes ``runs/<run_id>/provenance.intoto.jsonl``: one DSSE envelope per line
(:mod:`provenir.core.dsse`, payload type ``application/vnd.in-toto+json``), each around an
in-toto Statement v1 (``_type: https://in-toto.io/Statement/v1``) and signed with the run's
Ed25519 key. In this order:

1. **Provenance** (``predicateType: https://slsa.dev/provenance/v1``, SLSA Provenance v1).
   Subjects: every output file of the manifest, named by its path relative to the run folder,
   with its ``sha256``. Predicate:

   * ``buildDefinition.buildType``: :data:`BUILD_TYPE`, a Provenir training run.
   * ``externalParameters``: the resolved run config, exactly ``manifest.config``.
   * ``internalParameters``: what Provenir fixed: backend, algorithm, Provenir version, manifest
     schema, config and dataset hashes, parent runs and relation, device and platform, and the
     inputs that could not be pinned (``unpinnedInputs``).
   * ``resolvedDependencies``: from ``manifest.inputs``: every base-model file (``sha256``), the
     model itself (``dirHash`` over its files, plus ``gitCommit`` for a hub revision), the
     same for an initial adapter and a resumed checkpoint, the chat template, every dataset
     source (``uri``, ``sha256``; rows in ``annotations``), the exact training and eval rows
     files, and the code commit (``digest.gitCommit``; the repository is not recorded, so
     there is no ``git+<repo>@<sha>`` URI).
   * ``runDetails.builder.id``: ``https://provenir.dev/builder/provenir@v<version>`` (the
     version that trained, from the manifest), with package versions in ``builder.version``.
   * ``runDetails.metadata``: ``invocationId`` = run id; ``startedOn`` / ``finishedOn`` from the
     manifest (RFC 3339, UTC). ``byproducts``: the manifest file (``sha256`` of its bytes, and
     its ``manifest_hash`` in ``annotations``).

2. **Evaluation** (``predicateType:`` :data:`EVALUATION_PREDICATE`), when the run has an
   evaluation attached. Subjects: the model files (the adapter or model folder). Predicate:
   ``metrics`` (mean, ``ciLower``/``ciUpper``, ``confidence``, ``interval``, ``n`` per
   metric), ``n``, ``dataset`` (uri, ``sha256``, rows), ``results`` (``eval.json`` and its
   ``sha256``), ``bootstrap`` (resamples, seed), ``createdAt`` and ``run``.

3. **Regression gate** (``predicateType:`` :data:`GATE_PREDICATE`), when ``provenir eval RUN
   --baseline B`` recorded a decision (``gate.json``) about the current evaluation. Subjects:
   the model files. Predicate: ``passed``, ``tripped``, ``tolerance``, ``mode``, ``alpha``,
   ``requireSignificance``, ``paired``, per-metric ``comparisons`` (baseline, new, delta, drop,
   verdict, ``test``, ``pValue``, ``significant``, delta interval), ``baseline`` and
   ``evaluation`` (each with its ``sha256``), ``decidedAt`` and ``run``.

Every statement is a function of the sealed manifest and of files the manifest (or the gate
record) hashes, so :func:`verify_attestations` rebuilds them and reports any difference: a
stale attestation (the manifest was re-sealed after it) is named as such.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from provenir import __version__
from provenir.core.atomic import atomic_write_text
from provenir.core.dsse import IN_TOTO_PAYLOAD_TYPE, Envelope, sign_envelope, verify_envelope
from provenir.core.errors import AttestationError, ConfigError, ProvenirError
from provenir.core.hashing import canonical_json, sha256_bytes, sha256_file
from provenir.core.inputs import FileSetPin
from provenir.core.manifest import RunManifest
from provenir.core.signers import fingerprint, parse_public_key
from provenir.core.signing_keys import (
    SIGNING_KEY_ENV,
    load_signing_key,
    raw_public_key,
    signing_key_path,
)
from provenir.core.store import ATTESTATION_FILE, GATE_FILE, RunStore

#: in-toto Statement v1.
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
#: SLSA Provenance v1.
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
#: Provenir's predicate for an evaluation of a run's model (documented in docs/trust.md).
EVALUATION_PREDICATE = "https://provenir.dev/attestation/evaluation/v1"
#: Provenir's predicate for a regression-gate decision about a run's model.
GATE_PREDICATE = "https://provenir.dev/attestation/regression-gate/v1"
#: ``buildDefinition.buildType`` of a Provenir training run: externalParameters is a RunConfig.
BUILD_TYPE = "https://provenir.dev/buildtypes/training-run/v1"
#: ``runDetails.builder.id`` is this followed by ``@v<provenir version>``.
BUILDER_ID_PREFIX = "https://provenir.dev/builder/provenir"

#: The evaluation file inside a run folder (what ``provenir eval`` writes, see provenir.eval.harness).
EVALUATION_FILE = "eval.json"
_TRAIN_LOG = "train_log.jsonl"
_HUB = "https://huggingface.co"


def builder_id(version: str) -> str:
    """``https://provenir.dev/builder/provenir@v<version>``."""
    return f"{BUILDER_ID_PREFIX}@v{version}"


# -- statements -----------------------------------------------------------------------------------


def provenance_statement(manifest: RunManifest, manifest_sha256: str) -> dict[str, Any]:
    """The SLSA Provenance v1 statement of a completed run (``manifest_sha256``: its file's SHA-256)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [_descriptor(rel, sha256=sha) for rel, sha in sorted(_outputs(manifest).items())],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": manifest.config,
                "internalParameters": _internal_parameters(manifest),
                "resolvedDependencies": _resolved_dependencies(manifest),
            },
            "runDetails": {
                "builder": _builder(manifest),
                "metadata": _drop_none(
                    {
                        "invocationId": manifest.run_id,
                        "startedOn": rfc3339(manifest.timestamp),
                        "finishedOn": rfc3339(manifest.finished_at),
                    }
                ),
                "byproducts": [
                    _descriptor(
                        f"manifests/{manifest.run_id}.json",
                        sha256=manifest_sha256,
                        mediaType="application/json",
                        annotations={"manifestHash": manifest.manifest_hash},
                    )
                ],
            },
        },
    }


def evaluation_statement(
    manifest: RunManifest, evaluation: Mapping[str, Any], results_sha256: str | None
) -> dict[str, Any]:
    """The evaluation statement: metrics with intervals about the run's model files.

    ``evaluation`` is an evaluation summary (``manifest.eval``); ``results_sha256`` the hash of
    the run's ``eval.json`` when the manifest lists it.
    """
    extra = evaluation.get("extra") or {}
    scored = extra.get("data_sha256")
    stored = manifest.inputs.eval_rows if manifest.inputs is not None else None
    # The run's own eval rows are a file in its run folder: name that file, not a description.
    own_rows = stored is not None and scored == stored.sha256
    dataset = _drop_none(
        {
            "name": stored.path if own_rows and stored is not None else "evaluation data",
            "uri": None if own_rows else extra.get("data"),
            "digest": {"sha256": scored} if scored else None,
            "annotations": _drop_none({"rows": extra.get("data_rows")}) or None,
        }
    )
    predicate = _drop_none(
        {
            "run": _run_reference(manifest),
            "metrics": {
                name: _camel(metric) for name, metric in sorted((evaluation.get("metrics") or {}).items())
            },
            "n": evaluation.get("n"),
            "dataset": dataset,
            "results": _descriptor(EVALUATION_FILE, sha256=results_sha256) if results_sha256 else None,
            "bootstrap": _drop_none(
                {"resamples": evaluation.get("n_bootstrap"), "seed": evaluation.get("seed")}
            ),
            "template": extra.get("template"),
            "createdAt": rfc3339(evaluation.get("created_at")),
        }
    )
    return _statement(manifest, EVALUATION_PREDICATE, predicate)


def gate_statement(manifest: RunManifest, record: Mapping[str, Any]) -> dict[str, Any]:
    """The regression-gate statement from a gate record (``gate.json``, see ``train.evaluation``)."""
    decision = record.get("decision") or {}
    predicate = _drop_none(
        {
            "run": _run_reference(manifest),
            "passed": decision.get("passed"),
            "tripped": list(decision.get("tripped") or []),
            "tolerance": decision.get("tolerance"),
            "mode": decision.get("mode"),
            "alpha": decision.get("alpha"),
            "requireSignificance": decision.get("require_significance"),
            "paired": decision.get("paired"),
            "note": decision.get("note"),
            "comparisons": {
                name: _drop_none({k: v for k, v in _camel(c).items() if k != "name"})
                for name, c in sorted((decision.get("comparisons") or {}).items())
            },
            "baseline": _record_descriptor("baseline evaluation", record.get("baseline")),
            "evaluation": _record_descriptor(EVALUATION_FILE, record.get("evaluation")),
            "decidedAt": rfc3339(record.get("created_at")),
        }
    )
    return _statement(manifest, GATE_PREDICATE, predicate)


def run_statements(store: RunStore, manifest: RunManifest) -> tuple[list[dict[str, Any]], list[str]]:
    """Every statement the run supports now, in file order, and notes on what was left out.

    Reads the manifest file (for its digest), ``eval.json``'s recorded hash and ``gate.json``.
    """
    _require_completed(manifest)
    notes: list[str] = []
    manifest_sha = sha256_file(store.manifest_path(manifest.run_id))
    statements = [provenance_statement(manifest, manifest_sha)]
    if manifest.eval is not None:
        statements.append(
            evaluation_statement(manifest, manifest.eval, manifest.outputs.get(EVALUATION_FILE))
        )
    gate_file = store.run_dir(manifest.run_id) / GATE_FILE
    if gate_file.is_file():
        try:
            record = json.loads(gate_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AttestationError(f"runs/{manifest.run_id}/{GATE_FILE} cannot be read ({exc})") from None
        evaluated = (record.get("evaluation") or {}).get("sha256") if isinstance(record, dict) else None
        if evaluated is not None and evaluated == manifest.outputs.get(EVALUATION_FILE):
            statements.append(gate_statement(manifest, record))
        else:
            notes.append(f"{GATE_FILE} is about another evaluation than the current eval.json: not attested")
    return statements, notes


# -- writing ----------------------------------------------------------------------------------------


@dataclass
class AttestationRecord:
    """What :func:`write_attestations` wrote: the file, its hash, the statements and the signer."""

    path: Path
    sha256: str
    predicate_types: list[str]
    keyid: str
    notes: list[str] = field(default_factory=list)


def write_attestations(
    store: RunStore, run_id: str, key_path: str | os.PathLike[str], *, audit: bool = True
) -> AttestationRecord:
    """Sign every statement of a verified, completed run and write ``provenance.intoto.jsonl`` atomically.

    Refuses a run that does not verify (attesting it would vouch for tampered files). With
    ``audit``, records an ``attestation_written`` event (file, hash, statements, signer).
    """
    stored = store.open(run_id)
    manifest = stored.manifest
    if manifest is None or not stored.verification.ok:
        raise AttestationError(
            f"run {run_id} does not verify ({'; '.join(stored.verification.problems)}): not attesting it"
        )
    statements, notes = run_statements(stored.store, manifest)
    key = load_signing_key(key_path, purpose="signing an attestation")
    envelopes = [sign_envelope(canonical_json(statement), key) for statement in statements]
    text = "".join(envelope.to_json() + "\n" for envelope in envelopes)
    path = atomic_write_text(stored.store.attestation_path(manifest.run_id), text)
    record = AttestationRecord(
        path=path,
        sha256=sha256_bytes(text.encode("utf-8")),
        predicate_types=[s["predicateType"] for s in statements],
        keyid=fingerprint(raw_public_key(key)),
        notes=notes,
    )
    if audit:
        from provenir.governance.audit import AuditLogger

        AuditLogger(stored.store.audit_dir).log(
            "attestation_written",
            run_id=manifest.run_id,
            path=f"runs/{manifest.run_id}/{ATTESTATION_FILE}",
            sha256=record.sha256,
            statements=record.predicate_types,
            keyid=record.keyid,
        )
    return record


def attest_run(
    store: RunStore, ref: str | os.PathLike[str], *, key: str | os.PathLike[str] | None = None
) -> AttestationRecord:
    """``provenir attest``: find the run ``ref`` names and attest it with ``key``.

    The key defaults to the run's ``manifest.signing_key_path``, then ``$PROVENIR_SIGNING_KEY``;
    with none, refuses: an unsigned attestation is not an attestation.
    """
    found, manifest_file = store.locate(ref)
    manifest = RunManifest.load(manifest_file)
    chosen = key or signing_key_path(_configured_key(manifest))
    if chosen is None:
        raise AttestationError(
            f"no signing key: pass --key KEY (create one with `provenir manifest keygen KEY`) or set "
            f"${SIGNING_KEY_ENV}; an unsigned attestation is not an attestation"
        )
    return write_attestations(found, manifest.run_id, chosen)


def attest_if_configured(store: RunStore, run_id: str) -> AttestationRecord | None:
    """Re-attest a run whose config (or ``$PROVENIR_SIGNING_KEY``) names a signing key; else None.

    Called after every seal that finishes a stage (training, evaluation, a gate decision), so
    the attestation never describes an older manifest. A failure the user must fix (an
    unreadable key, a full disk) is an :class:`AttestationError` saying how to attest later.
    """
    manifest = RunManifest.load(store.manifest_path(run_id))
    key = signing_key_path(_configured_key(manifest))
    if key is None:
        return None
    try:
        return write_attestations(store, run_id, key)
    except (ProvenirError, OSError) as exc:
        reason = " ".join(str(exc).split())
        raise AttestationError(
            f"run {run_id} is recorded but its attestation could not be written ({reason}); "
            f"fix that, then run `provenir attest {run_id}`"
        ) from None


# -- verifying --------------------------------------------------------------------------------------


@dataclass
class AttestationVerification:
    """Outcome of :func:`verify_attestations`."""

    run_id: str | None
    predicate_types: list[str] = field(default_factory=list)
    subjects: int = 0
    signer: str | None = None
    trusted: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every envelope verifies and matches the run as it is now."""
        return not self.problems


def verify_attestations(
    store: RunStore, ref: str | os.PathLike[str], *, public_keys: Sequence[str] | None = None
) -> AttestationVerification:
    """Check a run's ``provenance.intoto.jsonl`` (never raises on tampering; see ``problems``).

    Each envelope's signature must verify with one of ``public_keys`` (base64 Ed25519), or,
    without any, with the key that signed the manifest (which proves consistency, not origin).
    Each statement must equal the one rebuilt from the run as it is now, every subject must be
    a file inside the run folder whose SHA-256 equals its digest and the manifest's, and the
    run itself must verify.
    """
    stored = store.open(ref)
    manifest = stored.manifest
    result = AttestationVerification(run_id=manifest.run_id if manifest else None)
    if manifest is None:
        result.problems.extend(stored.verification.problems)
        return result
    result.problems.extend(f"run: {p}" for p in stored.verification.problems)
    keys = list(public_keys or [])
    result.trusted = bool(keys)
    if not keys:
        if manifest.signature is None:
            result.problems.append(
                "the manifest is unsigned, so there is no key to check against: pass --public-key or --trusted-keys"
            )
            return result
        keys = [manifest.signature.public_key]
    path = stored.store.attestation_path(manifest.run_id)
    if not path.is_file():
        result.problems.append(f"no attestation: runs/{manifest.run_id}/{ATTESTATION_FILE} is missing")
        return result
    try:
        lines = [line for line in path.read_bytes().decode("utf-8").split("\n") if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        result.problems.append(f"{ATTESTATION_FILE} cannot be read ({exc})")
        return result
    signed: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        statement = _open_envelope(line, number, keys, result)
        if statement is not None:
            signed.append(statement)
    run_dir = stored.store.run_dir(manifest.run_id)
    for statement in signed:
        _check_subjects(statement, manifest, run_dir, result)
    _compare_with_run(signed, stored.store, manifest, result)
    result.predicate_types = [str(s.get("predicateType")) for s in signed]
    return result


def _open_envelope(
    line: str, number: int, keys: Sequence[str], result: AttestationVerification
) -> dict[str, Any] | None:
    """The statement of envelope ``number`` if its signature verifies (problems recorded otherwise)."""
    try:
        envelope = Envelope.from_json(line)
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise AttestationError(f"payloadType is {envelope.payload_type!r}, not {IN_TOTO_PAYLOAD_TYPE}")
        signer = verify_envelope(envelope, keys)
        statement = envelope.payload_json()
    except (AttestationError, ConfigError) as exc:
        result.problems.append(f"envelope {number}: {exc}")
        return None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        result.problems.append(f"envelope {number}: the payload is not an in-toto Statement v1")
        return None
    result.signer = result.signer or fingerprint(parse_public_key(signer))
    return statement


def _check_subjects(
    statement: Mapping[str, Any], manifest: RunManifest, run_dir: Path, result: AttestationVerification
) -> None:
    kind = _kind(statement)
    subjects = statement.get("subject") or []
    if kind == "provenance":
        result.subjects = len(subjects)
    root = run_dir.resolve()
    for subject in subjects:
        name = subject.get("name") if isinstance(subject, dict) else None
        digest = ((subject.get("digest") or {}) if isinstance(subject, dict) else {}).get("sha256")
        if not isinstance(name, str) or not isinstance(digest, str):
            result.problems.append(f"{kind}: a subject lacks a name or a sha256 digest")
            continue
        if not _is_relative(name) or not (run_dir / name).resolve().is_relative_to(root):
            result.problems.append(f"{kind}: subject {name} is outside the run folder")
            continue
        file = run_dir / name
        if not file.is_file():
            result.problems.append(f"{kind}: subject {name} is missing")
        elif sha256_file(file) != digest:
            result.problems.append(f"{kind}: subject {name} changed (sha256 differs from the attestation)")
        if manifest.outputs.get(name) != digest:
            result.problems.append(
                f"{kind}: subject {name} is not an output of the manifest with that sha256"
            )


def _compare_with_run(
    signed: list[dict[str, Any]], store: RunStore, manifest: RunManifest, result: AttestationVerification
) -> None:
    try:
        expected, _ = run_statements(store, manifest)
    except (ProvenirError, OSError) as exc:
        result.problems.append(f"the run's statements cannot be rebuilt ({exc})")
        return
    by_type = {s["predicateType"]: s for s in expected}
    seen = {str(s.get("predicateType")): s for s in signed}
    if len(seen) != len(signed):
        result.problems.append("the file holds more than one statement of the same type")
    if signed and signed[0].get("predicateType") != SLSA_PROVENANCE:
        result.problems.append("the first statement is not the SLSA provenance")
    for kind, statement in seen.items():
        want = by_type.get(kind)
        if want is None:
            result.problems.append(f"{_kind(statement)}: the run has nothing this statement could describe")
            continue
        where = _first_difference(statement, want)
        if where is None:
            continue
        attested = _invocation_id(statement)
        if attested != manifest.run_id:
            result.problems.append(f"{_kind(statement)}: attests run {attested}, not {manifest.run_id}")
        elif kind == SLSA_PROVENANCE and _manifest_digest(statement) != _manifest_digest(want):
            result.problems.append(
                "provenance is stale: the manifest changed after it was signed; "
                f"re-attest with `provenir attest {manifest.run_id}`"
            )
        else:
            result.problems.append(f"{_kind(statement)}: {where} does not match the run")
    for kind in by_type.keys() - seen.keys():
        result.problems.append(
            f"{_kind(by_type[kind])} is not attested; re-attest with `provenir attest {manifest.run_id}`"
        )


# -- parts of the provenance ------------------------------------------------------------------------


def _internal_parameters(manifest: RunManifest) -> dict[str, Any]:
    environment = manifest.environment
    return _drop_none(
        {
            "backend": manifest.backend,
            "algorithm": manifest.algorithm,
            "provenirVersion": _provenir_version(manifest),
            "manifestSchemaVersion": manifest.schema_version,
            "configHash": manifest.config_hash,
            "datasetHash": manifest.dataset_hash or None,
            "evalDatasetHash": manifest.eval_dataset_hash,
            "seed": manifest.seed,
            "relation": manifest.relation,
            "parentRuns": list(manifest.provenance) or None,
            "resumedFrom": manifest.resumed_from,
            "device": environment.get("device"),
            "platform": environment.get("platform"),
            "machine": environment.get("machine"),
            "unpinnedInputs": list(manifest.inputs.notes)
            if manifest.inputs and manifest.inputs.notes
            else None,
        }
    )


def _resolved_dependencies(manifest: RunManifest) -> list[dict[str, Any]]:
    deps: list[dict[str, Any]] = []
    inputs = manifest.inputs
    if inputs is not None:
        if inputs.model is not None:
            deps += _file_set("model", inputs.model)
        if inputs.init_adapter is not None:
            deps += _file_set("initial adapter", inputs.init_adapter)
        if inputs.resumed_checkpoint is not None:
            cp = inputs.resumed_checkpoint
            deps.append(
                _descriptor(
                    f"resumed checkpoint {cp.name}",
                    digest={"dirHash": dir_hash(cp.files)},
                    annotations={"provenirDigest": cp.digest, "files": len(cp.files)},
                )
            )
        if inputs.chat_template is not None:
            t = inputs.chat_template
            deps.append(
                _descriptor(
                    f"chat template {t.name}",
                    sha256=t.sha256,
                    annotations=_drop_none({"origin": t.origin, "version": t.version}),
                )
            )
        for source in inputs.datasets:
            deps.append(
                _descriptor(
                    f"{source.role} dataset",
                    uri=source.uri,
                    sha256=source.sha256,
                    annotations=_drop_none(
                        {
                            "rows": source.rows,
                            "rowsUsed": source.rows_used,
                            "revision": source.revision,
                            "config": source.config,
                            "split": source.split,
                            "weight": source.weight,
                        }
                    ),
                )
            )
        for stage, pin in (("training", inputs.training_rows), ("evaluation", inputs.eval_rows)):
            if pin is not None:
                deps.append(
                    _descriptor(pin.path, sha256=pin.sha256, annotations={"rows": pin.count, "stage": stage})
                )
    else:
        # Schema-1 manifests pinned only the datasets' hashes.
        if manifest.dataset_hash:
            deps.append(_descriptor("train dataset", uri=manifest.data_path, sha256=manifest.dataset_hash))
        if manifest.eval_dataset_hash:
            deps.append(_descriptor("eval dataset", sha256=manifest.eval_dataset_hash))
    if manifest.git_sha:
        deps.append(
            _descriptor(
                "code",
                digest={"gitCommit": manifest.git_sha},
                annotations=_drop_none({"workingTreeDirty": manifest.git_dirty}),
            )
        )
    return deps


def _file_set(label: str, pin: FileSetPin) -> list[dict[str, Any]]:
    """One descriptor for the whole model (dirHash, hub commit) and one per file it loads."""
    hub = pin.kind == "hub"
    revision = pin.resolved_revision
    digest: dict[str, str] = {"dirHash": dir_hash(pin.files)}
    if hub and revision:
        digest["gitCommit"] = revision
    whole = _descriptor(
        label,
        uri=f"{_HUB}/{pin.source}" if hub else None,
        digest=digest,
        annotations=_drop_none(
            {
                "source": pin.source,
                "kind": pin.kind,
                "requestedRevision": pin.requested_revision,
                "provenirDigest": pin.digest,
            }
        ),
    )
    files = [
        _descriptor(
            f"{label}/{rel}",
            uri=f"{_HUB}/{pin.source}/resolve/{revision}/{rel}" if hub and revision else None,
            sha256=sha,
        )
        for rel, sha in sorted(pin.files.items())
    ]
    return [whole, *files]


def dir_hash(files: Mapping[str, str]) -> str:
    """in-toto's ``dirHash`` of a file set from its ``path -> sha256`` map.

    Equals ``find . -type f | cut -c3- | LC_ALL=C sort | xargs -r sha256sum | sha256sum`` run
    in the folder: SHA-256 over ``"<sha256>  <path>\\n"`` lines in byte order of the paths.
    """
    ordered = sorted(files, key=lambda rel: rel.encode("utf-8"))
    return sha256_bytes("".join(f"{files[rel]}  {rel}\n" for rel in ordered).encode("utf-8"))


def _builder(manifest: RunManifest) -> dict[str, Any]:
    version = _provenir_version(manifest)
    packages = manifest.environment.get("packages") or {}
    versions = {"provenir": version}
    if manifest.environment.get("python"):
        versions["python"] = str(manifest.environment["python"])
    versions.update({name: str(v) for name, v in sorted(packages.items()) if v and name != "provenir"})
    dependencies = [
        {"name": name, "uri": f"pkg:pypi/{name.lower()}@{quote(str(v), safe='')}"}
        for name, v in sorted(packages.items())
        if v and name != "provenir"
    ]
    builder: dict[str, Any] = {"id": builder_id(version), "version": versions}
    if dependencies:
        builder["builderDependencies"] = dependencies
    return builder


def _provenir_version(manifest: RunManifest) -> str:
    """The Provenir version that trained the run (recorded), else the one running now."""
    recorded = (manifest.environment.get("packages") or {}).get("provenir")
    return str(recorded) if recorded else __version__


# -- helpers ----------------------------------------------------------------------------------------


def rfc3339(timestamp: str | None) -> str | None:
    """An ISO-8601 time as RFC 3339 in UTC with a ``Z`` (what in-toto Timestamps require)."""
    if not timestamp:
        return None
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        raise AttestationError(f"{timestamp!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # Provenir writes UTC; a naive time is UTC too
    moment = moment.astimezone(UTC)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _statement(manifest: RunManifest, predicate_type: str, predicate: dict[str, Any]) -> dict[str, Any]:
    subjects = _model_outputs(manifest)
    if not subjects:
        raise AttestationError(f"run {manifest.run_id} has no model files to attest an evaluation about")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [_descriptor(rel, sha256=sha) for rel, sha in sorted(subjects.items())],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def _run_reference(manifest: RunManifest) -> dict[str, Any]:
    return {"invocationId": manifest.run_id, "manifestHash": manifest.manifest_hash}


def _outputs(manifest: RunManifest) -> dict[str, str]:
    for rel in manifest.outputs:
        if not _is_relative(rel):
            raise AttestationError(
                f"run {manifest.run_id}: output {rel!r} is not a path inside the run folder; cannot attest it"
            )
    if not manifest.outputs:
        raise AttestationError(f"run {manifest.run_id} lists no output files: nothing to attest")
    return dict(manifest.outputs)


def _model_outputs(manifest: RunManifest) -> dict[str, str]:
    """The outputs that are the model: the folder holding the weights file (``adapter_hash``)."""
    outputs = _outputs(manifest)
    weights = next((rel for rel, sha in sorted(outputs.items()) if sha == manifest.adapter_hash), None)
    if weights is not None and "/" in weights:
        folder = weights.rsplit("/", 1)[0] + "/"
        return {rel: sha for rel, sha in outputs.items() if rel.startswith(folder)}
    if weights is not None:
        return {weights: outputs[weights]}
    return {rel: sha for rel, sha in outputs.items() if rel not in (_TRAIN_LOG, EVALUATION_FILE)}


def _require_completed(manifest: RunManifest) -> None:
    if manifest.status != "completed":
        raise AttestationError(
            f"run {manifest.run_id} has status {manifest.status}: only a completed run's outputs can be attested"
        )


def _is_relative(rel: str) -> bool:
    path = PurePosixPath(rel)
    return bool(rel) and "\\" not in rel and not path.is_absolute() and ".." not in path.parts


def _descriptor(
    name: str,
    *,
    uri: str | None = None,
    sha256: str | None = None,
    digest: Mapping[str, str] | None = None,
    annotations: Mapping[str, Any] | None = None,
    mediaType: str | None = None,  # noqa: N803 - the in-toto field name
) -> dict[str, Any]:
    """An in-toto ResourceDescriptor (fields left out when empty)."""
    digests = dict(digest or {})
    if sha256:
        digests["sha256"] = sha256
    return _drop_none(
        {
            "name": name,
            "uri": uri,
            "digest": digests or None,
            "mediaType": mediaType,
            "annotations": dict(annotations) if annotations else None,
        }
    )


def _record_descriptor(name: str, entry: Any) -> dict[str, Any] | None:
    if not isinstance(entry, Mapping):
        return None
    return _descriptor(str(entry.get("path") or name), sha256=entry.get("sha256"))


def _camel(data: Mapping[str, Any]) -> dict[str, Any]:
    """Snake-case keys as lowerCamelCase (the in-toto convention), one level deep."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        head, *rest = key.split("_")
        out[head + "".join(part.capitalize() for part in rest)] = value
    return out


def _drop_none(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _configured_key(manifest: RunManifest) -> str | None:
    section = manifest.config.get("manifest") if isinstance(manifest.config, dict) else None
    key = section.get("signing_key_path") if isinstance(section, dict) else None
    return key if isinstance(key, str) and key else None


def _kind(statement: Mapping[str, Any]) -> str:
    return {
        SLSA_PROVENANCE: "provenance",
        EVALUATION_PREDICATE: "evaluation",
        GATE_PREDICATE: "regression gate",
    }.get(str(statement.get("predicateType")), f"statement {statement.get('predicateType')!r}")


def _invocation_id(statement: Mapping[str, Any]) -> str | None:
    predicate = statement.get("predicate") or {}
    try:
        if statement.get("predicateType") == SLSA_PROVENANCE:
            return str(predicate["runDetails"]["metadata"]["invocationId"])
        return str(predicate["run"]["invocationId"])
    except (KeyError, TypeError):
        return None


def _manifest_digest(statement: Mapping[str, Any]) -> str | None:
    try:
        return str(statement["predicate"]["runDetails"]["byproducts"][0]["digest"]["sha256"])
    except (KeyError, IndexError, TypeError):
        return None


def _first_difference(got: Any, want: Any, path: str = "") -> str | None:
    """The dotted path of the first place ``got`` and ``want`` differ (None when equal)."""
    if isinstance(got, Mapping) and isinstance(want, Mapping):
        for key in sorted(set(got) | set(want)):
            where = _first_difference(got.get(key), want.get(key), f"{path}.{key}" if path else str(key))
            if where is not None:
                return where
        return None
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return f"{path} (length {len(got)}, expected {len(want)})"
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            where = _first_difference(a, b, f"{path}[{i}]")
            if where is not None:
                return where
        return None
    # Compare as canonical JSON: 1 and 1.0 are the same number there.
    return None if canonical_json(got) == canonical_json(want) else (path or "(whole statement)")
