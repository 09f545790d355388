"""GET /runs (index, pagination, filters) and GET /runs/{run_id}, over the real server."""

from __future__ import annotations

import json
from pathlib import Path

from api_support import TOKEN, expected_order, make_manifest, make_sortable_store, run_id_for

from provenir.core.store import RunStore
from provenir.eval.harness import EVAL_FILENAME, EvalResult
from provenir.train.runs import list_runs


def _walk(client, url: str, **params) -> list[dict]:
    seen, cursor, pages = [], None, 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"{url}/runs", params=query).json()
        assert len(body["runs"]) <= params.get("limit", 50)
        seen.extend(body["runs"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
        assert pages < 1000


def test_pagination_returns_every_run_once_newest_first(artifacts: Path, serve, client) -> None:
    n = 200
    manifests = [make_manifest(artifacts, i) for i in range(n)]
    url, _ = serve(artifacts, token=TOKEN)
    first = client.get(f"{url}/runs", params={"limit": 7}).json()
    assert first["total"] == n and first["limit"] == 7
    rows = _walk(client, url, limit=7)
    assert [r["run_id"] for r in rows] == [m.run_id for m in reversed(manifests)]
    assert rows[0] == {
        "run_id": manifests[-1].run_id,
        "name": manifests[-1].name,
        "algorithm": "sft",
        "backend": "stub",
        "status": manifests[-1].status,
        "timestamp": manifests[-1].timestamp,
        "adapter_hash": None,
        "provenance": [],
        "relation": None,
        "error": None,
    }
    # An exact page boundary: the last page is full and has no next cursor.
    rows = _walk(client, url, limit=50)
    assert len(rows) == n


def test_filters_by_status_and_name(artifacts: Path, serve, client) -> None:
    manifests = [make_manifest(artifacts, i) for i in range(60)]
    url, _ = serve(artifacts, token=TOKEN)
    failed = _walk(client, url, status="failed", limit=4)
    assert [r["run_id"] for r in failed] == [m.run_id for m in reversed(manifests) if m.status == "failed"]
    assert client.get(f"{url}/runs", params={"status": "failed"}).json()["total"] == 20
    named = _walk(client, url, name="run-2", limit=6)
    assert {r["name"] for r in named} == {"run-2"} and len(named) == 20
    both = client.get(f"{url}/runs", params={"name": "run-1", "status": "failed"}).json()
    assert both["total"] == 20
    assert client.get(f"{url}/runs", params={"name": "run-1", "status": "completed"}).json()["total"] == 0
    assert client.get(f"{url}/runs", params={"name": "run-%"}).json()["total"] == 0  # exact, not LIKE


def test_new_runs_appear_and_paging_never_repeats_a_run(artifacts: Path, serve, client) -> None:
    for i in range(30):
        make_manifest(artifacts, i)
    url, settings = serve(artifacts, token=TOKEN)
    page = client.get(f"{url}/runs", params={"limit": 10}).json()
    # Newer runs arrive while the client pages: keyset pagination neither repeats nor skips.
    for i in range(30, 35):
        make_manifest(artifacts, i)
    rest = _walk(client, url, limit=10, cursor=page["next_cursor"])
    got = [r["run_id"] for r in page["runs"] + rest]
    assert got == [run_id_for(i) for i in reversed(range(30))]
    assert client.get(f"{url}/runs").json()["total"] == 35
    # A deleted manifest disappears from the listing.
    RunStore(artifacts).manifest_path(run_id_for(3)).unlink()
    assert client.get(f"{url}/runs").json()["total"] == 34


def test_sort_and_order_page_through_every_run(artifacts: Path, serve, client) -> None:
    make_sortable_store(artifacts)
    summaries = list_runs(artifacts)
    url, _ = serve(artifacts, token=TOKEN)
    for sort, order in [("name", "asc"), ("algorithm", "desc"), ("status", "asc"), ("started", "asc")]:
        rows = _walk(client, url, sort=sort, order=order, limit=7)
        assert [r["run_id"] for r in rows] == expected_order(summaries, sort, order), (sort, order)
    # A cursor belongs to its listing: another sort or order refuses it with a one-line 400.
    cursor = client.get(f"{url}/runs", params={"sort": "name", "limit": 7}).json()["next_cursor"]
    refused = client.get(f"{url}/runs", params={"sort": "status", "cursor": cursor})
    assert refused.status_code == 400 and refused.json()["error"] == "bad_request"
    assert "sorted by name desc, not status desc" in refused.json()["detail"]
    assert (
        client.get(f"{url}/runs", params={"sort": "name", "order": "asc", "cursor": cursor}).status_code
        == 400
    )
    assert client.get(f"{url}/runs", params={"sort": "name", "cursor": cursor}).status_code == 200
    assert client.get(f"{url}/runs", params={"sort": "seed"}).status_code == 422
    assert client.get(f"{url}/runs", params={"order": "up"}).status_code == 422
    params = {
        p["name"]: p for p in client.get(f"{url}/openapi.json").json()["paths"]["/runs"]["get"]["parameters"]
    }
    assert params["sort"]["schema"]["enum"] == ["started", "name", "algorithm", "status"]
    assert params["order"]["schema"]["enum"] == ["desc", "asc"] and params["sort"]["description"]


def test_unreadable_manifests_are_listed_as_such(artifacts: Path, serve, client) -> None:
    good = make_manifest(artifacts, 0)
    bad = make_manifest(artifacts, 1)
    RunStore(artifacts).manifest_path(bad.run_id).write_text("{ not json")
    (artifacts / "manifests" / "notes.json").write_text("{}")  # not a run file: ignored
    url, _ = serve(artifacts, token=TOKEN)
    body = client.get(f"{url}/runs").json()
    assert body["total"] == 2
    by_id = {r["run_id"]: r for r in body["runs"]}
    assert by_id[good.run_id]["status"] == "completed"
    assert by_id[bad.run_id]["status"] == "unreadable"
    assert "not valid manifest JSON" in by_id[bad.run_id]["error"]
    assert str(artifacts) not in by_id[bad.run_id]["error"]
    assert client.get(f"{url}/runs", params={"status": "unreadable"}).json()["total"] == 1


def test_run_detail_with_eval_json(artifacts: Path, serve, client) -> None:
    manifest = make_manifest(artifacts, 0, metrics={"train_loss": 0.25, "diverged": 1.0})
    # NaN cannot be sealed (RFC 8785), but an unsealed manifest written by hand can hold one.
    manifest.metrics["diverged"] = float("nan")
    RunStore(artifacts).manifest_path(manifest.run_id).write_text(manifest.to_json())
    result = EvalResult.from_dict(
        {
            "metrics": {
                "exact_match": {"mean": 0.5, "ci_lower": 0.2, "ci_upper": 0.8, "n": 4, "scores": [1, 0, 1, 0]}
            },
            "n": 4,
        }
    )
    result.save(RunStore(artifacts).run_dir(manifest.run_id) / EVAL_FILENAME)
    url, _ = serve(artifacts, token=TOKEN)
    detail = client.get(f"{url}/runs/{manifest.run_id}").json()
    assert detail["run_id"] == manifest.run_id and detail["status"] == "completed"
    assert detail["manifest_hash"] == manifest.manifest_hash and detail["signed"] is False
    assert detail["metrics"] == {"train_loss": 0.25, "diverged": None}  # NaN is not JSON
    assert detail["eval_source"] == "eval.json"
    em = detail["eval"]["metrics"]["exact_match"]
    assert (em["mean"], em["ci_lower"], em["ci_upper"], em["n"]) == (0.5, 0.2, 0.8, 4)
    assert "scores" not in em  # per-item data stays in the file


def test_run_detail_falls_back_to_the_manifest_eval_and_reports_a_bad_eval_json(
    artifacts: Path, serve, client
) -> None:
    summary = {"metrics": {"token_f1": {"mean": 0.7, "ci_lower": 0.6, "ci_upper": 0.8, "n": 9}}, "n": 9}
    manifest = make_manifest(artifacts, 0, eval=summary)
    url, _ = serve(artifacts, token=TOKEN)
    detail = client.get(f"{url}/runs/{manifest.run_id}").json()
    assert detail["eval_source"] == "manifest" and detail["eval"] == summary
    eval_path = RunStore(artifacts).run_dir(manifest.run_id) / EVAL_FILENAME
    eval_path.parent.mkdir(parents=True, exist_ok=True)
    eval_path.write_text("{broken")
    detail = client.get(f"{url}/runs/{manifest.run_id}").json()
    assert detail["eval_source"] == "manifest"
    assert detail["eval_error"].startswith("eval.json") and str(artifacts) not in detail["eval_error"]


def test_run_detail_errors(artifacts: Path, serve, client) -> None:
    manifest = make_manifest(artifacts, 0)
    url, _ = serve(artifacts, token=TOKEN)
    missing = client.get(f"{url}/runs/{run_id_for(99)}")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    # A manifest copied under another run's file name is not that run.
    other = run_id_for(5)
    RunStore(artifacts).manifest_path(other).write_text(manifest.to_json())
    swapped = client.get(f"{url}/runs/{other}")
    assert swapped.status_code == 409 and swapped.json()["error"] == "tampered"
    listing = {r["run_id"]: r for r in client.get(f"{url}/runs").json()["runs"]}
    assert listing[other]["status"] == "unreadable"


def test_a_stub_training_run_end_to_end(artifacts: Path, serve, client) -> None:
    from provenir.core.config import RunConfig
    from provenir.train.runner import train

    manifest = train(RunConfig(name="stub-e2e", backend="stub", output_dir=str(artifacts)))
    url, _ = serve(artifacts, token=TOKEN)
    runs = client.get(f"{url}/runs", params={"name": "stub-e2e"}).json()
    assert [r["run_id"] for r in runs["runs"]] == [manifest.run_id]
    detail = client.get(f"{url}/runs/{manifest.run_id}").json()
    assert detail["outputs"] == manifest.outputs and detail["adapter_hash"] == manifest.adapter_hash
    stored = json.loads(RunStore(artifacts).manifest_path(manifest.run_id).read_text())
    assert stored["config_hash"] == detail["config_hash"]
