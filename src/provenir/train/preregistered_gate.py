"""The pre-registered regression gate: decide a run with the gate spec it sealed before training.

::

    from provenir.train.preregistered_gate import decide_registered_gate

    outcome = decide_registered_gate("artifacts/manifests/<run id>.json")
    outcome.decision.passed, outcome.spec_sha256, outcome.decision.to_markdown()

Choosing the tolerance or the metrics after seeing the results makes any gate pass. So the spec
(:class:`~provenir.core.config.GateConfig`: baseline, metrics, tolerance, mode, alpha,
correction, require_significance, retention tasks) is the run config's ``gate:`` section, covered
by ``config_hash`` and, on its own, by the manifest's ``gate_spec_sha256``, both sealed when
training starts. A decision uses the *registered* spec only. Asking for anything else (another
tolerance, other metrics, another baseline) is refused unless it is registered anew:

``<run folder>/gate_registrations.jsonl``
    One canonical JSON line per registration made after training: ``seq``, ``created_at``,
    ``previous_spec_sha256`` (the spec it replaces; None when the run sealed none), the new
    ``spec`` and its ``spec_sha256``, ``prev_record_sha256`` and ``record_sha256`` (the SHA-256
    of the canonical JSON of every other key), so the lines form a hash chain. Each registration
    is also the audit event ``gate_registered`` carrying the old and new spec hashes and the
    record hash; reading the file checks the chain, every hash, and that the tamper-evident
    audit log holds each record's event, so a rewritten registration file is detected.

Every decision is audited (``gate_decision``, with the spec hash) and written to the run's
``gate.json`` as :func:`provenir.train.evaluation.audited_gate` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from provenir.core.atomic import atomic_write_text
from provenir.core.config import GateConfig
from provenir.core.errors import ConfigError, EvaluationError, ManifestTamperedError
from provenir.core.hashing import canonical_json, sha256_file, sha256_json
from provenir.core.manifest import RunManifest, utc_now
from provenir.core.store import GATE_REGISTRATIONS_FILE, RunStore
from provenir.eval.harness import EVAL_FILENAME, EvalResult
from provenir.eval.regression import GateDecision, MetricComparison, RegressionGate

__all__ = [
    "GateOutcome",
    "RegisteredSpec",
    "decide_registered_gate",
    "gate_spec_sha256",
    "register_gate_spec",
    "registered_spec",
    "retention_comparisons",
]

REGISTRATION_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RegisteredSpec:
    """The gate spec in force for a run: the sealed one, or the latest registration."""

    spec: GateConfig
    sha256: str
    source: Literal["sealed", "registration"]
    registration: int | None = None  # seq of the registration record, None for the sealed spec


@dataclass
class GateOutcome:
    """A decision made with the registered spec; ``exit_code`` is 0 when it passed, 1 when not."""

    run_id: str
    decision: GateDecision
    spec: GateConfig
    spec_sha256: str
    spec_source: Literal["sealed", "registration"]
    registered_now: bool
    baseline_path: Path
    evaluation_path: Path

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail (errors never get this far: they raise, and the CLI exits 2)."""
        return 0 if self.decision.passed else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result: the decision, the spec it was made with, and what was compared."""
        return {
            "run_id": self.run_id,
            "passed": self.decision.passed,
            "spec": self.spec.model_dump(mode="json"),
            "spec_sha256": self.spec_sha256,
            "spec_source": self.spec_source,
            "registered_now": self.registered_now,
            "baseline": {"path": str(self.baseline_path), "sha256": sha256_file(self.baseline_path)},
            "evaluation": {"path": str(self.evaluation_path), "sha256": sha256_file(self.evaluation_path)},
            "decision": self.decision.to_dict(),
            "detectable": self.decision.detectability(),
        }

    def to_markdown(self) -> str:
        """The Markdown summary a CI job posts on a pull request."""
        text = self.decision.to_markdown(title=f"Regression gate for run `{self.run_id}`")
        return text + (
            f"\nBaseline `{self.baseline_path.name}` (sha256 `{sha256_file(self.baseline_path)[:12]}`), "
            f"gate spec sha256 `{self.spec_sha256[:12]}` ({self.spec_source}).\n"
        )


def gate_spec_sha256(spec: GateConfig) -> str:
    """SHA-256 of the canonical JSON of a gate spec (what the manifest seals)."""
    return sha256_json(spec.model_dump(mode="json"))


def _open_run(manifest_path: str | os.PathLike[str]) -> tuple[RunManifest, Path, RunStore]:
    stored = RunStore.of_manifest_file(manifest_path).open(manifest_path)
    if not stored.verification.ok or stored.manifest is None or stored.run_dir is None:
        problems = "; ".join(stored.verification.problems)
        raise ManifestTamperedError(f"{stored.manifest_file}: {problems}; not gating it")
    return stored.manifest, stored.run_dir, stored.store


def _sealed_spec(manifest: RunManifest) -> RegisteredSpec | None:
    raw = manifest.config.get("gate")
    if raw is None:
        return None
    spec = GateConfig.from_dict(raw)
    digest = gate_spec_sha256(spec)
    if manifest.gate_spec_sha256 is None:
        raise ManifestTamperedError(
            f"run {manifest.run_id}: its config has a gate section but the manifest sealed no gate_spec_sha256"
        )
    if manifest.gate_spec_sha256 != digest:
        raise ManifestTamperedError(
            f"run {manifest.run_id}: the gate section of its config hashes to {digest[:12]}, "
            f"not the sealed gate_spec_sha256 {manifest.gate_spec_sha256[:12]}"
        )
    return RegisteredSpec(spec, digest, "sealed")


def _record_hash(record: Mapping[str, Any]) -> str:
    return sha256_json({k: v for k, v in record.items() if k != "record_sha256"})


def _read_registrations(path: Path, run_id: str, audit_dir: Path) -> list[dict[str, Any]]:
    """The registration records, every hash and link checked, each matched by its audit event."""
    if not path.exists():
        return []
    if path.is_symlink() or not path.is_file():
        raise ManifestTamperedError(f"{path}: not a regular file")
    records: list[dict[str, Any]] = []
    prev: str | None = None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ManifestTamperedError(f"{path}:{lineno}: not a JSON registration record") from None
        where = f"{path.name}:{lineno}"
        if not isinstance(record, dict) or record.get("record_sha256") != _record_hash(record):
            raise ManifestTamperedError(f"{where}: the record does not match its record_sha256: edited")
        if record.get("seq") != lineno or record.get("prev_record_sha256") != prev:
            raise ManifestTamperedError(
                f"{where}: the registration chain is broken (a record was removed or moved)"
            )
        spec = GateConfig.from_dict(record.get("spec") or {})
        if gate_spec_sha256(spec) != record.get("spec_sha256"):
            raise ManifestTamperedError(f"{where}: the spec does not match its spec_sha256: edited")
        records.append(record)
        prev = record["record_sha256"]
    audited = _audited_registrations(audit_dir, run_id)
    for record in records:
        if record["record_sha256"] not in audited:
            raise ManifestTamperedError(
                f"{path.name}: registration {record['seq']} has no gate_registered event in the audit log"
            )
    return records


def _audited_registrations(audit_dir: Path, run_id: str) -> set[str]:
    from provenir.governance.audit import AuditLogger

    found: set[str] = set()
    cursor: int | None = None
    logger = AuditLogger(audit_dir)
    while True:
        page = logger.query(run_id=run_id, event="gate_registered", limit=500, cursor=cursor)
        found.update(str(r.fields.get("record_sha256")) for r in page.records)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def registered_spec(manifest_path: str | os.PathLike[str]) -> RegisteredSpec | None:
    """The spec in force: the latest registration, else the sealed spec, else None."""
    manifest, rdir, store = _open_run(manifest_path)
    return _current(manifest, rdir, store)


def _current(manifest: RunManifest, rdir: Path, store: RunStore) -> RegisteredSpec | None:
    sealed = _sealed_spec(manifest)
    records = _read_registrations(rdir / GATE_REGISTRATIONS_FILE, manifest.run_id, store.audit_dir)
    if not records:
        return sealed
    last = records[-1]
    expected_previous = (
        records[-2]["spec_sha256"] if len(records) > 1 else (sealed.sha256 if sealed else None)
    )
    if last["previous_spec_sha256"] != expected_previous:
        raise ManifestTamperedError(
            f"{GATE_REGISTRATIONS_FILE}: registration {last['seq']} does not replace the spec before it"
        )
    return RegisteredSpec(
        GateConfig.from_dict(last["spec"]), last["spec_sha256"], "registration", last["seq"]
    )


def register_gate_spec(
    manifest_path: str | os.PathLike[str], spec: GateConfig, *, actor: str | None = None
) -> RegisteredSpec:
    """Record ``spec`` as the run's gate from now on: a hash-chained record and a ``gate_registered`` event.

    Registering the spec already in force records nothing and returns it.
    """
    manifest, rdir, store = _open_run(manifest_path)
    current = _current(manifest, rdir, store)
    digest = gate_spec_sha256(spec)
    if current is not None and current.sha256 == digest:
        return current
    path = rdir / GATE_REGISTRATIONS_FILE
    records = _read_registrations(path, manifest.run_id, store.audit_dir)
    record: dict[str, Any] = {
        "schema_version": REGISTRATION_SCHEMA_VERSION,
        "seq": len(records) + 1,
        "created_at": utc_now(),
        "run_id": manifest.run_id,
        "previous_spec_sha256": current.sha256 if current else None,
        "spec_sha256": digest,
        "spec": spec.model_dump(mode="json"),
        "prev_record_sha256": records[-1]["record_sha256"] if records else None,
    }
    record["record_sha256"] = _record_hash(record)
    from provenir.governance.audit import AuditLogger

    # Audited first: a record without its event is refused on reading, never the other way round.
    AuditLogger(store.audit_dir).log(
        "gate_registered",
        actor=actor,
        run_id=manifest.run_id,
        previous_spec_sha256=record["previous_spec_sha256"],
        spec_sha256=digest,
        record_sha256=record["record_sha256"],
    )
    lines = [canonical_json(r).decode("utf-8") for r in [*records, record]]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return RegisteredSpec(spec, digest, "registration", record["seq"])


def _differences(current: GateConfig, requested: GateConfig) -> list[str]:
    now, asked = current.model_dump(mode="json"), requested.model_dump(mode="json")
    return [f"{key} {asked[key]!r} (registered: {now[key]!r})" for key in now if now[key] != asked[key]]


def resolve_baseline(ref: str, store: RunStore) -> Path:
    """The baseline's ``eval.json``: ``ref`` is an eval.json path, a manifest path, or a run of ``store``."""
    path = Path(ref)
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise EvaluationError(f"baseline {path}: not a JSON eval.json or manifest") from None
        if isinstance(data, dict) and "metrics" in data:
            return path
        manifest_file = path
        run_store = RunStore.of_manifest_file(path)
    else:
        run_store, manifest_file = store.locate(ref)
    baseline_manifest = RunManifest.load(manifest_file)
    evaluated = run_store.run_dir(baseline_manifest.run_id) / EVAL_FILENAME
    if not evaluated.is_file():
        raise EvaluationError(
            f"baseline run {baseline_manifest.run_id} has no {EVAL_FILENAME}: evaluate it first (provenir eval RUN)"
        )
    return evaluated


