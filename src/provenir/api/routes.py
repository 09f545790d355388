"""The read-only endpoints. Each one validates its input, calls one library function and shapes
the answer; the logic lives in :mod:`provenir.core`, :mod:`provenir.governance` and friends.

Every path comes from the settings' :class:`~provenir.core.store.RunStore`. Run ids are checked
against the UUID pattern before any path is built from them (and the store checks again), so no
request can name a file outside the artifacts folder.

Every endpoint that states whether a run verifies (``/manifests/{id}/verify``, ``/runs/{id}``,
``/runs/{id}/report``) asks :meth:`RunStore.open` under the server's one signer policy
(``ApiSettings.signer_policy``), so they cannot disagree. What they return from a manifest
carries no absolute server path (:mod:`provenir.api.server_paths`).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from provenir import __version__
from provenir.api.errors import ApiError
from provenir.api.models import (
    CURSOR_PATTERN,
    RUN_ID_PATTERN,
    AuditPageResponse,
    AuditRecordModel,
    AuditVerifyResponse,
    ConsistencyProofResponse,
    ErrorResponse,
    Health,
    InclusionProofResponse,
    ManifestVerifyResponse,
    RunDetail,
    RunPageResponse,
    RunSort,
    RunStatus,
    RunSummary,
    TemplateInfo,
    TemplatesResponse,
    TreeHeadResponse,
)
from provenir.api.run_index import RunIndex
from provenir.api.server_paths import artifact_roots, hide_server_paths, run_without_server_paths
from provenir.api.settings import ApiSettings
from provenir.core.errors import EvaluationError
from provenir.core.hashing import sha256_bytes
from provenir.core.manifest import ManifestVerification, RunManifest
from provenir.core.store import StoredRun
from provenir.train.runs import summarize

RunId = Annotated[
    str,
    Path(
        pattern=RUN_ID_PATTERN,
        description="Run id: a lowercase UUID.",
        examples=["123e4567-e89b-42d3-a456-426614174000"],
    ),
]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "No such run."}}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "A parameter is malformed."}
}
_BAD: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "A parameter cannot be used (e.g. a bad cursor)."}
}
_TAMPERED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "The stored manifest is not readable JSON."}
}

public = APIRouter()
protected = APIRouter()


def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def _index(request: Request) -> RunIndex:
    index: RunIndex = request.app.state.run_index
    return index


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity (a diverged loss can be NaN): report them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _open_run(request: Request, run_id: str, *, check_outputs: bool) -> StoredRun:
    """The stored run, verified under the server's signer policy; 404 when there is none.

    ``allow_path=False``: the id is looked up in the store, never read as a path.
    """
    settings = _settings(request)
    if not settings.store.manifest_path(run_id).is_file():
        raise ApiError(404, "not_found", f"no run {run_id}")
    return settings.store.open(
        run_id, policy=settings.signer_policy, check_outputs=check_outputs, allow_path=False
    )


def _verification(result: ManifestVerification) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "hash_ok": result.hash_ok,
        "canonical_ok": result.canonical_ok,
        "signature": result.signature,
        "signer_fingerprint": result.signer_fingerprint,
        "signer_trusted": result.signer_trusted,
        "outputs_ok": result.outputs_ok,
        "problems": list(result.problems),
    }


def _roots(request: Request) -> list[str]:
    return artifact_roots(_settings(request).output_dir)


@public.get("/health", response_model=Health, tags=["meta"])
def health() -> Health:
    """Liveness check; needs no token and reveals no data."""
    return Health(version=__version__)


@protected.get("/runs", response_model=RunPageResponse, responses={**_BAD, **_INVALID}, tags=["runs"])
def list_runs(
    request: Request,
    status: Annotated[RunStatus | None, Query(description="Only runs with this status.")] = None,
    name: Annotated[str | None, Query(max_length=256, description="Only runs with this exact name.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Runs per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="next_cursor of the previous page with the same sort and order (opaque; one "
            "never issued, or issued for another sort or order, gets 400).",
        ),
    ] = None,
    sort: Annotated[
        RunSort,
        Query(
            description="Sort key: started (start time), name, algorithm or status; ties are broken by "
            "start time, then run id, in the same order. Runs without a value (unreadable) come last."
        ),
    ] = "started",
    order: Annotated[
        Literal["desc", "asc"], Query(description="desc (default; newest first) or asc.")
    ] = "desc",
) -> RunPageResponse:
    """Runs sorted by ``sort`` and ``order`` (default newest first), from the SQLite run index
    (kept in step with the manifests folder)."""
    page = _index(request).list(status=status, name=name, limit=limit, cursor=cursor, sort=sort, order=order)
    return RunPageResponse(
        runs=[RunSummary(**row) for row in page.rows],
        next_cursor=page.next_cursor,
        total=page.total,
        limit=limit,
    )


@protected.get(
    "/runs/{run_id}",
    response_model=RunDetail,
    responses={**_NOT_FOUND, **_TAMPERED, **_INVALID},
    tags=["runs"],
)
def get_run(request: Request, run_id: RunId) -> RunDetail:
    """One run: summary, training metrics, outputs and its evaluation (eval.json if present)."""
    from provenir.eval.harness import EVAL_FILENAME, EvalResult

    stored = _open_run(request, run_id, check_outputs=False)
    manifest = stored.manifest
    if manifest is None:
        raise ApiError(
            409, "tampered", f"manifests/{run_id}.json: " + "; ".join(stored.verification.problems)
        )
    if manifest.run_id != run_id:
        raise ApiError(409, "tampered", f"manifests/{run_id}.json holds run {manifest.run_id}")
    eval_summary: dict[str, Any] | None = None
    eval_source: Literal["eval.json", "manifest"] | None = None
    eval_error = None
    eval_path = stored.store.run_dir(run_id) / EVAL_FILENAME
    if eval_path.is_file():
        try:
            eval_summary, eval_source = EvalResult.load(eval_path).summary(), "eval.json"
        except EvaluationError as exc:
            eval_error = str(exc).replace(str(eval_path), EVAL_FILENAME)
    if eval_summary is None and manifest.eval is not None:
        eval_summary, eval_source = manifest.eval, "manifest"
    detail = {
        **summarize(manifest),
        "finished_at": manifest.finished_at,
        "config_hash": manifest.config_hash,
        "dataset_hash": manifest.dataset_hash,
        "eval_dataset_hash": manifest.eval_dataset_hash,
        "git_sha": manifest.git_sha,
        "seed": manifest.seed,
        "manifest_hash": manifest.manifest_hash,
        "signed": manifest.signature is not None,
        "verification": _verification(stored.verification),
        "error": manifest.error,
        "metrics": _finite(manifest.metrics),
        "outputs": manifest.outputs,
        "eval": _finite(eval_summary),
        "eval_source": eval_source,
        "eval_error": eval_error,
    }
    return RunDetail.model_validate(hide_server_paths(detail, _roots(request)))


def _json_errors(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """Error responses declared as JSON explicitly, for a route whose success is not JSON."""
    ref = {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
    return {
        code: {"description": r["description"], "content": {"application/json": ref}}
        for code, r in responses.items()
    }


@protected.get(
    "/runs/{run_id}/report",
    response_class=HTMLResponse,
    responses={
        200: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "Self-contained HTML report.",
        },
        **_json_errors({**_NOT_FOUND, **_INVALID}),
    },
    tags=["runs"],
)
def get_run_report(request: Request, run_id: RunId) -> HTMLResponse:
    """The run's self-contained HTML report (plots inline, no external fetches)."""
    from provenir.reporting.artifacts import load_run
    from provenir.reporting.report import build_report_html

    settings = _settings(request)
    if not settings.store.manifest_path(run_id).is_file():
        raise ApiError(404, "not_found", f"no run {run_id}")
    # allow_path=False: the id is looked up in the artifacts folder, never treated as a path.
    # Verified under the server's signer policy, like /manifests/{id}/verify; shown without server paths.
    run = load_run(run_id, settings.store.root, policy=settings.signer_policy, allow_path=False)
    html = build_report_html(run_without_server_paths(run, _roots(request)))
    return HTMLResponse(
        html,
        headers={"Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'"},
    )


