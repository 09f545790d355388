"""Secret scanning of training data on ``detect-secrets`` plugins, and the combined dataset scan.

::

    from provenir.governance.scanners import SecretScanner

    secret_report = SecretScanner().scan(dataset)

How this differs from calling ``detect_secrets.core.scan.scan_line``: that ad-hoc function
turns on *eager* search, which scores every bare word for entropy, so prose such as
"risk-free" or "guaranteed" is reported as a "Base64 High Entropy String". Here each plugin
runs as it does on files: entropy plugins only look at quoted strings, keyword plugins need
an assignment, and detect-secrets' own heuristic filters (UUIDs, sequential strings,
templates, ``$VARS``, indirect references, ``pragma: allowlist secret``) drop look-alikes.
The public-IP plugin is off (IPs are PII, see :mod:`provenir.governance.pii`).

Speed: a line is handed to the plugins only if a cheap pre-filter says some plugin could
match it (a quoted token of 9+ secret characters, a 16+ character token, a keyword from the
keyword plugin's own deny list, ``://``, ``PRIVATE KEY``, a token prefix...). Lines of plain
prose skip the plugins entirely; the results are identical to running every plugin on every
line (tested).

:func:`scan_dataset` runs the PII and secret scanners in one pass and returns a
JSON-serialisable summary for ``RunManifest.scans``; :func:`apply_scan_policy` is the
"scan before training" switch (report, mask or refuse).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from provenir.core.credentials import find_credentials, has_long_run
from provenir.core.errors import DataError, GovernanceError
from provenir.governance.dataset_rows import is_path_like, iter_rows, iter_strings
from provenir.governance.findings import Finding, FindingsReport

#: detect-secrets plugin (secret type) names left out by default.
DEFAULT_EXCLUDED = ("Public IP (ipv4)",)
_ENTROPY_TYPES = ("Base64 High Entropy String", "Hex High Entropy String")
_ALLOWLIST_PRAGMA = re.compile(r"pragma: ?allowlist[ -]secret", re.IGNORECASE)
# Whole-text gate, evaluated before any per-line work: plain substring tests and simple regexes
# run at C speed, where one big alternation would cost more than the plugins save. The long-run
# test (credentials.has_long_run) is shared with the credential formats.
_QUOTED = re.compile(r"[\"'][\w+/=\\-]{9}")
_LITERALS = ("://", "PRIVATE KEY", "PuTTY", "AKC", "AP", "xox", "xoX", "XOX", "_authToken")
_LOWER_LITERALS = ("key", "pass", "pwd", "secret", "contrase")
_PEM_END = re.compile(r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
# A detect-secrets value that starts with its own label ("AccountKey=..."): the label is kept.
_LABEL = re.compile(r"[A-Za-z][\w-]*=(?!=)")
# Characters trimmed from a widened regex match: delimiters the plugins' patterns include.
_TRIM = " \t\"'=:`,;"


#: A secret (``type`` is detect-secrets' secret type name).
SecretFinding = Finding


@dataclass
class SecretReport(FindingsReport):
    """Result of :meth:`SecretScanner.scan`."""

    @property
    def has_secrets(self) -> bool:
        """True when any secret was found."""
        return bool(self.findings)

    @property
    def counts(self) -> dict[str, int]:
        """Findings per secret type (only types that occurred)."""
        return dict(sorted(Counter(f.type for f in self.findings).items()))

    def to_dict(self, max_findings: int = 100) -> dict[str, Any]:
        """JSON-serialisable summary; at most ``max_findings`` locations are listed."""
        return {
            "has_secrets": self.has_secrets,
            "rows_scanned": self.rows_scanned,
            "rows_with_secrets": self.rows_with_findings,
            "counts": self.counts,
            **self.findings_page(max_findings),
        }


class SecretScanner:
    """Find credentials in text or datasets with detect-secrets' plugins (see module docstring).

    ``exclude``: secret type names to switch off (default: public IPv4). ``prefilter=False``
    runs every plugin on every line (slower, same results; kept for testing and auditing).
    """

    def __init__(self, *, exclude: Iterable[str] = DEFAULT_EXCLUDED, prefilter: bool = True) -> None:
        try:
            from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
            from detect_secrets.filters import heuristic
            from detect_secrets.plugins.keyword import DENYLIST
        except ImportError:
            raise GovernanceError(
                "secret scanning needs detect-secrets (pip install 'provenir[governance]')"
            ) from None
        mapping: dict[str, Any] = get_mapping_from_secret_type_to_class()
        excluded = set(exclude)
        unknown = excluded - set(mapping)
        if unknown:
            raise GovernanceError(
                f"unknown secret types {sorted(unknown)}: choose from {', '.join(sorted(mapping))}"
            )
        self.plugins = [cls() for name, cls in sorted(mapping.items()) if name not in excluded]
        from detect_secrets.plugins.base import RegexBasedDetector

        self._regex_based = RegexBasedDetector
        self.prefilter = prefilter
        self._h = heuristic
        keywords = "|".join(DENYLIST)
        # Superset of what any enabled plugin can match (see module docstring).
        self._trigger = re.compile(
            r"[\"'][\w+/=\\-]{9,}[\"']"  # quoted candidates of the entropy plugins
            r"|[\w+/=.\\-]{16,}"  # every token-format plugin needs a long token
            r"|://|PRIVATE KEY|PuTTY|AKC|AP[\dA-F]|xox|_authToken"  # short-token formats
            rf"|(?i:{keywords}|aws|cloudant|ibm|softlayer|sl_?api|cos_?hmac|secret_?access)"
        )

    def _filtered(self, secret: str, line: str, plugin: Any) -> bool:
        h = self._h
        return bool(
            h.is_sequential_string(secret)
            or h.is_potential_uuid(secret)
            or h.is_likely_id_string(secret, line, plugin)
            or h.is_templated_secret(secret)
            or h.is_prefixed_with_dollar_sign(secret)
            or h.is_not_alphanumeric_string(secret)
        )

    def _could_match(self, text: str, long_run: bool) -> bool:
        # long_run (15+ non-space characters) is implied by every plugin's 16+ character token.
        if long_run or (("'" in text or '"' in text) and _QUOTED.search(text)):
            return True
        if any(lit in text for lit in _LITERALS):
            return True
        lowered = text.lower()
        return any(lit in lowered for lit in _LOWER_LITERALS)

    def _span(self, plugin: Any, value: str, line: str) -> tuple[int, int] | None:
        """Where ``value`` sits in ``line``, widened to the plugin's whole token when the
        plugin reports only a capture group (GitHub's ``ghp`` for ``ghp_...``), and without
        the label a pattern without a group includes (Azure's ``AccountKey=``)."""
        start = line.find(value)
        if start < 0:
            return None
        label = _LABEL.match(value)
        if label and len(value) - label.end() >= 8:
            start += label.end()
            value = value[label.end() :]
        span = (start, start + len(value))
        if isinstance(plugin, self._regex_based):
            for rx in plugin.denylist:
                for m in rx.finditer(line):
                    token = m.group(0)
                    lead = len(token) - len(token.lstrip(_TRIM))
                    core = token.strip(_TRIM)
                    # Only ever widen to one token: never over a "NAME=" or a quote before it.
                    if value in core and not any(c.isspace() or c in ":@=\"'" for c in core):
                        s0 = m.start() + lead
                        if s0 <= span[0] and span[1] <= s0 + len(core):
                            return s0, s0 + len(core)
        return span

    def scan_text(self, text: str) -> list[SecretFinding]:
        """Findings in one string (offsets into ``text``), sorted by start, never overlapping.

        detect-secrets' findings and :mod:`provenir.core.credentials`' spans are merged:
        where they overlap, the union is one finding, so a secret is always covered whole.
        """
        found: dict[tuple[int, int], str] = {}
        long_run = has_long_run(text)
        if not self.prefilter or self._could_match(text, long_run):
            self._plugin_findings(text, found)
        # Credential formats first: on the same span they name the finding (rank 0).
        ranked = [(c.start, c.end, 0, c.label) for c in find_credentials(text, long_run=long_run)]
        if ranked and "pragma" in text.lower():
            ranked = [r for r in ranked if not _ALLOWLIST_PRAGMA.search(_line_at(text, r[0]))]
        ranked += [(s, e, 2 if t in _ENTROPY_TYPES else 1, t) for (s, e), t in found.items()]
        return [SecretFinding(t, s, e) for s, e, t in _merge_ranked(ranked)]

    def _plugin_findings(self, text: str, found: dict[tuple[int, int], str]) -> None:
        """detect-secrets' findings in ``text``, into ``found`` (span -> secret type)."""
        offset = 0
        for line_no, line in enumerate(text.splitlines(keepends=True)):
            base = offset
            offset += len(line)
            stripped = line.rstrip("\r\n")
            if self.prefilter and not self._trigger.search(stripped):
                continue
            if _ALLOWLIST_PRAGMA.search(stripped) or self._h.is_indirect_reference(stripped):
                continue
            for plugin in self.plugins:
                for secret in plugin.analyze_line(filename="dataset.txt", line=stripped, line_number=line_no):
                    value = (secret.secret_value or "").strip(_TRIM)
                    if not value or self._filtered(value, stripped, plugin):
                        continue
                    local = self._span(plugin, value, stripped)
                    if local is None:
                        continue
                    span = (base + local[0], base + local[1])
                    if secret.type == "Private Key":
                        # Mask the whole PEM block, not just its header line.
                        end = _PEM_END.search(text, span[1])
                        span = (span[0], end.end() if end else len(text))
                    # A specific format (AWS key...) beats "high entropy" on the same span.
                    if span not in found or found[span] in _ENTROPY_TYPES:
                        found[span] = secret.type

    def spans(self, text: str) -> list[tuple[str, int, int]]:
        """``(SECRET, start, end)`` spans, the form :class:`~provenir.governance.pii.PIIMasker` takes."""
        return [("SECRET", f.start, f.end) for f in self.scan_text(text)]

    def scan(self, dataset: Any) -> SecretReport:
        """Scan every string of every row (list of dicts, ``datasets.Dataset`` or file path)."""
        report = SecretReport()
        for i, row in iter_rows(dataset):
            report.rows_scanned += 1
            for path, text in iter_strings(row, ""):
                for f in self.scan_text(text):
                    report.findings.append(SecretFinding(f.type, f.start, f.end, path, i))
        return report


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)]


