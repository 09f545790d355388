"""RunIndex sorted listings: every sort key and order, paged through its keyset cursors, against
the manifests' own summaries sorted here in Python."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import get_args

import pytest
from api_support import expected_order, make_manifest, make_sortable_store, run_id_for

from provenir.api.console.runs_table import FIRST_ORDER
from provenir.api.models import RunSort
from provenir.api.run_index import (
    ORDERS,
    SORT_COLUMNS,
    InvalidCursorError,
    RunIndex,
    decode_cursor,
    encode_cursor,
)
from provenir.core.errors import ProvenirError
from provenir.core.store import RunStore
from provenir.train.runs import list_runs

LIMIT = 4


def _index(artifacts: Path, tmp_path: Path) -> RunIndex:
    return RunIndex(tmp_path / "idx.sqlite3", RunStore(artifacts).manifests_dir, max_age_s=3600)


def _walk(index: RunIndex, cursor: str | None = None, **params: object) -> tuple[list[str], int]:
    """Every run id of a listing from ``cursor`` on, page by page, and the number of pages."""
    seen: list[str] = []
    pages = 0
    while True:
        page = index.list(limit=LIMIT, cursor=cursor, **params)  # type: ignore[arg-type]
        assert len(page.rows) <= LIMIT
        seen += [r["run_id"] for r in page.rows]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            return seen, pages
        assert pages < 100


def test_sort_keys_agree_everywhere() -> None:
    assert get_args(RunSort) == tuple(SORT_COLUMNS) and set(FIRST_ORDER) == set(SORT_COLUMNS)


@pytest.mark.parametrize("sort", list(SORT_COLUMNS))
def test_each_sort_pages_through_every_run_once_in_order(artifacts: Path, tmp_path: Path, sort: str) -> None:
    make_sortable_store(artifacts)
    summaries = list_runs(artifacts)
    assert len(summaries) == 33
    index = _index(artifacts, tmp_path)
    for order in ORDERS:
        seen, pages = _walk(index, sort=sort, order=order)
        assert seen == expected_order(summaries, sort, order), (sort, order)
        assert pages == 9  # 33 runs, 4 a page
        # Filtered: the same order restricted to the matching runs.
        failed = [r for r in summaries if r["status"] == "failed"]
        assert _walk(index, sort=sort, order=order, status="failed")[0] == expected_order(failed, sort, order)
    index.close()


def test_runs_without_a_value_come_last_in_both_orders(artifacts: Path, tmp_path: Path) -> None:
    make_sortable_store(artifacts)
    index = _index(artifacts, tmp_path)
    for order in ORDERS:
        rows = index.list(sort="name", order=order, limit=100).rows
        no_name = {run_id_for(i) for i in range(30) if i % 6 == 4} | {run_id_for(i) for i in (30, 31, 32)}
        assert {r["run_id"] for r in rows[-8:]} == no_name  # empty names and unreadable manifests
        present = [r["name"] for r in rows[:-8]]
        assert "" not in present and present == sorted(present, reverse=order == "desc")
        started = index.list(sort="started", order=order, limit=100).rows
        assert {r["run_id"] for r in started[-4:]} == {run_id_for(i) for i in (7, 30, 31, 32)}
    index.close()


def test_runs_added_while_paging_a_sort_are_never_repeated(artifacts: Path, tmp_path: Path) -> None:
    for i in range(12):
        make_manifest(artifacts, i)  # names run-0, run-1, run-2
    index = RunIndex(tmp_path / "idx.sqlite3", RunStore(artifacts).manifests_dir, max_age_s=0)
    first = index.list(sort="name", order="asc", limit=5)
    make_manifest(artifacts, 12, name="run-0")  # sorts before the cursor: not seen by this walk
    make_manifest(artifacts, 13, name="run-9")  # after it: seen
    rest, _ = _walk(index, sort="name", order="asc", cursor=first.next_cursor)
    seen = [r["run_id"] for r in first.rows] + rest
    assert len(seen) == len(set(seen)) == 13 and run_id_for(13) in rest and run_id_for(12) not in seen
    index.close()


def test_a_cursor_is_refused_by_another_sort_or_order(artifacts: Path, tmp_path: Path) -> None:
    make_sortable_store(artifacts)
    index = _index(artifacts, tmp_path)
    cursor = index.list(sort="name", order="asc", limit=LIMIT).next_cursor
    assert cursor is not None
    for sort, order in [("name", "desc"), ("algorithm", "asc"), ("started", "desc")]:
        with pytest.raises(InvalidCursorError, match="sorted by name asc, not") as exc:
            index.list(sort=sort, order=order, cursor=cursor)
        assert "\n" not in str(exc.value)
    with pytest.raises(ProvenirError, match="invalid sort 'seed'"):
        index.list(sort="seed")
    index.close()


def test_cursor_round_trip_and_forgery() -> None:
    row = {
        "run_id": run_id_for(1),
        "timestamp": "2025-01-01T00:00:00+00:00",
        "name": "ünï",
        "status": "failed",
    }
    by_time = decode_cursor(encode_cursor(row))
    assert (by_time.sort, by_time.order, by_time.missing) == ("started", "desc", False)
    assert by_time.key == (row["timestamp"], row["run_id"])
    by_name = decode_cursor(encode_cursor(row, sort="name", order="asc"))
    assert by_name.key == ("ünï", row["timestamp"], row["run_id"]) and by_name.order == "asc"
    assert decode_cursor(encode_cursor({**row, "status": "unreadable"}, sort="name")).missing
    good = encode_cursor(row)
    forged = [
        "",
        "!!!",
        good[:-2] + "zz",
        "WzFd",  # [1]
    ]

    def raw(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    forged += [
        raw([row["timestamp"], row["run_id"]]),  # the cursor of an older server: no sort recorded
        raw(["seed", "asc", 0, "1", "t", "r"]),
        raw(["name", "up", 0, "n", "t", "r"]),
        raw(["name", "asc", True, "n", "t", "r"]),
        raw(["name", "asc", 0, "t", "r"]),  # the key of another sort
        raw(["started", "asc", 0, 5, "r"]),
        raw([["name"], "asc", 0, "n", "t", "r"]),
        base64.urlsafe_b64encode(b"[" * 3000).decode(),  # deeper than the JSON parser goes
    ]
    for bad in forged:
        with pytest.raises(InvalidCursorError):
            decode_cursor(bad)