@protected.get(
    "/manifests/{run_id}",
    # Documents the manifest's schema; the handler returns the file's bytes untouched.
    response_model=RunManifest,
    responses={
        200: {"description": "The manifest file, byte for byte."},
        **_NOT_FOUND,
        **_TAMPERED,
        **_INVALID,
    },
    tags=["manifests"],
)
def get_manifest(request: Request, run_id: RunId) -> Response:
    """The stored manifest, without server paths unless the server is told to serve it sealed.

    The sealed file records local paths (data, model, artifacts root, interpreter) as facts of
    the run. By default, when it holds any, this answers a JSON view with each absolute server
    path replaced (``<artifacts>/...``, ``<server path>/<name>``), marked
    ``X-Provenir-Manifest-View: redacted``; otherwise, or with ``serve_sealed_manifests``, the
    file byte for byte (``sealed``), so its hash and signature can be checked client-side.
    ``X-Provenir-Manifest-Sha256`` is the SHA-256 of the sealed file either way. It is served even
    if it was edited (use ``/verify`` to judge it), but not if it is not JSON.
    """
    settings = _settings(request)
    path = settings.store.manifest_path(run_id)
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise ApiError(404, "not_found", f"no run {run_id}") from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiError(409, "tampered", f"manifests/{run_id}.json is not valid JSON") from None
    headers = {"X-Provenir-Manifest-Sha256": sha256_bytes(raw)}
    view = data if settings.serve_sealed_manifests else hide_server_paths(data, _roots(request))
    if view == data:
        headers["X-Provenir-Manifest-View"] = "sealed"
        return Response(content=raw, media_type="application/json", headers=headers)
    headers["X-Provenir-Manifest-View"] = "redacted"
    body = json.dumps(view, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return Response(content=body.encode("utf-8"), media_type="application/json", headers=headers)


@protected.get(
    "/manifests/{run_id}/verify",
    response_model=ManifestVerifyResponse,
    responses={**_NOT_FOUND, **_INVALID},
    tags=["manifests"],
)
def verify_manifest(request: Request, run_id: RunId) -> ManifestVerifyResponse:
    """Check the stored manifest: content hash, exact file bytes, signature, that the file holds the
    run it is named for, and every file it lists under ``runs/<run_id>/``. ``ok`` is false, with
    the problems, on any change: the same outcome as ``provenir manifest verify`` and the report."""
    result = _open_run(request, run_id, check_outputs=True).verification
    # Problems name files relative to the store; a recorded absolute path is hidden like any other.
    verification = hide_server_paths(_verification(result), _roots(request))
    return ManifestVerifyResponse(run_id=run_id, **verification)


@protected.get("/audit", response_model=AuditPageResponse, responses={**_BAD, **_INVALID}, tags=["audit"])
def list_audit(
    request: Request,
    run_id: Annotated[str | None, Query(max_length=128, description="Only events of this run.")] = None,
    event: Annotated[str | None, Query(max_length=128, description="Only this event name.")] = None,
    actor: Annotated[str | None, Query(max_length=256, description="Only this actor.")] = None,
    since: Annotated[datetime | None, Query(description="From this time (inclusive, ISO-8601).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (exclusive, ISO-8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Records per page.")] = 50,
    cursor: Annotated[
        int | None, Query(ge=0, le=2**62, description="next_cursor of the previous page.")
    ] = None,
    order: Annotated[Literal["desc", "asc"], Query(description="desc: newest first.")] = "desc",
) -> AuditPageResponse:
    """Audit events, filtered and paginated through the log's sidecar index (a page never reads
    the whole log)."""
    from provenir.governance.audit import AuditReader

    try:
        page = AuditReader(_settings(request).resolved_audit_dir).query(
            run_id=run_id or None,
            event=event or None,
            actor=actor or None,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
            order=order,
        )
    except OverflowError:
        raise ApiError(400, "bad_request", "since/until is outside the representable time range") from None
    return AuditPageResponse(
        records=[AuditRecordModel(**r.to_dict()) for r in page.records],
        next_cursor=page.next_cursor,
        total=page.total,
    )


@protected.get("/audit/verify", response_model=AuditVerifyResponse, responses=_INVALID, tags=["audit"])
def verify_audit(
    request: Request,
    head: Annotated[
        str | None,
        Query(
            pattern=r"^[1-9][0-9]{0,17}:[0-9a-f]{64}$",
            description="Anchored head SEQ:HASH recorded elsewhere; detects records cut off the end.",
        ),
    ] = None,
) -> AuditVerifyResponse:
    """Walk the whole hash chain (streamed; seconds for a million records)."""
    from provenir.governance.audit import AuditLogger

    expected = None
    if head is not None:
        seq, digest = head.split(":")
        expected = (int(seq), digest)
    settings = _settings(request)
    # Manifests seal heads of the store's own log; a separately configured log is not theirs.
    same_log = settings.resolved_audit_dir == settings.store.audit_dir
    result = AuditLogger(settings.resolved_audit_dir).check(
        expected_head=expected, manifests_dir=settings.store.manifests_dir if same_log else None
    )
    return AuditVerifyResponse(**result.to_dict())


_NO_TREE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such record or tree size in the log."}
}


