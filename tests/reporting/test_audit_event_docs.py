"""The audit event reference page is generated from the schemas and cannot drift from them."""

from __future__ import annotations

from pathlib import Path

from provenir.governance.audit_events import EVENTS
from provenir.reporting.audit_event_docs import render_audit_events_reference

PAGE = Path(__file__).resolve().parents[2] / "docs" / "audit-events.md"


def test_the_committed_page_equals_the_generated_one() -> None:
    assert PAGE.read_text(encoding="utf-8") == render_audit_events_reference(), (
        "docs/audit-events.md is stale: python -m provenir.reporting.audit_event_docs > docs/audit-events.md"
    )


def test_the_page_lists_every_event_and_field() -> None:
    page = render_audit_events_reference()
    for name, schema in EVENTS.items():
        assert f"## `{name}`" in page
        for field, spec in schema.fields.items():
            assert f"| `{field}` | {spec.describe().replace('|', chr(92) + '|')} |" in page, (name, field)
    assert "| `flywheel_complete` | `flywheel_completed` |" in page