def retention_comparisons(
    spec: GateConfig, manifest_path: str | os.PathLike[str]
) -> dict[str, MetricComparison]:
    """The retention check: base vs tuned model, paired, on each of ``spec.retention_tasks``.

    Reads the lm-evaluation-harness results ``provenir eval RUN --tasks`` sealed into the run
    (only after the manifest and every recorded file verify) and compares every metric of each
    task with the spec's tolerance, mode, alpha and correction. Keys are ``task/metric``. Empty
    when no retention task is configured; a configured task with no results is an error, never
    a skipped check.
    """
    if not spec.retention_tasks:
        return {}
    from provenir.train.lm_eval_tasks import retention_comparisons as task_decisions

    # The task's own metrics (acc, exact_match...), not the gate's generation metrics.
    gate = RegressionGate(
        spec.tolerance,
        mode=spec.mode,
        alpha=spec.alpha,
        require_significance=spec.require_significance,
        correction=spec.correction,
    )
    decisions = task_decisions(manifest_path, spec.retention_tasks, gate=gate)
    return {
        f"{task}/{metric}": comparison
        for task, decision in decisions.items()
        for metric, comparison in decision.comparisons.items()
    }


def decide_registered_gate(
    manifest_path: str | os.PathLike[str],
    *,
    requested: Mapping[str, Any] | None = None,
    register: bool = False,
    actor: str | None = None,
) -> GateOutcome:
    """Decide the run's gate with its registered spec; audit and record the decision.

    ``requested``: spec fields asked for (``tolerance``, ``metrics``, ``baseline``...). Any that
    differ from the registered spec raise :class:`ConfigError` unless ``register`` is True, which
    registers the changed spec first (:func:`register_gate_spec`). Returns the outcome whether
    the gate passed or not; errors (no spec, no evaluation, a tampered run) raise.
    """
    manifest, rdir, store = _open_run(manifest_path)
    current = _current(manifest, rdir, store)
    asked = {k: v for k, v in (requested or {}).items() if v is not None}
    registered_now = False
    if current is None:
        if not (register and asked):
            raise ConfigError(
                f"run {manifest.run_id} has no registered gate: train it with a gate: section, or register one "
                "with `provenir gate RUN --register --baseline ...`"
            )
        current = register_gate_spec(manifest_path, GateConfig.from_dict(dict(asked)), actor=actor)
        registered_now = True
    elif asked:
        wanted = GateConfig.from_dict({**current.spec.model_dump(mode="json"), **asked})
        changed = _differences(current.spec, wanted)
        if changed and not register:
            raise ConfigError(
                f"run {manifest.run_id}: the registered gate spec (sha256 {current.sha256[:12]}) differs: "
                f"{'; '.join(changed)}; pass --register to record a new, audited registration"
            )
        if changed:
            current = register_gate_spec(manifest_path, wanted, actor=actor)
            registered_now = True
    spec = current.spec
    evaluation = rdir / EVAL_FILENAME
    if not evaluation.is_file():
        raise EvaluationError(
            f"run {manifest.run_id} has no {EVAL_FILENAME}: evaluate it first (provenir eval RUN)"
        )
    baseline = resolve_baseline(spec.baseline, store)
    gate = RegressionGate(
        spec.tolerance,
        mode=spec.mode,
        metrics=spec.metrics,
        alpha=spec.alpha,
        require_significance=spec.require_significance,
        correction=spec.correction,
    )
    decision = gate.compare(EvalResult.load(evaluation), EvalResult.load(baseline))
    decision.add_retention(retention_comparisons(spec, manifest_path))
    from provenir.governance.audit import AuditLogger
    from provenir.train.evaluation import gate_decision_fields, record_gate

    AuditLogger(store.audit_dir).log(
        "gate_decision",
        actor=actor,
        run_id=manifest.run_id,
        **gate_decision_fields(
            decision,
            baseline_sha256=sha256_file(baseline),
            spec_sha256=current.sha256,
            spec_source=current.source,
        ),
    )
    record_gate(manifest_path, decision, baseline)
    return GateOutcome(
        run_id=manifest.run_id,
        decision=decision,
        spec=spec,
        spec_sha256=current.sha256,
        spec_source=current.source,
        registered_now=registered_now,
        baseline_path=baseline,
        evaluation_path=evaluation,
    )
