"""PII detection and masking for training data.

::

    from provenir.governance.pii import PIIScanner, PIIMasker

    pii_report = PIIScanner().scan(dataset)
    if pii_report.has_pii:
        dataset = PIIMasker().mask(dataset)

Entity types and how a candidate is confirmed (a regex alone is not enough; each type has a
validator so look-alikes are not reported):

==============  ===========================================================================
EMAIL           RFC-5322-ish address with a dotted domain and an alphabetic TLD
PHONE           validated by ``phonenumbers`` (``Leniency.VALID``; numbers without ``+``
                are read in ``default_region``), which also rejects dates and times
CREDIT_CARD     13-19 digits, consistent separators, a real issuer prefix, Luhn checksum
IBAN            known country, that country's length, ISO 7064 mod-97 checksum
US_SSN          ``AAA-GG-SSSS`` with the SSA's never-issued ranges excluded
IP_ADDRESS      IPv4 (no leading zeros, not part of a longer dotted number, not after
                ``v``/``version``) and IPv6 (parsed by :mod:`ipaddress`)
==============  ===========================================================================

Findings carry the row number (0-based), the field path and ``[start, end)`` offsets; the
matched text itself is never put in a report, so a report can go into a manifest.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from provenir.governance.dataset_rows import is_path_like, iter_rows, iter_strings, map_strings, write_rows
from provenir.governance.findings import Finding, FindingsReport

ENTITY_TYPES = ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS")

# Types confirmed by a checksum or a strict format win over PHONE/IP look-alikes inside them.
_SPECIFIC = ("EMAIL", "CREDIT_CARD", "IBAN", "US_SSN")


#: A PII span (``type`` is one of :data:`ENTITY_TYPES`).
PIIFinding = Finding


@dataclass
class PIIReport(FindingsReport):
    """Result of :meth:`PIIScanner.scan`."""

    @property
    def has_pii(self) -> bool:
        """True when any finding was made."""
        return bool(self.findings)

    @property
    def counts(self) -> dict[str, int]:
        """Findings per entity type (every type listed, zeros included)."""
        c = Counter(f.type for f in self.findings)
        return {t: c.get(t, 0) for t in ENTITY_TYPES}

    @property
    def rows_with_pii(self) -> int:
        """How many distinct rows contain at least one finding."""
        return self.rows_with_findings

    def to_dict(self, max_findings: int = 100) -> dict[str, Any]:
        """JSON-serialisable summary; at most ``max_findings`` locations are listed."""
        return {
            "has_pii": self.has_pii,
            "rows_scanned": self.rows_scanned,
            "rows_with_pii": self.rows_with_pii,
            "counts": self.counts,
            **self.findings_page(max_findings),
        }


# -- detectors ----------------------------------------------------------------------------------

_DIGIT = re.compile(r"\d")
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-]|\.[A-Za-z0-9])"
)
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
# How issuers print card numbers when they group the digits.
_CARD_GROUPS = {(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1), (4, 4, 4, 3)}
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|6[0-9]|5[06-9])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2})(\d{2})((?: ?[A-Z0-9]){11,30})")
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\d|-\w)")
_VERSION_CONTEXT = re.compile(
    r"(?i)(?:\bv|\bver\.?|\bversion|\brelease|\bbuild|\brev(?:ision)?|\bpython)\s*$"
)
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)
_PHONE_CANDIDATE = re.compile(r"(?<![\w.+-])(?:\+|\(|\b)\d[\d \t().\-/]{5,20}\d(?![\w])")
_PHONE_MIN_DIGITS = 7

# ISO 13616 IBAN lengths per country.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """True for a compact IBAN (no spaces) with a known country, its length and mod-97 == 1."""
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _emails(text: str) -> Iterable[tuple[str, int, int]]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        local = m.group(0).split("@", 1)[0]
        if ".." not in local:
            yield "EMAIL", m.start(), m.end()


def _cards(text: str) -> Iterable[tuple[str, int, int]]:
    for m in _CARD.finditer(text):
        raw = m.group(0)
        seps = {c for c in raw if not c.isdigit()}
        if len(seps) > 1:  # "4111 1111-1111 1111" is not how anyone writes a card number
            continue
        if seps and tuple(len(g) for g in re.split(r"[ -]", raw)) not in _CARD_GROUPS:
            continue  # grouped digits that no issuer prints (e.g. the tail of an IBAN)
        digits = raw.replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn_valid(digits):
            yield "CREDIT_CARD", m.start(), m.end()


def _ibans(text: str) -> Iterable[tuple[str, int, int]]:
    for m in _IBAN.finditer(text):
        expected = _IBAN_LENGTHS.get(m.group(1))
        if expected is None:
            continue
        # The candidate can run into following upper-case words; take exactly the
        # country's length of characters and map the end back to a text offset.
        need = expected - 4
        body = m.group(3)
        taken, end = 0, m.start(3)
        for j, ch in enumerate(body):
            if ch != " ":
                taken += 1
                if taken == need:
                    end = m.start(3) + j + 1
                    break
        if taken < need:
            continue
        if end < len(text) and text[end].isalnum():
            continue
        compact = text[m.start() : end].replace(" ", "")
        if iban_valid(compact):
            yield "IBAN", m.start(), end


def _ssns(text: str) -> Iterable[tuple[str, int, int]]:
    if "-" not in text:
        return
    for m in _SSN.finditer(text):
        yield "US_SSN", m.start(), m.end()


def _ips(text: str) -> Iterable[tuple[str, int, int]]:
    if "." in text:
        for m in _IPV4.finditer(text):
            if _VERSION_CONTEXT.search(text, max(0, m.start() - 16), m.start()):
                continue
            yield "IP_ADDRESS", m.start(), m.end()
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6.finditer(text):
            cand = m.group(0)
            if cand.count(":") < 2 or not _DIGIT.search(cand):
                continue
            try:
                ipaddress.IPv6Address(cand)
            except ValueError:
                continue
            yield "IP_ADDRESS", m.start(), m.end()


class _PhoneDetector:
    """``phonenumbers`` is imported on first use; it is run only on digit-run candidates."""

    def __init__(self, region: str) -> None:
        import phonenumbers

        self._pn = phonenumbers
        self._region = region
        self._leniency = phonenumbers.Leniency.VALID

    def __call__(self, text: str) -> Iterable[tuple[str, int, int]]:
        for m in _PHONE_CANDIDATE.finditer(text):
            cand = m.group(0)
            if sum(ch.isdigit() for ch in cand) < _PHONE_MIN_DIGITS:
                continue
            # Give the matcher a little context on each side: its date/time and
            # "part of a longer number" checks look at neighbouring characters.
            lo = max(0, m.start() - 2)
            window = text[lo : m.end() + 2]
            for match in self._pn.PhoneNumberMatcher(window, self._region, leniency=self._leniency):
                yield "PHONE", lo + match.start, lo + match.end


def _overlaps(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
    return a[1] < b[2] and b[1] < a[2]


class PIIScanner:
    """Find PII in text or datasets.

    ``entity_types`` restricts the detectors (default: all of :data:`ENTITY_TYPES`);
    ``default_region`` is the ISO country used to read phone numbers written without ``+``.
    """

    def __init__(self, entity_types: Iterable[str] | None = None, default_region: str = "US") -> None:
        from provenir.core.errors import GovernanceError

        types = tuple(entity_types) if entity_types is not None else ENTITY_TYPES
        unknown = [t for t in types if t not in ENTITY_TYPES]
        if unknown:
            raise GovernanceError(
                f"unknown PII entity types {unknown}: choose from {', '.join(ENTITY_TYPES)}"
            )
        if not (isinstance(default_region, str) and len(default_region) == 2 and default_region.isalpha()):
            raise GovernanceError(
                f"invalid default_region {default_region!r}: expected a 2-letter country code"
            )
        self.entity_types = types
        self.default_region = default_region.upper()
        self._phone: _PhoneDetector | None = None

    def scan_text(self, text: str) -> list[PIIFinding]:
        """Findings in one string, sorted by start offset."""
        raw: list[tuple[str, int, int]] = []
        types = self.entity_types
        if "EMAIL" in types:
            raw += _emails(text)
        if _DIGIT.search(text) is not None:
            if "CREDIT_CARD" in types:
                raw += _cards(text)
            if "IBAN" in types:
                raw += _ibans(text)
            if "US_SSN" in types:
                raw += _ssns(text)
            specific = [f for f in raw if f[0] in _SPECIFIC]
            loose: list[tuple[str, int, int]] = []
            if "IP_ADDRESS" in types:
                loose += _ips(text)
            if "PHONE" in types:
                if self._phone is None:
                    self._phone = _PhoneDetector(self.default_region)
                loose += self._phone(text)
            # A phone or IP look-alike inside a validated card/IBAN/SSN/email is part of it.
            raw += [f for f in loose if not any(_overlaps(f, s) for s in specific)]
        elif "IP_ADDRESS" in types and ("::" in text or text.count(":") >= 7):
            raw += _ips(text)  # only IPv6 without digits is possible, and we require a digit
        raw = sorted(set(raw), key=lambda f: (f[1], -f[2], f[0]))
        return [PIIFinding(t, s, e) for t, s, e in raw]

    def scan(self, dataset: Any) -> PIIReport:
        """Scan every string of every row (nested fields included).

        ``dataset``: a list of dicts, a ``datasets.Dataset``, or a ``.jsonl``/``.json``/``.csv``
        path. Row numbers count from 0 in dataset order.
        """
        report = PIIReport()
        for i, row in iter_rows(dataset):
            report.rows_scanned += 1
            for path, text in iter_strings(row, ""):
                for f in self.scan_text(text):
                    report.findings.append(PIIFinding(f.type, f.start, f.end, path, i))
        return report


def merge_spans(findings: Iterable[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Merge overlapping ``(type, start, end)`` spans; a merged span takes its longest part's type."""
    merged: list[list[Any]] = []  # [type, start, end, length of the span that gave the type]
    for t, s, e in sorted(findings, key=lambda f: (f[1], -f[2])):
        if merged and s < merged[-1][2]:
            cur = merged[-1]
            if e - s > cur[3]:
                cur[0], cur[3] = t, e - s
            cur[2] = max(cur[2], e)
        else:
            merged.append([t, s, e, e - s])
    return [(t, s, e) for t, s, e, _ in merged]


