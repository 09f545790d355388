"""The rows of the console's runs table: one page of the API's run index, each row completed
from the run's own manifest and evaluation.

Every cell is read from its source and nothing is inferred: name, algorithm, status and start
time from the run index (the same rows ``GET /runs`` serves), the verification from
:meth:`RunStore.open` under the server's signer policy (the manifest's hash, exact bytes,
signature and file name; the run page also hashes every output file), the metrics with their
intervals from ``eval.json`` (else the evaluation summary sealed in the manifest) and the git
commit from the manifest.

The sortable column headers (:func:`sort_headers`) are plain links to the first page of the
listing sorted by that column, so sorting works without script and from the keyboard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from provenir.api.server_paths import hide_text
from provenir.api.settings import ApiSettings
from provenir.core.errors import EvaluationError
from provenir.eval.harness import EVAL_FILENAME, EvalResult


@dataclass(frozen=True)
class MetricCell:
    """One evaluation metric of a run: its mean and confidence interval, as recorded."""

    name: str
    mean: float
    ci_lower: float
    ci_upper: float
    confidence: float
    interval: str


@dataclass
class RunRow:
    """One row of the runs table."""

    run_id: str
    name: str
    algorithm: str
    status: str
    started: str
    verified: bool
    problems: list[str] = field(default_factory=list)
    metrics: list[MetricCell] = field(default_factory=list)
    metrics_source: str | None = None
    git_sha: str | None = None
    git_dirty: bool | None = None
    relation: str | None = None


def _evaluation(settings: ApiSettings, run_id: str, sealed: dict[str, Any] | None) -> tuple[Any, str | None]:
    path = settings.store.run_dir(run_id) / EVAL_FILENAME
    if path.is_file():
        try:
            return EvalResult.load(path), EVAL_FILENAME
        except EvaluationError:
            pass  # the run page names the problem; the table falls back to the sealed summary
    if sealed is not None:
        try:
            return EvalResult.from_dict(sealed), "manifest"
        except EvaluationError:
            return None, None
    return None, None


def run_row(settings: ApiSettings, summary: dict[str, Any], roots: list[str]) -> RunRow:
    """The table row of one run index entry (``summary`` is a row of :meth:`RunIndex.list`)."""
    run_id = summary["run_id"]
    row = RunRow(
        run_id=run_id,
        name=summary["name"],
        algorithm=summary["algorithm"],
        status=summary["status"],
        started=summary["timestamp"],
        relation=summary.get("relation"),
        verified=False,
    )
    if "error" in summary:
        row.problems = [summary["error"]]
        return row
    stored = settings.store.open(run_id, policy=settings.signer_policy, check_outputs=False, allow_path=False)
    row.verified = stored.verification.ok
    row.problems = [hide_text(p, roots) for p in stored.verification.problems]
    manifest = stored.manifest
    if manifest is None:
        return row
    row.git_sha, row.git_dirty = manifest.git_sha, manifest.git_dirty
    result, row.metrics_source = _evaluation(settings, run_id, manifest.eval)
    if result is not None:
        row.metrics = [
            MetricCell(name, m.mean, m.ci_lower, m.ci_upper, m.confidence, str(m.interval))
            for name, m in result.metrics.items()
        ]
    return row


#: A first click on a column sorts newest first for the start time, A to Z for the others.
FIRST_ORDER = {"started": "desc", "name": "asc", "algorithm": "asc", "status": "asc"}


@dataclass(frozen=True)
class SortHeader:
    """A sortable column header: the page a click leads to and the column's ``aria-sort``."""

    url: str
    aria_sort: str | None
    next_order: str


def sort_headers(query: Mapping[str, Any], sort: str, order: str) -> dict[str, SortHeader]:
    """The headers of the sortable columns, by sort key, for a table listed with ``query``
    (its filters, without a cursor): a click on the sorted column reverses its order, a click
    on another sorts by it; either way from the first page, keeping the filters."""
    headers = {}
    for key, first in FIRST_ORDER.items():
        if key == sort:
            aria: str | None = "descending" if order == "desc" else "ascending"
            next_order = "asc" if order == "desc" else "desc"
        else:
            aria, next_order = None, first
        url = "/ui?" + urlencode({**query, "sort": key, "order": next_order})
        headers[key] = SortHeader(url, aria, next_order)
    return headers
