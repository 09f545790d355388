"""Evaluating a trained run: load base model + adapter, generate on eval data, score, attach.

This lives in ``train`` because it needs the model loaders; the scoring itself is
:mod:`provenir.eval` (metrics, intervals) which never imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenir.core.atomic import atomic_write_json
from provenir.core.config import RunConfig
from provenir.core.errors import EvaluationError, ManifestTamperedError, RegressionError
from provenir.core.hashing import sha256_file, sha256_rows
from provenir.core.manifest import RunManifest, utc_now
from provenir.core.store import GATE_FILE, RunStore
from provenir.data.loading import load_rows, load_train_data
from provenir.data.pinned_rows import read_rows as read_stored_rows
from provenir.eval.harness import EVAL_FILENAME, ContinuousInterval, EvalResult
from provenir.eval.regression import GateDecision, RegressionGate
from provenir.eval.run_evaluation import attach_to_manifest
from provenir.governance.attestation import attest_if_configured
from provenir.train.policy import evaluate_policy

if TYPE_CHECKING:
    from provenir.scale.executor import Executor


def evaluate_run(
    manifest_path: str | os.PathLike[str],
    *,
    data_path: str | None = None,
    metrics: Sequence[str] | None = None,
    max_new_tokens: int | None = None,
    batch_size: int = 8,
    device: str | None = None,
    attach: bool = True,
    n_bootstrap: int = 1000,
    seed: int = 0,
    continuous_interval: ContinuousInterval = "percentile",
    executor: Executor | None = None,
) -> tuple[EvalResult, Path]:
    """Generate with a trained run's model (base + adapter) on its eval data and score it.

    Data: ``data_path`` if given (rows as stored), else the run's own evaluation rows as it stored
    them in its run folder (``inputs.eval_rows``; rebuilt from the config for schema-1 manifests).
    Metrics default to the run's ``eval.metrics``; prompts are rendered with its template.
    Writes ``eval.json`` into the run folder and, with ``attach``, the summary into the
    manifest. Returns the result and the ``eval.json`` path. ``executor`` generates on workers
    (:mod:`provenir.scale`); eval.json is the same, and a non-local executor is recorded in the
    manifest's ``extra["executor"]["eval"]`` (a local one records nothing, as before).
    """
    # A path brings its own store; evaluate only what the manifest vouches for (the adapter must
    # be the one it hashed), judged exactly as `provenir manifest verify` judges it.
    stored = RunStore.of_manifest_file(manifest_path).open(manifest_path)
    manifest, rdir, store = stored.manifest, stored.run_dir, stored.store
    if not stored.verification.ok or manifest is None or rdir is None:
        problems = "; ".join(stored.verification.problems)
        raise ManifestTamperedError(f"{stored.manifest_file}: {problems}; not evaluating it")
    config = RunConfig.from_dict(manifest.config)
    if device is not None:
        config = config.model_copy(update={"device": device})

    # data_sha256 names what the metrics were computed on, so a model card can state it.
    data_sha256: str | None
    if data_path is not None:
        loaded = load_rows(data_path)  # its hash is the one a manifest records for a source
        rows, data_sha256 = loaded.rows, loaded.dataset_hash
    elif manifest.inputs is not None:
        # The exact eval rows the run stored (after masking and splitting), hash-checked.
        pin = manifest.inputs.eval_rows
        rows = read_stored_rows(rdir, pin) if pin is not None else []
        data_sha256 = pin.sha256 if pin is not None else None
    else:
        rows = load_train_data(config).eval or []
        data_sha256 = sha256_rows(rows)
    if data_path is None and not rows:
        raise EvaluationError(
            f"run {manifest.run_id} has no evaluation data (no data.eval_path or data.eval_split); "
            "pass a dataset"
        )
    if any("prompt" not in r for r in rows):
        raise EvaluationError("every evaluation row needs a 'prompt' to generate from")

    weights = rdir / ("adapter" if config.peft.enabled else "model")
    if not weights.is_dir():
        raise EvaluationError(f"run {manifest.run_id} has no {weights.name} folder at {weights}")
    result = evaluate_policy(
        config,
        weights,
        rows,
        list(metrics or config.eval.metrics),
        max_new_tokens=max_new_tokens or config.eval.max_new_tokens,
        batch_size=batch_size,
        n_bootstrap=n_bootstrap,
        seed=seed,
        continuous_interval=continuous_interval,
        executor=executor,
    )
    result.extra.update(
        run_id=manifest.run_id,
        data=data_path or "run eval rows",
        data_sha256=data_sha256,
        data_rows=len(rows),
        template=config.data.template,
    )
    eval_path = result.save(rdir / EVAL_FILENAME)
    if attach:
        where = None if executor is None or executor.name == "local" else executor.record().to_dict()
        attach_to_manifest(stored.manifest_file, result, eval_path, executor=where)
    from provenir.governance.audit import AuditLogger

    AuditLogger(store.audit_dir).log(
        "evaluation_completed",
        run_id=manifest.run_id,
        rows=len(rows),
        means={name: m.mean for name, m in result.metrics.items()},
    )
    if attach:
        attest_if_configured(store, manifest.run_id)  # the re-sealed manifest gets fresh attestations
    return result, eval_path


def gate_decision_fields(
    decision: GateDecision,
    *,
    baseline_sha256: str | None = None,
    spec_sha256: str | None = None,
    spec_source: str | None = None,
) -> dict[str, Any]:
    """The fields of a ``gate_decision`` audit event: one field set for every gate that logs one.

    A gate without a pre-registered spec, or whose baseline is not a file, logs those as null
    (see ``docs/audit-events.md``).
    """
    return {
        "passed": decision.passed,
        "tripped": decision.tripped,
        "tolerance": decision.tolerance,
        "mode": decision.mode,
        "correction": decision.correction,
        "baseline_sha256": baseline_sha256,
        "spec_sha256": spec_sha256,
        "spec_source": spec_source,
    }


def audited_gate(
    gate: RegressionGate,
    new: EvalResult,
    baseline: EvalResult,
    audit_dir: str | os.PathLike[str] | None,
    *,
    run_id: str | None = None,
    manifest_path: str | os.PathLike[str] | None = None,
    baseline_path: str | os.PathLike[str] | None = None,
) -> GateDecision:
    """Run the regression gate, record the decision in the audit log, raise if it tripped.

    With the evaluated run's ``manifest_path``, the decision is also written to the run's
    ``gate.json`` (see :func:`record_gate`), whether it passed or tripped.
    """
    decision = gate.compare(new, baseline)
    if audit_dir is not None:
        from provenir.governance.audit import AuditLogger

        baseline_sha256 = sha256_file(baseline_path) if baseline_path is not None else None
        AuditLogger(audit_dir).log(
            "gate_decision", run_id=run_id, **gate_decision_fields(decision, baseline_sha256=baseline_sha256)
        )
    if manifest_path is not None:
        record_gate(manifest_path, decision, baseline_path)
    if not decision.passed:
        error = RegressionError(decision.message())
        error.decision = decision  # type: ignore[attr-defined]
        raise error
    return decision


def record_gate(
    manifest_path: str | os.PathLike[str],
    decision: GateDecision,
    baseline_path: str | os.PathLike[str] | None,
) -> Path:
    """Write the decision about the run's current ``eval.json`` to its ``gate.json``; re-attest.

    The record names the baseline and the evaluation by SHA-256, so an attestation of the
    decision says exactly which two results were compared. Not a manifest output: the gate
    runs after the evaluation was sealed into the manifest.
    """
    store = RunStore.of_manifest_file(manifest_path)
    manifest = RunManifest.load(manifest_path)
    rdir = store.run_dir(manifest.run_id)
    evaluated = rdir / EVAL_FILENAME
    baseline = Path(baseline_path) if baseline_path is not None else None
    record = {
        "schema_version": 1,
        "created_at": utc_now(),
        "decision": decision.to_dict(),
        "baseline": {"path": baseline.name, "sha256": sha256_file(baseline)} if baseline else None,
        "evaluation": {
            "path": EVAL_FILENAME,
            "sha256": sha256_file(evaluated) if evaluated.is_file() else None,
        },
    }
    written = atomic_write_json(rdir / GATE_FILE, record)
    attest_if_configured(store, manifest.run_id)
    return written
