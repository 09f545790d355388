"""ApiSettings precedence and token rules, the SQLite run index, and `provenir serve`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_support import TOKEN, make_manifest, run_id_for

from provenir.api.run_index import RunIndex
from provenir.api.server import check_exposure
from provenir.api.settings import TOKEN_ENV, ApiSettings, load_settings
from provenir.core.errors import ConfigError
from provenir.core.store import RunStore


def test_settings_precedence_default_file_env_override(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert load_settings() == ApiSettings()
    assert ApiSettings().cors_origins == [] and ApiSettings().token is None
    cfg = tmp_path / "api.yaml"
    cfg.write_text(
        f"output_dir: from-file\ntoken: file-token-{'f' * 16}\ncors_origins: [https://a.example]\n"
    )
    s = load_settings(cfg)
    assert s.output_dir == Path("from-file") and s.token.get_secret_value().startswith("file-token")
    monkeypatch.setenv(TOKEN_ENV, "env-token-" + "e" * 16)
    s = load_settings(cfg, output_dir=None)  # an unset flag does not mask the file
    assert s.output_dir == Path("from-file") and s.token.get_secret_value().startswith("env-token")
    s = load_settings(cfg, output_dir=tmp_path / "flag", token="flag-token-" + "x" * 16)
    assert s.output_dir == tmp_path / "flag" and s.token.get_secret_value().startswith("flag-token")
    assert s.resolved_audit_dir == tmp_path / "flag" / "audit"
    assert s.resolved_index_path == tmp_path / "flag" / "index" / "runs.sqlite3"


def test_weak_tokens_are_refused_without_echoing_them(monkeypatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "short-secret")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "at least 16" in str(exc.value) and "short-secret" not in str(exc.value)
    monkeypatch.setenv(TOKEN_ENV, "has a space in it, long enough")
    with pytest.raises(ConfigError, match="white space"):
        load_settings()
    settings = ApiSettings(token=TOKEN)
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())


def test_bad_settings_are_config_errors(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="cors_origins"):
        load_settings(cors_origins=["evil.example"])
    (tmp_path / "typo.yaml").write_text("tokn: x\n")
    with pytest.raises(ConfigError, match="tokn"):
        load_settings(tmp_path / "typo.yaml")


def test_public_bind_needs_a_token() -> None:
    check_exposure(ApiSettings(), "127.0.0.1")
    check_exposure(ApiSettings(), "::1")
    check_exposure(ApiSettings(), "localhost")
    with pytest.raises(ConfigError, match="PROVENIR_API_TOKEN"):
        check_exposure(ApiSettings(), "0.0.0.0")
    check_exposure(ApiSettings(token=TOKEN), "0.0.0.0")
    check_exposure(ApiSettings(), "0.0.0.0", allow_unauthenticated=True)


def test_index_refreshes_incrementally(artifacts: Path, tmp_path: Path, monkeypatch) -> None:
    for i in range(20):
        make_manifest(artifacts, i)
    index = RunIndex(tmp_path / "idx.sqlite3", RunStore(artifacts).manifests_dir, max_age_s=3600)
    assert index.refresh(force=True) == 20
    assert index.refresh(force=True) == 0  # nothing changed: nothing re-read

    parsed: list[str] = []
    real_row = RunIndex._row
    monkeypatch.setattr(RunIndex, "_row", staticmethod(lambda *a: parsed.append(a[0]) or real_row(*a)))
    edited = make_manifest(artifacts, 4, name="renamed")  # atomic save: rename into the folder
    make_manifest(artifacts, 20)
    RunStore(artifacts).manifest_path(run_id_for(7)).unlink()
    assert index.refresh(force=True) == 3
    assert sorted(parsed) == sorted([edited.run_id, run_id_for(20)])
    page = index.list(limit=100)
    assert page.total == 20 and {r["name"] for r in page.rows if r["run_id"] == edited.run_id} == {"renamed"}
    index.close()

    # A fresh instance on the same file keeps the rows (it is persistent), and so does a restart.
    again = RunIndex(tmp_path / "idx.sqlite3", RunStore(artifacts).manifests_dir)
    parsed.clear()
    assert again.refresh(force=True) == 0 and parsed == []
    again.close()


def test_in_place_edits_are_seen_within_max_age(artifacts: Path, tmp_path: Path) -> None:
    m = make_manifest(artifacts, 0)
    index = RunIndex(tmp_path / "idx.sqlite3", RunStore(artifacts).manifests_dir, max_age_s=0)
    assert index.list().rows[0]["name"] == m.name
    path = RunStore(artifacts).manifest_path(m.run_id)
    # Edit in place (no rename, folder mtime unchanged): a different size is enough to notice.
    stat = os.stat(artifacts / "manifests")
    path.write_text(path.read_text().replace(f'"name": "{m.name}"', '"name": "edited-in-place"'))
    os.utime(artifacts / "manifests", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert index.list().rows[0]["name"] == "edited-in-place"


def test_a_damaged_index_is_rebuilt(artifacts: Path, tmp_path: Path) -> None:
    make_manifest(artifacts, 0)
    db = tmp_path / "idx.sqlite3"
    db.write_bytes(b"this is not a database" * 100)
    index = RunIndex(db, RunStore(artifacts).manifests_dir)
    assert index.list().total == 1


def test_an_unwritable_index_location_falls_back_to_memory(artifacts: Path, tmp_path: Path) -> None:
    make_manifest(artifacts, 0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    index = RunIndex(blocker / "idx.sqlite3", RunStore(artifacts).manifests_dir)  # parent is a file
    assert index.list().total == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_provenir_serve_starts_on_loopback_and_never_logs_the_token(artifacts: Path) -> None:
    rid = make_manifest(artifacts, 0).run_id
    port = _free_port()
    env = {**os.environ, TOKEN_ENV: TOKEN}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provenir.cli.main",
            "serve",
            "--port",
            str(port),
            "--output-dir",
            str(artifacts),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise AssertionError("provenir serve did not start")
        assert httpx.get(f"{url}/runs").status_code == 401
        assert (
            httpx.get(f"{url}/runs/{rid}", headers={"Authorization": f"Bearer {TOKEN}"}).json()["run_id"]
            == rid
        )
        httpx.get(f"{url}/runs", headers={"Authorization": f"Bearer {TOKEN}x"})
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
    assert f"127.0.0.1:{port}" in output and "token required" in output
    assert "/runs" in output  # the access log is on...
    assert TOKEN not in output  # ...and never shows the token


def test_provenir_serve_refuses_a_public_bind_without_token(artifacts: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "provenir.cli.main",
            "serve",
            "--host",
            "0.0.0.0",
            "--output-dir",
            str(artifacts),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "refusing to bind 0.0.0.0" in proc.stderr