def _merge_ranked(spans: list[tuple[int, int, int, str]]) -> list[tuple[int, int, str]]:
    """Merge overlapping ``(start, end, rank, type)`` spans; a merged span takes the type of its
    best-ranked part (credential format < detect-secrets format < entropy), then the longest."""
    merged: list[list[Any]] = []  # [start, end, (rank, -length), type]
    for start, end, rank, stype in sorted(spans, key=lambda r: (r[0], -r[1], r[2])):
        key = (rank, start - end)
        if merged and start < merged[-1][1]:
            cur = merged[-1]
            cur[1] = max(cur[1], end)
            if key < cur[2]:
                cur[2], cur[3] = key, stype
        else:
            merged.append([start, end, key, stype])
    return [(s, e, t) for s, e, _, t in merged]


# -- combined scan and the pre-training policy --------------------------------------------------


@dataclass
class ScanSummary:
    """PII and secret findings of one dataset; :meth:`to_dict` goes into ``RunManifest.scans``."""

    rows_scanned: int
    pii: Any = None  # PIIReport | None
    secrets: SecretReport | None = None
    action: str = "report"

    @property
    def has_findings(self) -> bool:
        """True when any PII or secret was found."""
        return bool((self.pii and self.pii.has_pii) or (self.secrets and self.secrets.has_secrets))

    def to_dict(self, max_findings: int = 100) -> dict[str, Any]:
        """JSON-serialisable summary (counts and locations, never matched text)."""
        return {
            "rows_scanned": self.rows_scanned,
            "has_pii": bool(self.pii and self.pii.has_pii),
            "has_secrets": bool(self.secrets and self.secrets.has_secrets),
            "action": self.action,
            "pii": self.pii.to_dict(max_findings) if self.pii is not None else None,
            "secrets": self.secrets.to_dict(max_findings) if self.secrets is not None else None,
        }


