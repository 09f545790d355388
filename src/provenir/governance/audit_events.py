"""The audit events Provenir writes: one typed schema per event name, checked before writing.

:meth:`provenir.governance.audit.AuditLogger.log` calls :func:`validate_event` before anything
is redacted or written. For an event named in :data:`EVENTS` an unknown field, a missing
required field, a value of the wrong type, or a missing ``run_id`` where the schema requires
one is a :class:`~provenir.core.errors.GovernanceError` naming the event and the field, so an
event can never drift from its documented form.

Names Provenir does not define are free-form: third-party plugins and users log their own
events under a namespace prefix (``acme.reward_scored``, ``acme:deployed``), which no Provenir
event will ever take; their fields are stored as given (redacted as always). Names of events
Provenir used to write (:data:`LEGACY_EVENTS`) are refused for writing, naming their successor;
they only ever appear in old logs, which are read as stored (reading never validates fields).

The reference page ``docs/audit-events.md`` is generated from these schemas
(:mod:`provenir.reporting.audit_event_docs`).

Example::

    from provenir.governance.audit_events import EVENTS, validate_event

    EVENTS["training_completed"].required  # ('adapter_hash', 'manifest_hash', ...)
    validate_event("acme.reward_scored", {"anything": 1}, run_id=None)  # free-form: accepted
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from provenir.core.errors import GovernanceError

__all__ = [
    "EVENTS",
    "LEGACY_EVENTS",
    "EventField",
    "EventSchema",
    "FieldType",
    "canonical_event",
    "validate_event",
]

FieldType = Literal["str", "int", "float", "bool", "list[str]", "object"]

# "float" takes ints too (a tolerance of 0); bool is an int subclass but never a number here.
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list[str]": (list, tuple),
    "object": (dict,),
}


@dataclass(frozen=True)
class EventField:
    """One field of an event: its type, whether it may be left out, whether it may be null."""

    type: FieldType
    doc: str
    required: bool = True
    nullable: bool = False
    choices: tuple[str, ...] = ()

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` (before redaction and JSON conversion) has this field's type."""
        if value is None:
            return self.nullable
        if isinstance(value, bool) and self.type != "bool":
            return False
        if not isinstance(value, _PYTHON_TYPES[self.type]):
            return False
        if isinstance(value, list | tuple | dict):
            # A list's items, an object's keys: the strings the reference page promises.
            return all(isinstance(v, str) for v in value)
        return not self.choices or value in self.choices

    def describe(self) -> str:
        """The type as the reference page shows it (``str or null``, ``"a" | "b"``)."""
        text = " | ".join(f'"{c}"' for c in self.choices) if self.choices else self.type
        return f"{text} or null" if self.nullable else text


