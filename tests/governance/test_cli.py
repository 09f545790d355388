"""CLI: provenir audit / audit verify / audit repair, scan --mask, model-card (one-line errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from provenir.cli.governance_commands import register
from provenir.core.config import RunConfig
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.governance.audit import AuditLogger

RUN = "123e4567-e89b-42d3-a456-426614174000"


@pytest.fixture()
def app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:  # keeps sub-commands named even when only a few are registered
        pass

    register(app)
    return app


def test_audit_lists_filters_pages_and_verifies(app: typer.Typer, tmp_path: Path) -> None:
    audit = AuditLogger(tmp_path / "audit")
    for i in range(5):
        audit.log("step", actor="ci", run_id=RUN if i % 2 else None, i=i)
    runner = CliRunner()
    res = runner.invoke(app, ["audit", "--output-dir", str(tmp_path), "--limit", "2", "--json"])
    assert res.exit_code == 0, res.output
    page = json.loads(res.stdout)
    assert [r["seq"] for r in page["records"]] == [5, 4] and page["next_cursor"] == 2
    res = runner.invoke(app, ["audit", "--output-dir", str(tmp_path), "--run-id", RUN, "--oldest-first"])
    assert res.exit_code == 0 and [ln.split()[0] for ln in res.stdout.splitlines()] == ["2", "4"]
    res = runner.invoke(app, ["audit", "verify", "--output-dir", str(tmp_path)])
    assert res.exit_code == 0 and "ok: 5 records" in res.stdout
    res = runner.invoke(app, ["audit", "--output-dir", str(tmp_path), "verify"])  # before the sub-command
    assert res.exit_code == 0 and "ok: 5 records" in res.stdout
    # The deprecated --dir (the audit folder itself) still works.
    res = runner.invoke(app, ["audit", "verify", "--dir", str(tmp_path / "audit")])
    assert res.exit_code == 0 and "ok: 5 records" in res.stdout


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from provenir.cli.main import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tampered_or_torn_log_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("provenir.cli.train_commands")  # the full CLI is assembled from every module
    audit = AuditLogger(RunStore(tmp_path).audit_dir)
    for i in range(3):
        audit.log("step", i=i)
    log = RunStore(tmp_path).audit_dir / "audit.jsonl"
    log.write_bytes(log.read_bytes() + b'{"torn')
    code, _, err = _main(["audit", "verify", "--output-dir", str(tmp_path)], capsys)
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: ") and "torn" in err
    code, out, _ = _main(["audit", "repair", "--output-dir", str(tmp_path)], capsys)
    assert code == 0 and "removed a torn last line (6 bytes" in out
    code, out, _ = _main(["audit", "verify", "--output-dir", str(tmp_path)], capsys)
    assert code == 0 and "ok: 4 records" in out
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join([lines[1], lines[0], *lines[2:]]))
    code, _, err = _main(["audit", "verify", "--output-dir", str(tmp_path)], capsys)
    assert code == 2 and "error:" in err


@pytest.mark.parametrize("args", [["audit"], ["audit", "verify"], ["audit", "repair"]])
def test_a_folder_without_an_audit_log_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    pytest.importorskip("provenir.cli.train_commands")
    code, out, err = _main([*args, "--output-dir", str(tmp_path)], capsys)
    assert code == 2 and out == "", out
    assert err.strip() == (
        f"error: no audit log in {tmp_path / 'audit'} (audit.jsonl not found): nothing was recorded there; "
        "point --output-dir (or $PROVENIR_OUTPUT_DIR) at the artifacts folder that holds your runs"
    )
    assert not (tmp_path / "audit").exists()  # looking did not create one


def test_scan_and_mask(app: typer.Typer, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    rows = [
        {"prompt": "mail a@b.com", "response": "key AKIAIOSFODNN7EXAMPLE", "n": 1},
        {"prompt": "hi", "n": 2},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runner = CliRunner()
    masked = tmp_path / "masked.jsonl"
    res = runner.invoke(
        app, ["scan", str(data), "--mask", str(masked), "--json", "--audit-dir", str(tmp_path / "audit")]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["pii"]["counts"]["EMAIL"] == 1 and summary["secrets"]["counts"] == {"AWS Access Key": 1}
    assert [json.loads(x) for x in masked.read_text().splitlines()] == [
        {"prompt": "mail <EMAIL_1>", "response": "key <SECRET_1>", "n": 1},
        {"prompt": "hi", "n": 2},
    ]
    logged = AuditLogger(tmp_path / "audit").query().records[0]
    assert logged.event == "dataset_scanned" and logged.fields["secret_counts"] == {"AWS Access Key": 1}
    assert "AKIAIOSFODNN7EXAMPLE" not in (tmp_path / "audit" / "audit.jsonl").read_text()
    res = runner.invoke(app, ["scan", str(tmp_path / "missing.jsonl")])
    assert res.exit_code != 0


def test_model_card_command(app: typer.Typer, tmp_path: Path) -> None:
    cfg = RunConfig(name="card-run", backend="stub")
    m = RunManifest(
        name="card-run", backend="stub", algorithm="sft", config_hash=cfg.config_hash(),
        dataset_hash="b" * 64,
        seed=1, config=cfg.model_dump(mode="json"), status="completed",
    ).seal()  # fmt: skip
    artifacts = tmp_path / "artifacts"
    mpath = m.save(RunStore(artifacts).manifest_path(m.run_id))
    run_folder = artifacts / "runs" / m.run_id
    run_folder.mkdir(parents=True)
    (run_folder / "eval.json").write_text(
        json.dumps({"metrics": {"token_f1": {"mean": 0.7, "ci_lower": 0.6, "ci_upper": 0.8, "n": 200}}})
    )
    runner = CliRunner()
    res = runner.invoke(app, ["model-card", "--manifest", str(mpath)])
    assert res.exit_code == 0, res.output
    card = (run_folder / "MODEL_CARD.md").read_text()
    assert "| token_f1 | 0.7000 | [0.6000, 0.8000] | 200 |" in card
    assert AuditLogger(artifacts / "audit").query().records[0].event == "model_card_generated"
    res = runner.invoke(app, ["model-card", "--manifest", str(mpath), "--out", str(tmp_path / "x.txt")])
    assert res.exit_code != 0 and "invalid model card file name" in str(res.exception)
    # A run id prefix (or `latest`) is looked up in --output-dir.
    out = tmp_path / "by-id.md"
    for ref in (m.run_id[:8], "latest"):
        res = runner.invoke(
            app, ["model-card", "--manifest", ref, "--output-dir", str(artifacts), "--out", str(out)]
        )
        assert res.exit_code == 0, res.output
        assert out.read_text() == card
