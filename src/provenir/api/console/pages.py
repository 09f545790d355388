"""The console's pages, under ``/ui``: runs, one run, its lineage, a comparison and the audit log.

Each page reads through the same pieces the API and the report use (the run index and its
cursors, :meth:`RunStore.open` under the server's signer policy, :func:`load_run`,
:func:`report_context`, :func:`compare_runs`, :class:`AuditReader`) and renders a server-side
Jinja2 template; nothing here computes a fact of its own. Everything is read-only: the only
POSTs sign in and out.

Every HTML answer carries :data:`CONTENT_SECURITY_POLICY`: scripts and styles only from this
server's files (no inline script or style anywhere), images from this server or ``data:``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from provenir.api.console.lineage_view import lineage_view
from provenir.api.console.runs_table import run_row, sort_headers
from provenir.api.console.session import (
    SESSION_TTL_S,
    SessionStore,
    cookie_name,
    is_https,
    same_origin,
    session_id_of,
    signed_in,
)
from provenir.api.errors import ApiError
from provenir.api.models import CURSOR_PATTERN, RUN_ID_PATTERN, RunSort
from provenir.api.routes import RunId, get_manifest, verify_audit
from provenir.api.run_index import SORT_COLUMNS, InvalidCursorError, RunIndex
from provenir.api.server_paths import artifact_roots, hide_server_paths, hide_text, run_without_server_paths
from provenir.api.settings import ApiSettings
from provenir.core.errors import ManifestError, ManifestTamperedError

#: No inline script or style, nothing from another origin, no framing, forms post only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # same-origin, not no-referrer: the latter makes browsers send "Origin: null" on POSTs.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
RUN_STATUSES = ("completed", "running", "failed", "unreadable")
#: Most runs one comparison shows (the first is the baseline of every other).
MAX_COMPARED = 6
_RUN_ID = re.compile(RUN_ID_PATTERN)
_TEMPLATES = Path(__file__).with_name("templates")
_MAX_FORM_BYTES = 4096


@dataclass
class ConsoleState:
    """What every console request needs: the settings, the live sessions and the templates."""

    settings: ApiSettings
    sessions: SessionStore
    templates: jinja2.Environment


def template_environment() -> jinja2.Environment:
    """The console's templates plus the report's sections (``report_body.html``)."""
    from provenir.reporting.report_template import REPORT_BODY

    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(_TEMPLATES), jinja2.DictLoader({"report_body.html": REPORT_BODY})]
    )
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)


class SignInRequired(Exception):
    """Raised by :func:`require_sign_in`; answered with a redirect to the login form."""


def _state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def require_sign_in(request: Request) -> None:
    """Dependency of every page but the login form: a session (or the bearer token) when a
    token is configured."""
    state = _state(request)
    if not signed_in(request, state.settings.token, state.sessions):
        raise SignInRequired()


def sign_in_redirect(request: Request, exc: Exception) -> Response:
    """Where :class:`SignInRequired` leads: the login form (htmx follows ``HX-Redirect``)."""
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": "/ui/login", **PAGE_HEADERS})
    return RedirectResponse("/ui/login", status_code=303, headers=PAGE_HEADERS)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page (or, for htmx, a fragment) with the console's security headers."""
    state = _state(request)
    html = state.templates.get_template(name).render(
        auth_enabled=state.settings.auth_enabled,
        signed_in=signed_in(request, state.settings.token, state.sessions),
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def _error(request: Request, status_code: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", status_code, title=title, detail=detail)


def _roots(request: Request) -> list[str]:
    return artifact_roots(_state(request).settings.output_dir)


public = APIRouter(include_in_schema=False)
pages = APIRouter(include_in_schema=False, dependencies=[Depends(require_sign_in)])


# -- signing in ---------------------------------------------------------------------------------


@public.get("/ui/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    """The sign-in form (on an open server, straight to the runs)."""
    if not _state(request).settings.auth_enabled:
        return RedirectResponse("/ui", status_code=303)
    return render(request, "login.html", failed=False)


@public.post("/ui/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Trade the API token (form field ``token``) for a session cookie."""
    state = _state(request)
    if not same_origin(request):
        return _error(request, 403, "Forbidden", "sign-in must come from this server's own login page")
    if state.settings.token is None:
        return RedirectResponse("/ui", status_code=303)
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return _error(request, 413, "Too large", "the sign-in form is larger than any token")
    presented = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0]
    from provenir.api.auth import token_matches

    if not presented or not token_matches(presented, state.settings.token):
        return render(request, "login.html", 401, failed=True)
    response = RedirectResponse("/ui", status_code=303, headers=PAGE_HEADERS)
    https = is_https(request)
    response.set_cookie(
        cookie_name(request),
        state.sessions.create(),
        max_age=SESSION_TTL_S,
        path="/" if https else "/ui",  # the __Host- prefix (https) requires path /
        secure=https,
        httponly=True,
        samesite="strict",
    )
    return response


@public.post("/ui/logout")
def logout(request: Request) -> Response:
    """End the session and drop its cookie."""
    if not same_origin(request):
        return _error(request, 403, "Forbidden", "sign-out must come from this server's own pages")
    _state(request).sessions.end(session_id_of(request))
    response = RedirectResponse("/ui/login", status_code=303, headers=PAGE_HEADERS)
    https = is_https(request)
    response.delete_cookie(
        cookie_name(request), path="/" if https else "/ui", secure=https, httponly=True, samesite="strict"
    )
    return response


@public.get("/ui/report.css")
def report_css() -> Response:
    """The report's own stylesheet, so run pages look like the standalone report."""
    from provenir.reporting.report_template import REPORT_CSS

    return Response(REPORT_CSS, media_type="text/css")


# -- runs ---------------------------------------------------------------------------------------


@pages.get("/ui", response_class=HTMLResponse)
def runs_page(
    request: Request,
    status: Annotated[str | None, Query(max_length=32)] = None,
    name: Annotated[str | None, Query(max_length=256)] = None,
    sort: Annotated[RunSort, Query()] = "started",
    order: Annotated[Literal["desc", "asc"], Query()] = "desc",
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
) -> Response:
    """The runs table: one page of the run index, filtered and sorted, with the next page's cursor."""
    state = _state(request)
    index: RunIndex = request.app.state.run_index
    status, name = status or None, name or None  # an empty form field means "any"
    if status is not None and status not in RUN_STATUSES:
        return _error(request, 422, "Invalid filter", f"status must be one of {', '.join(RUN_STATUSES)}")
    filters: dict[str, Any] = {"status": status, "name": name, "sort": sort, "order": order, "limit": limit}
    try:
        page = index.list(status=status, name=name, limit=limit, cursor=cursor, sort=sort, order=order)
    except InvalidCursorError as exc:
        return _error(request, 400, "Invalid page", str(exc))
    roots = _roots(request)
    query = {k: v for k, v in filters.items() if v is not None}
    context: dict[str, Any] = {
        "rows": [run_row(state.settings, r, roots) for r in page.rows],
        "total": page.total,
        "filters": filters,
        "statuses": RUN_STATUSES,
        "sorts": list(SORT_COLUMNS),
        "headers": sort_headers(query, sort, order),
        "first_url": "/ui?" + urlencode(query) if cursor else None,
        "next_url": "/ui?" + urlencode({**query, "cursor": page.next_cursor}) if page.next_cursor else None,
        "policy": state.settings.signer_policy is not None,
    }
    # htmx asks for the table only (filters change it in place); a browser without script, the page.
    name_ = "runs_table.html" if request.headers.get("hx-request") else "runs.html"
    return render(request, name_, **context)


def _has_manifest(request: Request, run_id: str) -> bool:
    return _state(request).settings.store.manifest_path(run_id).is_file()


def _load(request: Request, run_id: str) -> Any:
    """The run as the API's report shows it: verified under the signer policy, no server paths."""
    from provenir.reporting.artifacts import load_run

    settings = _state(request).settings
    run = load_run(run_id, settings.store.root, policy=settings.signer_policy, allow_path=False)
    return run_without_server_paths(run, _roots(request))


@pages.get("/ui/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: RunId) -> Response:
    """One run: the report's sections and links to download its records."""
    from provenir.reporting.report import report_context

    if not _has_manifest(request, run_id):
        return _error(request, 404, "No such run", f"no run {run_id}")
    try:
        run = _load(request, run_id)
    except ManifestTamperedError as exc:
        detail = hide_text(str(exc), _roots(request))
        return _error(request, 409, "Unreadable manifest", f"this run's manifest cannot be read: {detail}")
    return render(request, "run.html", 200, downloads=_downloads(request, run_id), **report_context(run))


# -- downloads ----------------------------------------------------------------------------------


def _downloads(request: Request, run_id: str) -> list[tuple[str, str, str]]:
    from provenir.governance.model_card import DEFAULT_CARD_NAME

    store = _state(request).settings.store
    out = [("manifest", f"/ui/runs/{run_id}/manifest.json", "the sealed run record (JSON)")]
    if store.attestation_path(run_id).is_file():
        out.append(
            ("attestation", f"/ui/runs/{run_id}/attestation.jsonl", "signed in-toto attestations (DSSE)")
        )
    if (store.run_dir(run_id) / DEFAULT_CARD_NAME).is_file():
        out.append(("model card", f"/ui/runs/{run_id}/model-card.md", "the run's model card (Markdown)"))
    return out


def _attachment(response: Response, filename: str) -> Response:
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@pages.get("/ui/runs/{run_id}/manifest.json")
def download_manifest(request: Request, run_id: RunId) -> Response:
    """The manifest exactly as ``GET /manifests/{id}`` serves it (without server paths unless
    the server serves sealed files)."""
    try:
        return _attachment(get_manifest(request, run_id), f"{run_id}.json")
    except ApiError as exc:
        return _error(request, exc.status_code, "Manifest unavailable", exc.detail)


def _payloads_hold_server_paths(raw: bytes, roots: list[str]) -> bool:
    """Whether any statement inside the DSSE envelopes records an absolute server path (an
    envelope that cannot be decoded counts as holding one: it cannot be shown to be clean)."""
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            payload = json.loads(base64.b64decode(json.loads(line)["payload"], validate=True))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return True
        if hide_server_paths(payload, roots) != payload:
            return True
    return False


@pages.get("/ui/runs/{run_id}/attestation.jsonl")
def download_attestation(request: Request, run_id: RunId) -> Response:
    """The run's signed attestations, byte for byte (a signature covers them, so there is no
    redacted view): served when they record no server path, or when the server serves sealed
    files (``serve_sealed_manifests``)."""
    settings = _state(request).settings
    path = settings.store.attestation_path(run_id)
    if not path.is_file():
        return _error(request, 404, "No attestation", f"run {run_id} has no attestation (provenir attest)")
    raw = path.read_bytes()
    if not settings.serve_sealed_manifests and _payloads_hold_server_paths(raw, _roots(request)):
        return _error(
            request,
            403,
            "Attestation withheld",
            "its signed statements record paths on this server, and a signed file cannot be shown "
            "redacted; the operator can serve it with serve_sealed_manifests: true",
        )
    response = Response(raw, media_type="application/jsonl")
    return _attachment(response, f"{run_id}.intoto.jsonl")


@pages.get("/ui/runs/{run_id}/model-card.md")
def download_model_card(request: Request, run_id: RunId) -> Response:
    """The run's model card (server paths replaced unless the server serves sealed files)."""
    from provenir.governance.model_card import DEFAULT_CARD_NAME

    settings = _state(request).settings
    path = settings.store.run_dir(run_id) / DEFAULT_CARD_NAME
    if not path.is_file():
        return _error(request, 404, "No model card", f"run {run_id} has no {DEFAULT_CARD_NAME}")
    text = path.read_text(encoding="utf-8", errors="replace")
    if not settings.serve_sealed_manifests:
        text = hide_text(text, _roots(request))
    response = Response(text, media_type="text/markdown; charset=utf-8")
    return _attachment(response, f"{run_id}-{DEFAULT_CARD_NAME}")


# -- lineage and comparison ---------------------------------------------------------------------


@pages.get("/ui/runs/{run_id}/lineage", response_class=HTMLResponse)
def lineage_page(request: Request, run_id: RunId) -> Response:
    """The provenance tree around a run, and the runs that share its base model or data."""
    if not _has_manifest(request, run_id):
        return _error(request, 404, "No such run", f"no run {run_id}")
    try:
        view = lineage_view(_state(request).settings, run_id, _roots(request))
    except (ManifestError, KeyError):
        return _error(request, 409, "Unreadable manifest", f"the manifest of run {run_id} cannot be read")
    return render(request, "lineage.html", view=view)


def _compared_ids(runs: str | None, run: list[str]) -> list[str]:
    ids: list[str] = []
    for rid in [*(runs or "").split(","), *run]:
        rid = rid.strip()
        if rid and rid not in ids:
            ids.append(rid)
    return ids


@pages.get("/ui/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    runs: Annotated[str | None, Query(max_length=1024, description="Run ids, comma-separated")] = None,
    run: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """Runs side by side: the first is the baseline, each other one is compared with it.

    ``runs=A,B,...`` keeps the order given; the runs table's check boxes (``run=...``, one per
    selected row, newest first) are put oldest first, so the earliest selected run is the baseline.
    """
    from provenir.reporting.compare import compare_runs

    ids = _compared_ids(runs, run or [])
    if not 2 <= len(ids) <= MAX_COMPARED:
        return _error(request, 422, "Pick runs", f"select 2 to {MAX_COMPARED} runs to compare")
    bad = [rid for rid in ids if not _RUN_ID.match(rid)]
    if bad:
        return _error(request, 422, "Invalid run id", "run ids are lowercase UUIDs")
    missing = [rid for rid in ids if not _has_manifest(request, rid)]
    if missing:
        return _error(request, 404, "No such run", f"no run {missing[0]}")
    try:
        loaded = [_load(request, rid) for rid in ids]
    except ManifestTamperedError as exc:
        return _error(request, 409, "Unreadable manifest", hide_text(str(exc), _roots(request)))
    if run and not runs:
        loaded.sort(key=lambda r: (r.manifest.timestamp, r.manifest.run_id))
    baseline = loaded[0]
    comparisons = [compare_runs(baseline, other) for other in loaded[1:]]
    return render(request, "compare.html", baseline=baseline.manifest, comparisons=comparisons)


# -- audit --------------------------------------------------------------------------------------


@pages.get("/ui/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    run_id: Annotated[str | None, Query(max_length=128)] = None,
    event: Annotated[str | None, Query(max_length=128)] = None,
    actor: Annotated[str | None, Query(max_length=256)] = None,
    order: Annotated[Literal["desc", "asc"], Query()] = "desc",
    cursor: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """The audit log page by page (through its sidecar index), filtered."""
    from provenir.governance.audit import AuditReader

    filters = {"run_id": run_id or None, "event": event or None, "actor": actor or None}
    page = AuditReader(_state(request).settings.resolved_audit_dir).query(
        **filters, limit=limit, cursor=cursor, order=order
    )
    roots = _roots(request)
    query = {k: v for k, v in {**filters, "order": order, "limit": limit}.items() if v is not None}
    return render(
        request,
        "audit.html",
        records=[hide_server_paths(r.to_dict(), roots) for r in page.records],
        total=page.total,
        filters={**filters, "order": order},
        first_url="/ui/audit?" + urlencode(query) if cursor is not None else None,
        next_url=(
            "/ui/audit?" + urlencode({**query, "cursor": page.next_cursor})
            if page.next_cursor is not None
            else None
        ),
        json_dumps=lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True),
    )


@pages.get("/ui/audit/verify", response_class=HTMLResponse)
def audit_verify_page(request: Request) -> Response:
    """A full walk of the hash chain, as ``GET /audit/verify`` does it (a fragment for htmx)."""
    result = verify_audit(request, head=None)
    verification = hide_server_paths(result.model_dump(), _roots(request))
    name = "audit_verify.html" if request.headers.get("hx-request") else "audit_verify_page.html"
    return render(request, name, result=verification)