class PIIMasker:
    """Replace PII with stable typed placeholders: the same value is ``<EMAIL_1>`` everywhere.

    Numbering is per masker instance and per type, in order of first appearance, so masking a
    dataset is deterministic. Overlapping findings are merged first, so text around them is
    never corrupted. Only strings change; other fields and the row order stay as they were.
    ``extra_spans`` lets another detector (the secret scanner) add ``(type, start, end)`` spans.
    """

    def __init__(self, scanner: PIIScanner | None = None, *, extra_spans: Any = None) -> None:
        self.scanner = scanner or PIIScanner()
        self._extra = extra_spans
        self._ids: dict[tuple[str, str], int] = {}
        self._next: Counter[str] = Counter()

    def _placeholder(self, entity_type: str, value: str) -> str:
        key = (entity_type, value)
        if key not in self._ids:
            self._next[entity_type] += 1
            self._ids[key] = self._next[entity_type]
        return f"<{entity_type}_{self._ids[key]}>"

    def mask_text(self, text: str) -> str:
        """``text`` with every PII span replaced by its placeholder."""
        spans = [(f.type, f.start, f.end) for f in self.scanner.scan_text(text)]
        if self._extra is not None:
            spans += list(self._extra(text))
        if not spans:
            return text
        out: list[str] = []
        pos = 0
        for t, s, e in merge_spans(spans):
            out.append(text[pos:s])
            out.append(self._placeholder(t, text[s:e]))
            pos = e
        out.append(text[pos:])
        return "".join(out)

    def mask_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``row`` with PII masked in every (nested) string."""
        return map_strings(dict(row), "", lambda _path, s: self.mask_text(s))

    def mask(self, dataset: Any) -> Any:
        """Mask a dataset, returning the same kind: list -> list, ``datasets.Dataset`` -> Dataset.

        A file path gives a list of dicts; use :meth:`mask_file` to write a masked file.
        """
        if hasattr(dataset, "map") and hasattr(dataset, "column_names") and not is_path_like(dataset):
            # Sequential map keeps placeholder numbering in row order.
            return dataset.map(self.mask_row, load_from_cache_file=False, desc="masking PII")
        return [self.mask_row(row) for _, row in iter_rows(dataset)]

    def mask_file(self, source: Any, destination: str) -> str:
        """Mask ``source`` (rows or a file) into ``destination`` (.jsonl/.json/.csv), atomically."""
        from pathlib import Path

        from provenir.core.errors import DataError

        if is_path_like(source) and Path(source).resolve() == Path(destination).resolve():
            raise DataError(
                f"{destination}: refusing to overwrite the dataset being masked; choose another path"
            )
        return str(write_rows(destination, (self.mask_row(row) for _, row in iter_rows(source))))