@protected.get(
    "/audit/proof/{seq}",
    response_model=InclusionProofResponse,
    responses={**_NO_TREE, **_INVALID, **_TAMPERED},
    tags=["audit"],
)
def audit_inclusion_proof(
    request: Request,
    seq: Annotated[int, Path(ge=1, le=2**62, description="The record's seq (1 is the first).")],
    size: Annotated[
        int | None, Query(ge=1, le=2**62, description="Tree size to prove against (default: the whole log).")
    ] = None,
) -> InclusionProofResponse:
    """RFC 9162 inclusion proof of record ``seq`` in the tree of the first ``size`` records."""
    from provenir.governance.audit import AuditReader

    reader = AuditReader(_settings(request).resolved_audit_dir)
    count = reader.count()
    tree_size = count if size is None else size
    if tree_size > count or seq > tree_size:
        raise ApiError(
            404, "not_found", f"record {seq} is not in a tree of {tree_size}: the log has {count} records"
        )
    return InclusionProofResponse(**reader.prove(seq, tree_size).to_dict())


@protected.get(
    "/audit/consistency",
    response_model=ConsistencyProofResponse,
    responses={**_NO_TREE, **_INVALID},
    tags=["audit"],
)
def audit_consistency_proof(
    request: Request,
    old: Annotated[int, Query(ge=0, le=2**62, description="The earlier tree size.")],
    new: Annotated[
        int | None, Query(ge=0, le=2**62, description="The later tree size (default: the whole log).")
    ] = None,
) -> ConsistencyProofResponse:
    """RFC 9162 consistency proof that the tree of ``new`` records extends the tree of ``old``."""
    from provenir.governance.audit import AuditReader

    reader = AuditReader(_settings(request).resolved_audit_dir)
    count = reader.count()
    new_size = count if new is None else new
    if max(old, new_size) > count:
        raise ApiError(404, "not_found", f"no tree of {max(old, new_size)} records: the log has {count}")
    if old > new_size:
        # Schema-valid, but no such proof exists: the trees are there, the relation is not.
        raise ApiError(404, "not_found", f"no consistency proof from {old} records down to {new_size}")
    return ConsistencyProofResponse(**reader.consistency(old, new_size).to_dict())


@protected.get(
    "/audit/checkpoint",
    response_model=TreeHeadResponse,
    responses={404: {"model": ErrorResponse, "description": "No tree head has been recorded yet."}},
    tags=["audit"],
)
def audit_checkpoint(request: Request) -> TreeHeadResponse:
    """The latest recorded tree head (written at the end of every run; signed when a key is set)."""
    from provenir.governance.audit import AuditReader

    latest = AuditReader(_settings(request).resolved_audit_dir).latest_checkpoint()
    if latest is None:
        raise ApiError(404, "not_found", "no tree head recorded yet: one is written at the end of every run")
    head = latest.head
    return TreeHeadResponse(
        **head.model_dump(mode="json"), signed=head.signed, run_id=latest.run_id, note=head.to_note()
    )


@protected.get("/templates", response_model=TemplatesResponse, tags=["templates"])
def list_templates() -> TemplatesResponse:
    """Registered prompt templates (the six built-ins plus any a plugin registered)."""
    from provenir.data.templates import TEMPLATE_REGISTRY

    return TemplatesResponse(templates=[TemplateInfo(name=n) for n in TEMPLATE_REGISTRY.list_names()])
