"""Response models of the REST API: they make the OpenAPI schema complete (every 2xx and error
body has a schema) and keep responses to exactly the documented fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Same form as :func:`provenir.core.manifest.validate_run_id` accepts (lowercase canonical UUID).
RUN_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

RunStatus = Literal["running", "completed", "failed", "unreadable"]
#: Sort keys of ``GET /runs`` (the keys of :data:`provenir.api.run_index.SORT_COLUMNS`).
RunSort = Literal["started", "name", "algorithm", "status"]
#: A run-index cursor: URL-safe base64 of the sort key of a page's last row (which holds the
#: run's name, so it is allowed to be long).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,4096}$"


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
    """One page of runs, in the order asked for (default newest first)."""

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
    """Outcome of walking the whole hash chain and comparing it with every sealed tree head."""

    ok: bool
    records: int
    head_seq: int
    head_hash: str
    torn_tail: bool
    problems: list[str]
    tree_root: str = Field(description="RFC 9162 Merkle root over every record (hex).")
    tree_heads_checked: int = Field(
        description="Tree heads (checkpoints file and manifests) the log was compared with."
    )


class InclusionProofResponse(_Model):
    """RFC 9162 inclusion proof of one record (hex hashes); check ``root`` against a trusted head."""

    seq: int
    leaf_index: int = Field(description="seq - 1: the record's leaf in the tree.")
    tree_size: int
    leaf_hash: str = Field(description="SHA-256(0x00 || record).")
    root: str = Field(description="Merkle root of the tree of tree_size records.")
    path: list[str] = Field(description="The audit path, deepest sibling first (RFC 9162 section 2.1.3).")
    record: str = Field(description="The stored line (without newline) the leaf hashes.")


class ConsistencyProofResponse(_Model):
    """RFC 9162 consistency proof: the tree of new_size records extends the tree of old_size."""

    old_size: int
    new_size: int
    old_root: str
    new_root: str
    path: list[str] = Field(description="RFC 9162 section 2.1.4 consistency path.")


class TreeHeadResponse(_Model):
    """The latest recorded tree head of the audit log (a checkpoint)."""

    origin: str
    size: int
    root: str = Field(description="Merkle root (hex) of records 1..size.")
    timestamp: str
    signed: bool = Field(description="False: recorded without a signing key.")
    public_key: str | None = Field(description="Ed25519 public key (base64) when signed.")
    signature: str | None = Field(description="Ed25519 signature of the checkpoint note text (base64).")
    run_id: str | None = Field(description="The run whose end wrote the head, if any.")
    note: str = Field(description="The head as a C2SP signed note (tlog-checkpoint).")


class TemplateInfo(_Model):
    """A registered prompt template."""

    name: str


class TemplatesResponse(_Model):
    """Every registered prompt template, sorted by name."""

    templates: list[TemplateInfo]
