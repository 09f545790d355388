"""Response models of the REST API: they make the OpenAPI schema complete (every 2xx and error
body has a schema) and keep responses to exactly the documented fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Same form as :func:`provenir.core.manifest.validate_run_id` accepts (lowercase canonical UUID).
RUN_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

RunStatus = Literal["running", "completed", "failed", "unreadable"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorResponse(_Model):
    """Every error: a short machine-readable code and a message a person can act on."""

    error: str = Field(description="Error code, e.g. not_found, unauthorized, invalid_request.")
    detail: str = Field(description="What went wrong, in one line (never a stack trace).")


class Health(_Model):
    """Liveness (no authentication, no data)."""

    status: Literal["ok"] = "ok"
    version: str


class RunSummary(_Model):
    """What a run listing shows (:func:`provenir.train.runs.summarize`)."""

    run_id: str
    name: str
    algorithm: str
    backend: str
    status: RunStatus = Field(description="'unreadable' when the manifest file cannot be parsed.")
    timestamp: str = Field(description="ISO-8601 start time ('' when unreadable).")
    adapter_hash: str | None = None
    provenance: list[str] = Field(default_factory=list)
    relation: str | None = None
    error: str | None = Field(None, description="Why the manifest is unreadable (only then).")


class RunPageResponse(_Model):
    """One page of runs, newest first."""

    runs: list[RunSummary]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at the end.")
    total: int = Field(description="Runs matching the filters, over all pages.")
    limit: int


class RunDetail(_Model):
    """One run: its summary and the manifest fields a dashboard needs, metrics and evaluation."""

    run_id: str
    name: str
    algorithm: str
    backend: str
    status: Literal["running", "completed", "failed"]
    timestamp: str
    finished_at: str | None = None
    adapter_hash: str | None = None
    provenance: list[str] = Field(default_factory=list)
    relation: str | None = None
    config_hash: str
    dataset_hash: str
    eval_dataset_hash: str | None = None
    git_sha: str | None = None
    seed: int
    manifest_hash: str | None = None
    signed: bool
    verification: Verification = Field(
        description="The manifest checked under the server's signer policy (hash, bytes, signature, "
        "the run it holds). Output files are not re-hashed here (outputs_ok is null): "
        "GET /manifests/{run_id}/verify re-hashes them."
    )
    error: str | None = Field(None, description="The run's own error message (failed runs).")
    metrics: dict[str, float | None] = Field(
        default_factory=dict, description="Training metrics (a non-finite value, e.g. NaN, is null)."
    )
    outputs: dict[str, str] = Field(default_factory=dict, description="Output file -> SHA-256.")
    eval: dict[str, Any] | None = Field(
        None, description="Evaluation summary (metrics with confidence intervals), per-item data left out."
    )
    eval_source: Literal["eval.json", "manifest"] | None = Field(
        None, description="Where `eval` came from: the run folder's eval.json, else the manifest."
    )
    eval_error: str | None = Field(None, description="Why eval.json exists but could not be read.")


class Verification(_Model):
    """What checking a stored manifest found (the same outcome, in the same words, as
    ``provenir manifest verify`` and the report), under the server's signer policy."""

    ok: bool = Field(
        description="True when no problem was found. Without a signer policy an unsigned manifest "
        "can be ok; with one (trusted keys configured), unsigned or foreign-signed is not."
    )
    hash_ok: bool = Field(description="manifest_hash matches the content.")
    canonical_ok: bool = Field(description="The file is byte-for-byte what Provenir writes.")
    signature: Literal["valid", "invalid", "unsigned", "untrusted", "unknown"] = Field(
        description="'untrusted': a valid signature by a key the signer policy does not trust; "
        "'unknown' when the file could not be parsed at all."
    )
    signer_fingerprint: str | None = None
    signer_trusted: bool | None = Field(
        None,
        description="Whether the signer is a trusted key; null when the server trusts no keys "
        "(origin not checked: a valid signature then proves integrity only).",
    )
    outputs_ok: bool | None = Field(
        None,
        description="Every listed output file exists inside the run folder with its hash, and output "
        "folders hold no unrecorded file; null when not checked.",
    )
    problems: list[str]


class ManifestVerifyResponse(Verification):
    """Integrity of one stored manifest (and of the output files it lists)."""

    run_id: str


class AuditRecordModel(_Model):
    """One audit event exactly as stored (see :mod:`provenir.governance.audit`)."""

    seq: int
    timestamp: str
    event: str
    actor: str
    run_id: str | None = None
    fields: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPageResponse(_Model):
    """One page of the audit log."""

    records: list[AuditRecordModel]
    next_cursor: int | None = Field(description="Pass as ?cursor= for the next page; null at the end.")
    total: int = Field(description="Records in the whole log (unfiltered).")


class AuditVerifyResponse(_Model):
    """Outcome of walking the whole hash chain."""

    ok: bool
    records: int
    head_seq: int
    head_hash: str
    torn_tail: bool
    problems: list[str]


class TemplateInfo(_Model):
    """A registered prompt template."""

    name: str


class TemplatesResponse(_Model):
    """Every registered prompt template, sorted by name."""

    templates: list[TemplateInfo]
