"""Console pages state facts: every value shown is compared with the record it comes from."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import AUTH, expected_order, make_manifest, make_sortable_store
from console_support import ConsoleStore, attr, table_rows
from fastapi.testclient import TestClient

from provenir.api.app import create_app
from provenir.api.console.runs_table import FIRST_ORDER
from provenir.api.run_index import RunIndex
from provenir.api.settings import ApiSettings
from provenir.core.manifest import RunManifest
from provenir.eval.harness import EvalResult
from provenir.governance.audit import AuditLogger, AuditReader
from provenir.reporting.artifacts import load_run
from provenir.reporting.compare import compare_runs
from provenir.train.runs import list_runs


@pytest.fixture(scope="module")
def client(console_store: ConsoleStore) -> Iterator[TestClient]:
    with TestClient(create_app(ApiSettings(output_dir=console_store.root))) as c:
        yield c


def _manifests(cs: ConsoleStore) -> dict[str, RunManifest]:
    return {rid: RunManifest.load(cs.store.manifest_path(rid)) for rid in cs.store.run_ids()}


def test_runs_table_matches_the_manifests_evaluations_and_verification(
    client: TestClient, console_store: ConsoleStore
) -> None:
    rows = table_rows(client.get("/ui").text)
    manifests = _manifests(console_store)
    assert set(rows) == set(manifests)
    for run_id, m in manifests.items():
        row = rows[run_id]
        # The name, then the short run id (on its own line) and the relation to a parent run.
        relation = f" {m.relation}" if m.relation else ""
        assert row["name"]["text"].strip() == f"{m.name}{run_id[:8]}{relation}"
        assert attr(row["name"], "code", "title") == [run_id]
        assert row["algorithm"]["text"] == m.algorithm
        assert row["status"]["text"] == m.status
        assert attr(row["started"], "time", "datetime") == [m.timestamp]
        assert attr(row["git"], "code", "title") == ([m.git_sha] if m.git_sha else [])
        verified = console_store.store.verify(run_id, check_outputs=False).ok
        assert row["verification"]["text"].startswith("verified" if verified else "FAILED")
        eval_file = console_store.store.run_dir(run_id) / "eval.json"
        shown = {a["data-metric"]: a for t, a in row["metrics"]["attrs"] if t == "div"}
        if eval_file.is_file():
            result = EvalResult.load(eval_file)
            assert set(shown) == set(result.metrics)
            for name, metric in result.metrics.items():
                assert float(shown[name]["data-mean"]) == metric.mean
                assert float(shown[name]["data-ci-lower"]) == metric.ci_lower
                assert float(shown[name]["data-ci-upper"]) == metric.ci_upper
                assert (
                    f"{metric.mean:.4f} [{metric.ci_lower:.4f}, {metric.ci_upper:.4f}]"
                    in row["metrics"]["text"]
                )
        else:
            assert shown == {} and "not evaluated" in row["metrics"]["text"]
    tampered = rows[console_store.tampered.run_id]["verification"]["text"]
    assert tampered.startswith("FAILED") and "hash" in tampered


def test_run_page_shows_the_reports_facts_and_downloads(
    client: TestClient, console_store: ConsoleStore
) -> None:
    base = console_store.base
    html = client.get(f"/ui/runs/{base.run_id}").text
    assert f'data-run-id="{base.run_id}" data-verified="true"' in html
    m = RunManifest.load(console_store.store.manifest_path(base.run_id))
    for value in (m.manifest_hash, m.config_hash, m.dataset_hash, m.timestamp):
        assert value in html
    result = EvalResult.load(console_store.store.run_dir(base.run_id) / "eval.json")
    for name, metric in result.metrics.items():
        assert re.search(
            rf"<td>{name}</td><td class=\"num\">{metric.mean:.4f}</td><td class=\"num\">\[{metric.ci_lower:.4f}, {metric.ci_upper:.4f}\]</td>",
            html,
        )
    manifest = client.get(f"/ui/runs/{base.run_id}/manifest.json")
    api = client.get(f"/manifests/{base.run_id}")
    assert manifest.content == api.content and manifest.headers["content-disposition"].startswith(
        "attachment"
    )
    assert f'href="/ui/runs/{base.run_id}/lineage"' in html


def test_a_tampered_manifest_fails_on_its_page(client: TestClient, console_store: ConsoleStore) -> None:
    run_id = console_store.tampered.run_id
    html = client.get(f"/ui/runs/{run_id}").text
    verification = console_store.store.verify(run_id)
    assert not verification.ok
    assert 'data-verified="false"' in html and "This run does not verify" in html
    assert verification.problems[0] in html.replace("&#39;", "'")


def test_lineage_links_parent_and_child_and_shared_data(
    client: TestClient, console_store: ConsoleStore
) -> None:
    base, child = console_store.base, console_store.child
    child_page = client.get(f"/ui/runs/{child.run_id}/lineage").text
    parents = child_page.split('id="parents"')[1].split('id="children"')[0]
    assert f'href="/ui/runs/{base.run_id}/lineage"' in parents and "<b>reproduce</b>" in parents
    assert f'<a href="/ui/runs/{base.run_id}/lineage"><title>' in child_page  # the graph's box is a link
    base_page = client.get(f"/ui/runs/{base.run_id}/lineage").text
    children = base_page.split('id="children"')[1].split('id="inputs"')[0]
    assert f'href="/ui/runs/{child.run_id}/lineage"' in children and "reproduce" in children
    m = RunManifest.load(console_store.store.manifest_path(base.run_id))
    assert m.inputs is not None
    inputs = base_page.split('id="inputs"')[1].split('id="tree"')[0]
    for source in m.inputs.datasets:
        assert source.sha256 in inputs
    sharing = {
        rid
        for rid, other in _manifests(console_store).items()
        if rid != base.run_id
        and other.inputs is not None
        and {d.sha256 for d in other.inputs.datasets} & {d.sha256 for d in m.inputs.datasets}
    }
    assert sharing and all(f"/ui/runs/{rid}/lineage" in inputs for rid in sharing)


def test_compare_shows_the_config_diff_and_the_paired_test(
    client: TestClient, console_store: ConsoleStore
) -> None:
    a, b = console_store.base.run_id, console_store.candidate.run_id
    html = client.get(f"/ui/compare?runs={a},{b}").text
    expected = compare_runs(load_run(a, console_store.root), load_run(b, console_store.root))
    assert re.findall(r'<tr data-key="([^"]+)">', html) == [c.key for c in expected.config_changes]
    assert expected.gate is not None
    for name, mc in expected.gate.comparisons.items():
        row = re.search(rf'<tr data-metric="{name}">(.*?)</tr>', html, re.S)
        assert row is not None and mc.test is not None
        assert mc.test in row.group(1) and mc.verdict in row.group(1) and f"{mc.delta:+.4f}" in row.group(1)
    assert ("PASSED" if expected.gate.passed else "TRIPPED") in html
    # The checkbox form's repeated run= works the same way.
    assert client.get(f"/ui/compare?run={a}&run={b}").text == html
    assert client.get(f"/ui/compare?runs={a}").status_code == 422
    assert client.get("/ui/compare?runs=../x,y").status_code == 422


def test_audit_page_and_chain_verification(client: TestClient, console_store: ConsoleStore) -> None:
    reader = AuditReader(console_store.store.audit_dir)
    page = reader.query(limit=50)
    html = client.get("/ui/audit").text
    assert [int(s) for s in re.findall(r'<tr data-seq="(\d+)">', html)] == [r.seq for r in page.records]
    run_id = console_store.base.run_id
    filtered = client.get(f"/ui/audit?run_id={run_id}").text
    expected = reader.query(run_id=run_id, limit=50)
    assert [int(s) for s in re.findall(r'<tr data-seq="(\d+)">', filtered)] == [
        r.seq for r in expected.records
    ]
    check = AuditLogger(console_store.store.audit_dir).check(manifests_dir=console_store.store.manifests_dir)
    fragment = client.get("/ui/audit/verify", headers={"HX-Request": "true"}).text
    assert "<html" not in fragment and f'data-chain-ok="{"true" if check.ok else "false"}"' in fragment
    assert f"{check.head_seq}:{check.head_hash}" in fragment and check.tree_root in fragment


def test_runs_pages_follow_the_index_cursors(fresh_store: Path) -> None:
    for i in range(3):
        make_manifest(fresh_store, i)
    with TestClient(create_app(ApiSettings(output_dir=fresh_store))) as client:
        seen: list[str] = []
        url = "/ui?limit=1"
        while url:
            html = client.get(url).text
            seen += list(table_rows(html))
            found = re.search(r'<a href="([^"]+)" rel="next">', html)
            url = found.group(1).replace("&amp;", "&") if found else ""
        index = RunIndex(fresh_store / "index" / "runs.sqlite3", fresh_store / "manifests")
        assert seen == [r["run_id"] for r in index.list(limit=10).rows]
        oldest = list(table_rows(client.get("/ui?order=asc").text))
        assert oldest == seen[::-1] == [r["run_id"] for r in index.list(limit=10, order="asc").rows]
        assert list(table_rows(client.get("/ui?status=failed").text)) == [
            r["run_id"] for r in index.list(status="failed").rows
        ]
        fragment = client.get("/ui?name=run-0", headers={"HX-Request": "true"}).text
        assert "<html" not in fragment and list(table_rows(fragment)) == [
            r["run_id"] for r in index.list(name="run-0").rows
        ]
        assert client.get("/ui?cursor=bogus").status_code == 400
        index.close()


_HEADER = re.compile(
    r'<th scope="col" data-sort="(\w+)"(?: aria-sort="(\w+)")?><a class="sort" href="([^"]+)"'
)


def _headers(html: str) -> dict[str, tuple[str | None, str]]:
    """``{sort key: (aria-sort, link)}`` of the sortable column headers."""
    return {key: (aria or None, href.replace("&amp;", "&")) for key, aria, href in _HEADER.findall(html)}


def _walk_pages(client: TestClient, url: str) -> list[str]:
    seen: list[str] = []
    while url:
        html = client.get(url).text
        seen += list(table_rows(html))
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = found.group(1).replace("&amp;", "&") if found else ""
    return seen


def test_runs_table_sorts_by_its_column_headers(fresh_store: Path) -> None:
    make_sortable_store(fresh_store)
    summaries = list_runs(fresh_store)
    with TestClient(create_app(ApiSettings(output_dir=fresh_store))) as client:
        for sort, first in FIRST_ORDER.items():
            seen = _walk_pages(client, f"/ui?sort={sort}&order={first}&limit=10")
            assert seen == expected_order(summaries, sort, first), sort
        # Sorted by name, A to Z: that header says so, and a click on it reverses the order.
        html = client.get("/ui?status=failed&sort=name&order=asc&limit=5").text
        headers = _headers(html)
        assert set(headers) == set(FIRST_ORDER) and "by name, A to Z" in html
        assert [k for k, (aria, _) in headers.items() if aria] == ["name"] and headers["name"][
            0
        ] == "ascending"
        reversed_html = client.get(headers["name"][1]).text
        assert _headers(reversed_html)["name"][0] == "descending"
        failed = [r for r in summaries if r["status"] == "failed"]
        assert list(table_rows(reversed_html)) == expected_order(failed, "name", "desc")[:5]
        # Another column sorts by it, first page, keeping the filters.
        assert headers["started"][1] == "/ui?status=failed&sort=started&order=desc&limit=5"
        # A next-page link of one sort does not continue another.
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        assert found is not None
        other = found.group(1).replace("&amp;", "&").replace("sort=name", "sort=status")
        refused = client.get(other)
        assert refused.status_code == 400 and "sorted by name asc, not status asc" in refused.text


def test_bearer_header_reads_pages_on_a_guarded_server(console_store: ConsoleStore) -> None:
    from console_support import TOKEN

    with TestClient(create_app(ApiSettings(output_dir=console_store.root, token=TOKEN))) as c:
        assert c.get("/ui", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get("/ui", headers=AUTH, follow_redirects=False).status_code == 303


def _envelope(statement: dict[str, object]) -> bytes:
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(
        {"payloadType": "application/vnd.in-toto+json", "payload": payload, "signatures": []}
    ).encode()


def test_downloads_withhold_server_paths_unless_sealed_files_are_served(fresh_store: Path) -> None:
    manifest = make_manifest(fresh_store, 0)
    run_id = manifest.run_id
    run_dir = fresh_store / "runs" / run_id
    run_dir.mkdir(parents=True)
    data_file = fresh_store.resolve() / "data" / "train.jsonl"
    (run_dir / "MODEL_CARD.md").write_text(f"# card\n\nTrained on {data_file}.\n", encoding="utf-8")
    attestation = run_dir / "provenance.intoto.jsonl"
    with TestClient(create_app(ApiSettings(output_dir=fresh_store))) as client:
        assert client.get(f"/ui/runs/{run_id}/attestation.jsonl").status_code == 404
        page = client.get(f"/ui/runs/{run_id}").text
        assert f"/ui/runs/{run_id}/model-card.md" in page and "attestation.jsonl" not in page
        card = client.get(f"/ui/runs/{run_id}/model-card.md")
        assert card.status_code == 200 and "Trained on <artifacts>/data/train.jsonl." in card.text
        assert str(fresh_store.resolve()) not in card.text

        attestation.write_bytes(_envelope({"subject": [{"name": "adapter_model.safetensors"}]}) + b"\n")
        clean = client.get(f"/ui/runs/{run_id}/attestation.jsonl")
        assert clean.status_code == 200 and clean.content == attestation.read_bytes()
        assert "attestation.jsonl" in client.get(f"/ui/runs/{run_id}").text

        attestation.write_bytes(_envelope({"externalParameters": {"data_path": str(data_file)}}) + b"\n")
        withheld = client.get(f"/ui/runs/{run_id}/attestation.jsonl")
        assert withheld.status_code == 403 and str(data_file) not in withheld.text
    sealed = ApiSettings(output_dir=fresh_store, serve_sealed_manifests=True)
    with TestClient(create_app(sealed)) as client:
        assert client.get(f"/ui/runs/{run_id}/attestation.jsonl").content == attestation.read_bytes()
        assert str(data_file) in client.get(f"/ui/runs/{run_id}/model-card.md").text