@dataclass(frozen=True)
class EventSchema:
    """One event name Provenir writes: what it means, who writes it, and its fields."""

    name: str
    doc: str
    written_by: str
    fields: Mapping[str, EventField]
    run_id: Literal["required", "optional", "none"] = "required"
    legacy_names: tuple[str, ...] = ()

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the fields every record of this event carries."""
        return tuple(n for n, f in self.fields.items() if f.required)

    def validate(self, fields: Mapping[str, Any], run_id: str | None) -> None:
        """Raise :class:`GovernanceError` unless ``fields`` and ``run_id`` fit this schema."""
        for name, value in fields.items():
            spec = self.fields.get(name)
            if spec is None:
                raise GovernanceError(
                    f"audit event {self.name!r}: unknown field {name!r} "
                    f"(its fields: {', '.join(self.fields)}; see docs/audit-events.md)"
                )
            if not spec.accepts(value):
                raise GovernanceError(
                    f"audit event {self.name!r}: field {name!r} must be {spec.describe()}, got {_got(value)}"
                )
        missing = [n for n in self.required if n not in fields]
        if missing:
            raise GovernanceError(f"audit event {self.name!r}: missing required field {missing[0]!r}")
        if self.run_id == "required" and run_id is None:
            raise GovernanceError(f"audit event {self.name!r}: missing required field 'run_id'")
        if self.run_id == "none" and run_id is not None:
            raise GovernanceError(f"audit event {self.name!r}: field 'run_id' is not part of this event")


def _got(value: Any) -> str:
    # A string is named by its type only: it may hold a secret the log would have redacted.
    if isinstance(value, str):
        return "a str"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


_f = EventField


_SHA = "SHA-256, hex"

_TRAINING_START_FIELDS: dict[str, EventField] = {
    "name": _f("str", "The run config's `name`."),
    "backend": _f("str", "Registered training backend."),
    "algorithm": _f("str", "`sft`, `dpo`, `grpo`, ..."),
    "config_hash": _f("str", f"The manifest's config hash ({_SHA})."),
    "dataset_hash": _f("str", f"The manifest's dataset hash ({_SHA})."),
    "scan_action": _f("str", "What the pre-training data scan did, if one ran.", nullable=True),
}

_GATE_FIELDS: dict[str, EventField] = {
    "passed": _f("bool", "Whether the gate let the run through."),
    "tripped": _f("list[str]", "Metrics (and `retention/<task>`) that regressed."),
    "tolerance": _f("float", "The tolerance the gate applied."),
    "mode": _f("str", "Tolerance mode.", choices=("absolute", "relative")),
    "correction": _f("str", "Multiple-comparison correction.", choices=("none", "holm")),
    "baseline_sha256": _f("str", f"The baseline eval.json ({_SHA}); null without a file.", nullable=True),
    "spec_sha256": _f("str", "The pre-registered gate spec; null for an ad hoc gate.", nullable=True),
    "spec_source": _f(
        "str",
        "Where the spec in force came from; null for an ad hoc gate.",
        nullable=True,
        choices=("sealed", "registration"),
    ),
    "pipeline": _f("str", "The RLAIF pipeline whose iteration was gated.", required=False),
}


def _schemas(*schemas: EventSchema) -> dict[str, EventSchema]:
    return {s.name: s for s in schemas}


EVENTS: Mapping[str, EventSchema] = _schemas(
    EventSchema(
        "training_started",
        "A training run began (after its manifest was first sealed).",
        "provenir.train.runner",
        _TRAINING_START_FIELDS,
    ),
    EventSchema(
        "training_resumed",
        "A training run resumed from a checkpoint of an earlier attempt.",
        "provenir.train.runner",
        _TRAINING_START_FIELDS,
    ),
    EventSchema(
        "training_failed",
        "Training raised or was interrupted; the manifest records the error.",
        "provenir.train.runner",
        {
            "error": _f("str", "The error, redacted and truncated, as in the manifest."),
            "manifest_hash": _f("str", "The sealed failed manifest."),
        },
    ),
    EventSchema(
        "training_completed",
        "Training finished and its manifest is sealed.",
        "provenir.train.runner",
        {
            "adapter_hash": _f("str", f"The trained adapter ({_SHA}).", nullable=True),
            "manifest_hash": _f("str", "The sealed manifest."),
            "final_loss": _f("float", "The last training loss.", nullable=True),
            "resumed_from": _f("str", "Checkpoint the run resumed from.", nullable=True),
        },
    ),
    EventSchema(
        "evaluation_completed",
        "A stored run was evaluated (`provenir eval`).",
        "provenir.train.evaluation",
        {
            "rows": _f("int", "Evaluated rows."),
            "means": _f("object", "Metric name to mean score."),
        },
    ),
    EventSchema(
        "gate_decision",
        "The regression gate compared a run with its baseline (ad hoc, pre-registered or RLAIF).",
        "provenir.train.evaluation, provenir.train.preregistered_gate, provenir.rlaif.pipeline",
        _GATE_FIELDS,
        run_id="optional",
    ),
    EventSchema(
        "gate_registered",
        "A gate spec was pre-registered for a run (written before the registration record).",
        "provenir.train.preregistered_gate",
        {
            "previous_spec_sha256": _f("str", "The spec this one replaces.", nullable=True),
            "spec_sha256": _f("str", "The registered spec."),
            "record_sha256": _f("str", "The registration record."),
        },
    ),
    EventSchema(
        "lm_eval_completed",
        "lm-evaluation-harness tasks ran on the base and tuned model.",
        "provenir.train.lm_eval_tasks",
        {
            "lm_eval_version": _f("str", "Installed lm-eval version."),
            "tasks": _f("object", "Task name to config hash, item count and base/tuned means."),
        },
    ),
    EventSchema(
        "reproduce_completed",
        "A run was replayed from its manifest (`provenir reproduce`).",
        "provenir.train.reproduce",
        {
            "original_run_id": _f("str", "The run that was replayed."),
            "identical": _f("bool", "Whether the replay's adapter is bit-identical."),
            "adapter_hash": _f("str", "The replay's adapter.", nullable=True),
        },
    ),
    EventSchema(
        "model_exported",
        "A run's adapter was merged into a standalone model (`provenir export`).",
        "provenir.train.export",
        {
            "parent_run_id": _f("str", "The run whose adapter was merged."),
            "files": _f("int", "Files in the merged model folder."),
            "max_abs_diff": _f("float", "Largest logit difference, merged vs adapter.", nullable=True),
            "adapter_hash": _f("str", "The parent's adapter.", nullable=True),
            "manifest_hash": _f("str", "The export's sealed manifest."),
        },
    ),
    EventSchema(
        "model_signed",
        "A run's model folder was signed (OpenSSF model signing).",
        "provenir.governance.model_signing",
        {
            "method": _f("str", "How the model was signed.", choices=("key", "sigstore")),
            "folder": _f("str", "The signed folder, relative to the run folder."),
            "signature": _f("str", "The signature file (relative path, or its name if elsewhere)."),
            "files": _f("int", "Signed files."),
            "key_fingerprint": _f("str", "The signing key's fingerprint.", nullable=True),
            "signature_sha256": _f("str", "The signature file."),
            "manifest_hash": _f("str", "The manifest whose outputs were signed."),
        },
    ),
    EventSchema(
        "model_signing_failed",
        "Signing after training failed; the run itself completed.",
        "provenir.governance.model_signing",
        {"error": _f("str", "Why, on one line.")},
    ),
    EventSchema(
        "attestation_written",
        "Signed SLSA provenance (in-toto statements) was written for a run.",
        "provenir.governance.attestation",
        {
            "path": _f("str", "The attestation file, relative to the artifacts root."),
            "sha256": _f("str", "The attestation file."),
            "statements": _f("list[str]", "The statements' predicate types."),
            "keyid": _f("str", "The signing key's fingerprint."),
        },
    ),
    EventSchema(
        "dataset_scanned",
        "A dataset was scanned for PII and secrets (`provenir scan --audit-dir`).",
        "provenir.governance.scanners",
        {
            "dataset": _f("str", "The scanned file."),
            "has_pii": _f("bool", "Whether PII was found."),
            "has_secrets": _f("bool", "Whether secrets were found."),
            "pii_counts": _f("object", "PII type to count.", nullable=True),
            "secret_counts": _f("object", "Secret type to count.", nullable=True),
            "masked_to": _f("str", "Where a masked copy was written.", nullable=True),
            "executor": _f(
                "object",
                "Where the scan ran, when not in this process (`--executor ray`): `{executor, "
                "ray_version, cluster: {cpus, nodes}, workers, retries, retried_total}`, `retries` "
                "mapping `scan:<shard>` to reruns after a worker died. Left out for a local scan.",
                required=False,
            ),
        },
        run_id="none",
    ),
    EventSchema(
        "model_card_generated",
        "A model card was written for a run.",
        "provenir.governance.model_card",
        {
            "path": _f("str", "The card file."),
            "manifest_hash": _f("str", "The manifest the card describes.", nullable=True),
        },
    ),
    EventSchema(
        "audit_repaired",
        "A torn last line of the audit log was completed or cut (`provenir audit repair`).",
        "provenir.governance.audit",
        {
            "action": _f("str", "What the repair did."),
            "removed_bytes": _f("int", "Bytes moved out of the log."),
            "saved_to": _f("str", "Where the torn bytes were saved.", nullable=True),
        },
        run_id="none",
    ),
    EventSchema(
        "judge_calibrated",
        "A judge was calibrated against human labels (`provenir judge calibrate`).",
        "provenir.rlaif.judge_calibration",
        {
            "judge": _f("str", "The judge section's registered name."),
            "judge_spec": _f("object", "The judge's identity (name, model, reward)."),
            "judge_spec_sha256": _f("str", "That identity."),
            "labels_sha256": _f("str", "The human labels file."),
            "report": _f("str", "The stored calibration report."),
            "report_sha256": _f("str", "That report."),
            "kappa": _f("float", "Cohen's kappa, judge vs humans.", nullable=True),
            "weighted_kappa": _f("float", "Weighted kappa.", nullable=True),
        },
        run_id="none",
    ),
    EventSchema(
        "rlaif_baseline_evaluated",
        "An RLAIF pipeline evaluated its base model.",
        "provenir.rlaif.pipeline",
        {
            "pipeline": _f("str", "The pipeline's name."),
            "means": _f("object", "Metric name to mean score."),
        },
        run_id="none",
    ),
    EventSchema(
        "rlaif_stage_completed",
        "A stage of an RLAIF iteration finished and was recorded in the pipeline's ledger.",
        "provenir.rlaif.pipeline",
        {
            "pipeline": _f("str", "The pipeline's name."),
            "iteration": _f("int", "The iteration, from 1."),
            "stage": _f("str", "The stage's name."),
            "sha256": _f("str", "The stage's output file.", nullable=True),
        },
        run_id="optional",
    ),
    EventSchema(
        "rlaif_completed",
        "An RLAIF pipeline finished its iterations (or stopped early).",
        "provenir.rlaif.pipeline",
        {
            "pipeline": _f("str", "The pipeline's name."),
            "best_run_id": _f("str", "The iteration run that beat the base model.", nullable=True),
            "improved": _f("bool", "Whether any iteration beat the base model significantly."),
            "stopped_because": _f("str", "Why the loop stopped (early, or after every iteration)."),
        },
        run_id="none",
    ),
    EventSchema(
        "flywheel_started",
        "A data flywheel run began; `run_id` is `flywheel:<name>`.",
        "provenir.flywheel.flywheel",
        {"config_sha256": _f("str", "The flywheel config, without its output folder and executor.")},
    ),
    EventSchema(
        "flywheel_stage_completed",
        "A flywheel stage ran, or was skipped because its ledger entry still matched.",
        "provenir.flywheel.flywheel",
        {
            "stage": _f("str", "The stage's name (`mine`, `generate`, `filter`, `augment`)."),
            "status": _f("str", "Whether it ran now or was already done.", choices=("completed", "skipped")),
            "output": _f("str", "The stage's output file."),
            "sha256": _f("str", "That file."),
            "counts": _f("object", "The stage's counters."),
        },
        legacy_names=("flywheel_stage",),
    ),
    EventSchema(
        "flywheel_completed",
        "A data flywheel run wrote its augmented dataset.",
        "provenir.flywheel.flywheel",
        {
            "output_sha256": _f("str", "The augmented dataset."),
            "stages_run": _f("list[str]", "Stages that ran in this call."),
            "stages_skipped": _f("list[str]", "Stages already done."),
            "rows": _f("int", "Rows in the augmented dataset.", nullable=True),
        },
        legacy_names=("flywheel_complete",),
    ),
)

LEGACY_EVENTS: Mapping[str, str] = {old: s.name for s in EVENTS.values() for old in s.legacy_names}
"""Old name -> current name, for events Provenir has renamed; found only in old logs."""


def canonical_event(event: str) -> str:
    """The current name of ``event`` (an old log's renamed event maps to its successor)."""
    return LEGACY_EVENTS.get(event, event)


def validate_event(event: str, fields: Mapping[str, Any], run_id: str | None) -> None:
    """Check an event Provenir defines against its schema before it is written.

    ``fields`` are the keywords given to :meth:`AuditLogger.log` other than ``run_id``. A name
    Provenir does not define is free-form and passes; a renamed (legacy) name is refused.
    """
    schema = EVENTS.get(event)
    if schema is not None:
        schema.validate(fields, run_id)
    elif event in LEGACY_EVENTS:
        raise GovernanceError(
            f"audit event {event!r} was renamed to {LEGACY_EVENTS[event]!r}: log it under the new name"
        )
