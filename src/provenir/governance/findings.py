"""What a scanner found: one span type shared by the PII and the secret scanners."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Finding:
    """``text[start:end]`` of ``field`` in row ``row`` is of ``type`` (``EMAIL``, ``AWS Access Key``, ...).

    ``row`` is ``None`` for raw text. The matched text itself is never stored.
    """

    type: str
    start: int
    end: int
    field: str = ""
    row: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (no matched text)."""
        return {"type": self.type, "row": self.row, "field": self.field, "start": self.start, "end": self.end}


@dataclass
class FindingsReport:
    """Findings over ``rows_scanned`` rows; the PII and secret reports name their flags on top."""

    rows_scanned: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def rows_with_findings(self) -> int:
        """How many distinct rows contain at least one finding."""
        return len({f.row for f in self.findings})

    def findings_page(self, max_findings: int) -> dict[str, Any]:
        """At most ``max_findings`` locations, and whether the list was cut."""
        return {
            "findings": [f.to_dict() for f in self.findings[:max_findings]],
            "findings_truncated": len(self.findings) > max_findings,
        }
