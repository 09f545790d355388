"""GET /audit (filters, pagination in both directions) and GET /audit/verify."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import TOKEN, run_id_for

from provenir.governance.audit import LOG_NAME, AuditLogger


@pytest.fixture()
def audit_log(artifacts: Path) -> list[dict]:
    """240 events over 4 runs, 3 event names and 2 actors, written through AuditLogger."""
    logger = AuditLogger(artifacts / "audit")
    return [
        logger.log(
            ("training_start", "training_complete", "eval_complete")[i % 3],
            actor=("ci-bot", "alice")[i % 2],
            run_id=run_id_for(i % 4),
            step=i,
        ).to_dict()
        for i in range(240)
    ]


def _walk(client, url: str, **params) -> list[dict]:
    out, cursor = [], None
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor is not None else {})}
        r = client.get(f"{url}/audit", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["records"]) <= params.get("limit", 50)
        out.extend(body["records"])
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("pagination did not end")


def test_pages_cover_the_log_exactly_once_in_both_orders(artifacts: Path, audit_log, serve, client) -> None:
    url, _ = serve(artifacts, token=TOKEN)
    first = client.get(f"{url}/audit", params={"limit": 13}).json()
    assert first["total"] == 240
    assert first["records"][0] == audit_log[-1]
    assert _walk(client, url, limit=13) == list(reversed(audit_log))
    assert _walk(client, url, limit=40, order="asc") == audit_log  # exact page boundary


def test_filters_match_a_brute_force_reference(artifacts: Path, audit_log, serve, client) -> None:
    url, _ = serve(artifacts, token=TOKEN)
    since, until = audit_log[50]["timestamp"], audit_log[180]["timestamp"]
    cases = [
        {"run_id": run_id_for(1)},
        {"event": "eval_complete"},
        {"actor": "alice"},
        {"run_id": run_id_for(2), "event": "training_complete", "actor": "ci-bot"},
        {"since": since, "until": until},
        {"run_id": run_id_for(3), "since": since},
        {"event": "never_logged"},
    ]
    for filters in cases:
        expected = [
            r
            for r in audit_log
            if all(r[k] == v for k, v in filters.items() if k in ("run_id", "event", "actor"))
            and ("since" not in filters or r["timestamp"] >= filters["since"])
            and ("until" not in filters or r["timestamp"] < filters["until"])
        ]
        assert _walk(client, url, limit=7, order="asc", **filters) == expected, filters
        assert _walk(client, url, limit=9, **filters) == list(reversed(expected)), filters


def test_new_events_are_visible_and_an_empty_log_is_an_empty_page(artifacts: Path, serve, client) -> None:
    url, _ = serve(artifacts, token=TOKEN)
    assert client.get(f"{url}/audit").json() == {"records": [], "next_cursor": None, "total": 0}
    AuditLogger(artifacts / "audit").log("first", actor="t")
    body = client.get(f"{url}/audit").json()
    assert body["total"] == 1 and body["records"][0]["event"] == "first"


def test_audit_verify_reports_a_broken_chain(artifacts: Path, audit_log, serve, client) -> None:
    url, _ = serve(artifacts, token=TOKEN)
    ok = client.get(f"{url}/audit/verify").json()
    assert ok["ok"] is True and ok["records"] == 240 and ok["head_hash"] == audit_log[-1]["hash"]
    anchored = client.get(f"{url}/audit/verify", params={"head": f"240:{audit_log[-1]['hash']}"}).json()
    assert anchored["ok"] is True
    missing = client.get(f"{url}/audit/verify", params={"head": f"241:{'0' * 64}"}).json()
    assert missing["ok"] is False

    log = artifacts / "audit" / LOG_NAME
    lines = log.read_bytes().splitlines(keepends=True)
    lines[10] = lines[10].replace(b'"step":10', b'"step":11')
    log.write_bytes(b"".join(lines))
    broken = client.get(f"{url}/audit/verify").json()
    assert broken["ok"] is False
    assert any("line 11" in p for p in broken["problems"])


def test_audit_parameter_errors(artifacts: Path, audit_log, serve, client) -> None:
    url, _ = serve(artifacts, token=TOKEN)
    for params in ({"limit": 0}, {"limit": 1001}, {"order": "sideways"}, {"since": "not a time"}):
        r = client.get(f"{url}/audit", params=params)
        assert r.status_code == 422 and r.json()["error"] == "invalid_request", params
    # A cursor past the end is simply an empty page, not an error.
    assert client.get(f"{url}/audit", params={"cursor": 10**9, "order": "asc"}).json()["records"] == []