def scan_dataset(
    dataset: Any, *, pii: bool = True, secrets: bool = True, default_region: str = "US"
) -> ScanSummary:
    """Scan ``dataset`` for PII and secrets in a single pass over its rows."""
    from provenir.governance.pii import PIIFinding, PIIReport, PIIScanner

    if not (pii or secrets):
        raise GovernanceError("nothing to scan: enable PII and/or secret scanning")
    pii_scanner = PIIScanner(default_region=default_region) if pii else None
    secret_scanner = SecretScanner() if secrets else None
    pii_report = PIIReport() if pii else None
    secret_report = SecretReport() if secrets else None
    rows = 0
    for i, row in iter_rows(dataset):
        rows += 1
        for path, text in iter_strings(row, ""):
            if pii_scanner is not None and pii_report is not None:
                for f in pii_scanner.scan_text(text):
                    pii_report.findings.append(PIIFinding(f.type, f.start, f.end, path, i))
            if secret_scanner is not None and secret_report is not None:
                for s in secret_scanner.scan_text(text):
                    secret_report.findings.append(SecretFinding(s.type, s.start, s.end, path, i))
    if pii_report is not None:
        pii_report.rows_scanned = rows
    if secret_report is not None:
        secret_report.rows_scanned = rows
    return ScanSummary(rows, pii_report, secret_report)


ScanPolicy = Literal["report", "mask", "refuse"]


