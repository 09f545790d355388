"""RunStore: one layout, one resolver, and one verdict on a stored run for the CLI, the API and reports."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provenir.api.app import create_app
from provenir.api.server import BackgroundServer
from provenir.api.settings import ApiSettings
from provenir.cli.main import main
from provenir.core.config import RunConfig
from provenir.core.errors import ManifestError, ManifestTamperedError
from provenir.core.hashing import sha256_file
from provenir.core.inputs import RowsPin, RunInputs
from provenir.core.manifest import RunManifest
from provenir.core.store import OUTPUT_DIR_ENV, RunStore, default_output_dir
from provenir.reporting.artifacts import load_run


def stub_run(root: Path) -> RunManifest:
    """A finished stub-backend run in the store at ``root`` (instant, no model)."""
    from provenir.train.runner import train

    return train(RunConfig(name="store", backend="stub", output_dir=str(root)))


def hand_made(store: RunStore, run_id: str, **fields: Any) -> RunManifest:
    """A sealed manifest saved straight into ``store`` (no training, no run folder)."""
    values: dict[str, Any] = {
        "run_id": run_id,
        "name": "hand",
        "backend": "stub",
        "algorithm": "sft",
        "config_hash": "c" * 64,
        "dataset_hash": "d" * 64,
        "seed": 0,
        "config": {},
        **fields,
    }
    manifest = RunManifest(**values).seal()
    manifest.save(store.manifest_path(run_id))
    return manifest


def rid(i: int) -> str:
    return str(uuid.UUID(int=i + 1, version=4))


# -- layout and resolving -----------------------------------------------------------------------


def test_layout_paths(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "art")
    run_id = rid(0)
    assert store.manifests_dir == tmp_path / "art" / "manifests"
    assert store.manifest_path(run_id) == tmp_path / "art" / "manifests" / f"{run_id}.json"
    assert store.run_dir(run_id) == tmp_path / "art" / "runs" / run_id
    assert store.audit_dir == tmp_path / "art" / "audit"
    assert store.index_dir == tmp_path / "art" / "index"
    assert store.judge_calibrations_dir == tmp_path / "art" / "judge_calibrations"
    upper = "ABCDEF12-0000-4000-8000-000000000000"
    for bad in ("../x", f"{run_id}/..", upper, f"{run_id}\n", ""):
        with pytest.raises(ManifestError, match="invalid run id"):
            store.manifest_path(bad)
        with pytest.raises(ManifestError, match="invalid run id"):
            store.run_dir(bad)


def test_default_output_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(OUTPUT_DIR_ENV, raising=False)
    assert default_output_dir() == "artifacts" and RunStore().root == Path("artifacts")
    monkeypatch.setenv(OUTPUT_DIR_ENV, str(tmp_path))
    assert RunStore().root == tmp_path


def test_run_ids_lists_only_run_manifests(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    assert store.run_ids() == []  # no manifests folder yet
    for i in (2, 0, 1):
        hand_made(store, rid(i))
    (store.manifests_dir / "notes.json").write_text("{}")
    (store.manifests_dir / f"{rid(5)}.json").mkdir()  # a folder is no manifest
    (store.manifests_dir / f".{rid(6)}.json.tmp").write_text("")  # an interrupted atomic write
    assert store.run_ids() == sorted([rid(0), rid(1), rid(2)])


def test_resolve_by_id_prefix_and_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RunStore(tmp_path / "art")
    run_id = rid(3)
    hand_made(store, run_id)
    expected = store.manifest_path(run_id)
    assert store.resolve(run_id) == expected
    assert store.resolve(run_id[:8]) == expected
    assert store.resolve(run_id, allow_path=False) == expected
    assert store.resolve(str(expected)) == expected
    monkeypatch.chdir(tmp_path)
    assert store.resolve(f"art/manifests/{run_id}.json") == Path(f"art/manifests/{run_id}.json")
    assert store.load(run_id[:6]).run_id == run_id

    # A manifest path brings its own store, whichever store resolved it.
    other = RunStore(tmp_path / "other")
    found_in, path = other.locate(str(expected))
    assert found_in.root == (tmp_path / "art").resolve() and path == expected
    assert store.locate(run_id) == (store, expected)


def test_ambiguous_unknown_and_invalid_refs(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    a, b = "12345678-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "12345678-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
    hand_made(store, a)
    hand_made(store, b)
    with pytest.raises(ManifestError, match="ambiguous") as exc:
        store.resolve("12345678")
    assert a in str(exc.value) and b in str(exc.value)
    assert store.resolve("12345678-a") == store.manifest_path(a)
    with pytest.raises(ManifestError, match="no run"):
        store.resolve("abcdef12")
    outside = tmp_path / "outside.json"
    outside.write_text(store.manifest_path(a).read_text())
    for ref in ("../x", "../x.json", "abc", "12345678*", str(outside), "manifests/" + a):
        with pytest.raises(ManifestError, match="neither a manifest file nor a run id"):
            store.resolve(ref, allow_path=False)
    with pytest.raises(ManifestError, match="neither a manifest file nor a run id"):
        store.resolve("../x")  # not a file, not an id: never a glob or a path join
    with pytest.raises(ManifestError, match="manifest not found"):
        store.resolve("../x.json")
    assert store.resolve(str(outside)) == outside  # the local user may name any file


def test_latest_is_the_run_that_started_last(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    # Ids and start times in different orders: "latest" follows the time, not the id.
    hand_made(store, rid(9), timestamp="2026-01-01T00:00:00+00:00")
    hand_made(store, rid(1), timestamp="2026-03-01T00:00:00+00:00")
    hand_made(store, rid(5), timestamp="2026-02-01T00:00:00+00:00")
    (store.manifests_dir / f"{rid(7)}.json").write_text("not json")  # unreadable: skipped
    assert store.latest_run_id() == rid(1)
    assert store.resolve("latest") == store.manifest_path(rid(1))
    assert store.load("latest").run_id == rid(1)
    hand_made(store, rid(3), timestamp="2026-04-01T00:00:00+00:00")
    assert store.resolve("latest") == store.manifest_path(rid(3))


def test_a_folder_without_runs_says_so(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "empty")
    for ref in ("latest", "12345678"):
        with pytest.raises(ManifestError) as exc:
            store.resolve(ref)
        assert str(exc.value) == (
            f"no runs in {tmp_path / 'empty'} (no manifests/<run_id>.json): train one, or point --output-dir "
            "(or $PROVENIR_OUTPUT_DIR) at the artifacts folder that holds your runs"
        )
    with pytest.raises(ManifestError, match="no runs in"):
        store.require_runs()
    assert not (tmp_path / "empty").exists()  # looking created nothing


# -- verification rules -------------------------------------------------------------------------


def test_a_manifest_listing_no_files_needs_no_run_folder(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    bare = hand_made(store, rid(0))
    result = store.verify(bare.run_id)
    assert result.ok and result.outputs_ok is True and result.problems == []
    listed = hand_made(store, rid(1), outputs={"adapter/w.bin": "0" * 64})
    result = store.verify(listed.run_id)
    assert not result.ok and result.outputs_ok is False
    assert result.problems == [f"run folder runs/{listed.run_id} is missing: outputs not checked"]
    unchecked = store.verify(listed.run_id, check_outputs=False)
    assert unchecked.ok and unchecked.outputs_ok is None


def test_stored_input_rows_are_checked(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run_id = rid(0)
    rows = store.run_dir(run_id) / "inputs" / "train_rows.jsonl"
    rows.parent.mkdir(parents=True)
    rows.write_text('{"prompt": "a"}\n')
    pin = RowsPin(path="inputs/train_rows.jsonl", sha256=sha256_file(rows), count=1)
    hand_made(store, run_id, inputs=RunInputs(training_rows=pin))
    assert store.verify(run_id).ok
    rows.write_text('{"prompt": "b"}\n')
    assert store.verify(run_id).problems == ["input rows inputs/train_rows.jsonl changed (hash differs)"]
    rows.unlink()
    assert store.verify(run_id).problems == ["input rows inputs/train_rows.jsonl are missing"]

    sneaky = rid(1)
    store.run_dir(sneaky).mkdir(parents=True)
    (tmp_path / "secret").write_text("x")
    escape = RowsPin(path="../../secret", sha256="0" * 64, count=1)
    hand_made(store, sneaky, inputs=RunInputs(training_rows=escape))
    assert store.verify(sneaky).problems == [
        "input rows path '../../secret' is not a plain relative path inside the run folder; not read"
    ]


# -- the three readers agree --------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """An artifacts root (absolute) and the URL of the real API serving it."""
    root = tmp_path_factory.mktemp("store") / "artifacts"
    root.mkdir()
    server = BackgroundServer(create_app(ApiSettings(output_dir=root))).start()
    yield root, server.url
    server.stop()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["manifest", "verify", *args])
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def _edit_field(store: RunStore, m: RunManifest) -> str:
    path = store.manifest_path(m.run_id)
    path.write_text(path.read_text().replace('"status": "completed"', '"status": "failed"'))
    return m.run_id


def _edit_output(store: RunStore, m: RunManifest) -> str:
    weights = store.run_dir(m.run_id) / "adapter" / "stub_adapter.bin"
    weights.write_bytes(weights.read_bytes() + b"\0")
    return m.run_id


def _delete_output(store: RunStore, m: RunManifest) -> str:
    (store.run_dir(m.run_id) / "train_log.jsonl").unlink()
    return m.run_id


def _rename(store: RunStore, m: RunManifest) -> str:
    other = str(uuid.uuid4())
    store.manifest_path(m.run_id).rename(store.manifest_path(other))
    return other


def _delete_run_folder(store: RunStore, m: RunManifest) -> str:
    shutil.rmtree(store.run_dir(m.run_id))
    return m.run_id


def _crlf(store: RunStore, m: RunManifest) -> str:
    path = store.manifest_path(m.run_id)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    return m.run_id


def _not_json(store: RunStore, m: RunManifest) -> str:
    path = store.manifest_path(m.run_id)
    path.write_bytes(path.read_bytes()[:-20])
    return m.run_id


Tamper = Callable[[RunStore, RunManifest], str]
CASES: dict[str, tuple[Tamper, Callable[[RunManifest], str]]] = {
    "field edited": (_edit_field, lambda m: "manifest_hash does not match the content: a field was changed"),
    "output edited": (_edit_output, lambda m: "output adapter/stub_adapter.bin changed (hash differs)"),
    "output deleted": (_delete_output, lambda m: "output train_log.jsonl is missing"),
    "file renamed": (_rename, lambda m: f"but holds run {m.run_id}"),
    "run folder deleted": (
        _delete_run_folder,
        lambda m: f"run folder runs/{m.run_id} is missing: outputs not checked",
    ),
    "CRLF line endings": (_crlf, lambda m: "file bytes differ from Provenir's serialisation"),
    "not JSON": (_not_json, lambda m: "not valid manifest JSON"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cli_api_and_report_give_the_same_verdict(
    served: tuple[Path, str], case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root, url = served
    store = RunStore(root)
    manifest = stub_run(root)
    tamper, fragment = CASES[case]

    # Intact: all three say ok.
    code, out, _ = _cli(capsys, manifest.run_id, "--output-dir", str(root))
    assert code == 0 and out.strip() == f"ok {manifest.run_id}: hash ok, outputs ok, signature unsigned"
    api_ok = httpx.get(f"{url}/manifests/{manifest.run_id}/verify", timeout=30).json()
    assert api_ok["ok"] is True and api_ok["problems"] == []
    assert load_run(manifest.run_id, root).verification.ok

    ref = tamper(store, manifest)
    expected = store.verify(ref)
    assert not expected.ok and any(fragment(manifest) in p for p in expected.problems), expected.problems

    # CLI, by manifest path and by run id: exit 2 and one line listing exactly those problems.
    mfile = store.manifest_path(ref)
    line = "error: " + " ".join(f"{mfile}: {'; '.join(expected.problems)}".split())
    for args in ((str(mfile),), (ref[:13], "--output-dir", str(root))):
        code, _, err = _cli(capsys, *args)
        assert code == 2 and err.splitlines() == [line], err

    # API: the same outcome, and no server path in what it serves.
    r = httpx.get(f"{url}/manifests/{ref}/verify", timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is False and body["problems"] == expected.problems
    assert (body["hash_ok"], body["canonical_ok"], body["signature"], body["outputs_ok"]) == (
        expected.hash_ok,
        expected.canonical_ok,
        expected.signature,
        expected.outputs_ok,
    )
    assert str(root) not in r.text and str(root.resolve()) not in r.text

    # Report loading: records the same verdict (a manifest that is not JSON leaves nothing to report on).
    if case == "not JSON":
        with pytest.raises(ManifestTamperedError) as exc:
            load_run(ref, root)
        assert str(exc.value) == f"{mfile}: {'; '.join(expected.problems)}"
    else:
        verification = load_run(ref, root).verification
        assert verification.ok is False and verification.problems == expected.problems
        assert verification.outputs_ok == expected.outputs_ok


def test_cli_verify_finds_a_run_id_in_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(OUTPUT_DIR_ENV, raising=False)
    manifest = stub_run(tmp_path / "artifacts")
    code, out, _ = _cli(capsys, manifest.run_id[:8])
    assert code == 0 and out.startswith(f"ok {manifest.run_id}:")

    elsewhere = tmp_path / "elsewhere"
    other = stub_run(elsewhere)
    monkeypatch.setenv(OUTPUT_DIR_ENV, str(elsewhere))
    code, out, _ = _cli(capsys, other.run_id, "--no-check-outputs")
    assert code == 0 and out.strip() == f"ok {other.run_id}: hash ok, signature unsigned"
    code, _, err = _cli(capsys, manifest.run_id)  # not in this store
    assert code == 2 and err.startswith(f"error: no run '{manifest.run_id}' in {elsewhere}")
    code, _, err = _cli(capsys, "../x")
    assert code == 2 and "neither a manifest file nor a run id" in err


# -- unreadable stores and manifests, named without server paths ---------------------------------


def test_a_store_names_its_root() -> None:
    assert repr(RunStore("some/artifacts")) == "RunStore('some/artifacts')"


def test_a_store_of_only_unreadable_manifests_has_no_latest_run(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.manifests_dir.mkdir(parents=True)
    (store.manifests_dir / f"{rid(1)}.json").write_text("not json")
    (store.manifests_dir / f"{rid(2)}.json").write_text('{"timestamp": 5}')
    with pytest.raises(ManifestError, match="no readable run manifest in"):
        store.latest_run_id()


def test_an_ambiguous_prefix_names_the_first_five_matches(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    ids = [f"12345678-aaaa-4aaa-8aaa-aaaaaaaaaa{i:02d}" for i in range(7)]
    for run_id in ids:
        hand_made(store, run_id)
    with pytest.raises(ManifestError) as exc:
        store.resolve("12345678")
    assert str(exc.value).endswith(": " + ", ".join(ids[:5]))


def test_load_and_verify_take_a_manifest_path_and_check_outputs_by_default(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "artifacts")
    manifest = stub_run(store.root)
    path = store.manifest_path(manifest.run_id)
    assert store.load(str(path)).run_id == manifest.run_id
    assert store.verify(str(path)).ok
    (store.run_dir(manifest.run_id) / "train_log.jsonl").write_text("edited\n")
    result = store.verify(manifest.run_id)
    assert not result.ok and "output train_log.jsonl changed (hash differs)" in result.problems


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file: no manifest is unreadable")
def test_an_unreadable_manifest_file_is_a_failed_verification(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    hand_made(store, rid(1))
    store.manifest_path(rid(1)).chmod(0)
    result = store.verify(rid(1))
    assert (result.hash_ok, result.canonical_ok, result.signature) == (False, False, "unknown")
    assert result.problems == ["manifest file cannot be read (Permission denied)"]
    assert store.open(rid(1)).manifest is None


def test_a_corrupt_manifest_is_one_problem_without_its_path(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.manifests_dir.mkdir(parents=True)
    path = store.manifest_path(rid(1))
    path.write_text("{not json")
    result = store.verify(rid(1))
    assert (result.hash_ok, result.canonical_ok, result.signature) == (False, False, "unknown")
    (problem,) = result.problems
    assert problem.startswith("not valid manifest JSON (") and str(tmp_path) not in problem
    stored = store.open(rid(1))
    assert stored.manifest is None and stored.run_dir is None


def test_a_schema_1_manifest_with_a_run_folder_checks_its_outputs(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run_dir = store.run_dir(rid(1))
    run_dir.mkdir(parents=True)
    (run_dir / "w.bin").write_bytes(b"weights")
    manifest = hand_made(store, rid(1), outputs={"w.bin": sha256_file(run_dir / "w.bin")})
    assert manifest.inputs is None
    result = store.verify(rid(1))
    assert result.ok and result.outputs_ok is True


def test_a_store_holds_only_its_own_run_manifests(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    assert store.holds(store.manifest_path(rid(1))) is True
    assert store.holds(store.manifests_dir / "notes.json") is False
    assert store.holds(tmp_path / "elsewhere" / f"{rid(1)}.json") is False