def apply_scan_policy(
    dataset: Any, policy: ScanPolicy = "report", *, what: str = "training data", **scan_kwargs: Any
) -> tuple[Any, ScanSummary]:
    """Scan before training and act: ``report`` (data unchanged), ``mask`` (PII and secrets
    replaced by placeholders), or ``refuse`` (:class:`DataError` if anything was found).

    Returns ``(dataset to train on, summary)``; a file path comes back as a list of dicts when
    masked. The summary's ``action`` records what was done. ``what`` names the rows in the
    refusal message (``training data``, ``eval data``).
    """
    if policy not in ("report", "mask", "refuse"):
        raise GovernanceError(f"invalid scan policy {policy!r}: expected report, mask or refuse")
    summary = scan_dataset(dataset, **scan_kwargs)
    if not summary.has_findings:
        summary.action = "none_found"
        return dataset, summary
    if policy == "refuse":
        counts = {
            **(summary.pii.counts if summary.pii else {}),
            **(summary.secrets.counts if summary.secrets else {}),
        }
        found = ", ".join(f"{k}={v}" for k, v in counts.items() if v)
        raise DataError(f"{what} contains PII or secrets ({found}); mask it (provenir scan --mask) or fix it")
    if policy == "mask":
        summary.action = "masked"
        return masker_for(secrets=summary.secrets is not None).mask(dataset), summary
    summary.action = "report"
    return dataset, summary


def masker_for(*, secrets: bool = True, default_region: str = "US") -> Any:
    """A :class:`~provenir.governance.pii.PIIMasker` that also masks secrets (``<SECRET_n>``)."""
    from provenir.governance.pii import PIIMasker, PIIScanner

    extra = SecretScanner().spans if secrets else None
    return PIIMasker(PIIScanner(default_region=default_region), extra_spans=extra)


def write_findings(path: str | os.PathLike[str], summary: ScanSummary) -> None:
    """Every finding of ``summary`` as JSON Lines (``scanner``, ``type``, ``row``, ``field``, ``start``,
    ``end``; never matched text), PII first, each sorted by row, field, start, end and type: the
    same scan gives the same bytes however it was run."""
    from provenir.core.jsonl import write_jsonl

    rows: list[dict[str, Any]] = []
    for scanner, report in (("pii", summary.pii), ("secrets", summary.secrets)):
        if report is None:
            continue
        ordered = sorted(
            report.findings,
            key=lambda f: (f.row if f.row is not None else -1, f.field, f.start, f.end, f.type),
        )
        rows.extend({"scanner": scanner, **f.to_dict()} for f in ordered)
    write_jsonl(path, rows)


#: Findings listed per kind in the summary :func:`scan_file` records (the counts are always whole).
SCAN_FILE_FINDINGS = 20


def scan_file(
    dataset: str | os.PathLike[str],
    *,
    mask: str | os.PathLike[str] | None = None,
    pii: bool = True,
    secrets: bool = True,
    default_region: str = "US",
    audit_dir: str | os.PathLike[str] | None = None,
    findings: str | os.PathLike[str] | None = None,
    summary: ScanSummary | None = None,
    executor: dict[str, Any] | None = None,
) -> ScanSummary:
    """:func:`scan_dataset` of a file; with ``mask``, also write a masked copy there.

    With ``audit_dir``, the scan is recorded there (event ``dataset_scanned``: counts and where
    the masked copy went, never matched text). The summary's ``action`` is ``masked`` when a
    copy was written. ``findings`` writes every finding there (:func:`write_findings`).
    ``summary`` is a scan of the same file made elsewhere (a sharded scan on a cluster, see
    :mod:`provenir.scale.scan`); the file is then not scanned again, and ``executor`` (a
    :class:`provenir.scale.executor.ExecutorRecord` as a dict) says where it ran, for the audit event.
    """
    if summary is None:
        summary = scan_dataset(str(dataset), pii=pii, secrets=secrets, default_region=default_region)
    if findings is not None:
        write_findings(findings, summary)
    if mask is not None:
        masker_for(secrets=secrets, default_region=default_region).mask_file(str(dataset), str(mask))
        summary.action = "masked"
    if audit_dir is not None:
        from provenir.governance.audit import AuditLogger

        data = summary.to_dict(max_findings=SCAN_FILE_FINDINGS)
        fields: dict[str, Any] = {
            "dataset": str(dataset),
            "has_pii": data["has_pii"],
            "has_secrets": data["has_secrets"],
            "pii_counts": (data["pii"] or {}).get("counts"),
            "secret_counts": (data["secrets"] or {}).get("counts"),
            "masked_to": str(mask) if mask else None,
        }
        if executor is not None:  # only a scan made elsewhere says where: a local event keeps its form
            fields["executor"] = executor
        AuditLogger(audit_dir).log("dataset_scanned", **fields)
    return summary


__all__ = [
    "SecretFinding",
    "SecretReport",
    "SecretScanner",
    "ScanSummary",
    "ScanPolicy",
    "apply_scan_policy",
    "is_path_like",
    "masker_for",
    "scan_dataset",
    "scan_file",
    "write_findings",
]
