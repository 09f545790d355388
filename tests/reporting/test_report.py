"""The HTML run report: self-contained, complete, faithful to the artifacts, and safe to open."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from reporting_support import stub_run, write_eval

from provenir.core.errors import ManifestError
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.eval.harness import EvalResult
from provenir.reporting.artifacts import load_run
from provenir.reporting.plots import series
from provenir.reporting.report import render_report, write_report

pytestmark = pytest.mark.slow

_IMG = re.compile(r'<img\b[^>]*\bsrc="([^"]*)"[^>]*>')
_URL_ATTR = re.compile(r"""\b(?:src|href|action|srcset|poster|data)\s*=\s*["']?\s*([^"'\s>]*)""", re.I)


def images(html: str) -> list[tuple[str, bytes]]:
    """``(mime, decoded bytes)`` of every <img> data URI (fails on any other kind of src)."""
    out = []
    for src in _IMG.findall(html):
        match = re.fullmatch(r"data:(image/[a-z+]+);base64,([A-Za-z0-9+/=]+)", src)
        assert match, f"image source is not an inline data URI: {src[:80]}"
        out.append((match.group(1), base64.b64decode(match.group(2), validate=True)))
    return out


def assert_no_fetches(html: str) -> None:
    """Nothing in the page, or inside its SVG images, points outside the file."""
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    for tag in re.findall(r"<[A-Za-z][^>]*>", html):  # real tags only: escaped text has no "<"
        for value in _URL_ATTR.findall(tag):
            assert value.startswith(("data:image/", "#")), tag[:120]
    for mime, data in images(html):
        assert mime == "image/svg+xml"
        root = ET.fromstring(data)  # well-formed XML
        for el in root.iter():
            for attr, value in el.attrib.items():
                if attr.endswith("href"):
                    assert value.startswith("#"), f"SVG references {value}"
        assert b"<script" not in data and b"<foreignObject" not in data


def test_report_of_a_real_run_is_one_self_contained_file(
    real_run: tuple[Path, RunManifest], tmp_path: Path
) -> None:
    out_dir, manifest = real_run
    out = write_report(manifest.run_id, tmp_path / "report.html", output_dir=out_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # one file, no side assets
    html = out.read_text(encoding="utf-8")
    assert_no_fetches(html)
    assert "default-src 'none'" in html  # CSP: even a missed escape could not fetch or run anything

    # plots: loss, learning rate, grad norm, eval-per-checkpoint curve and the final metric chart
    alts = re.findall(r'<img\b[^>]*\balt="([^"]*)"', html)
    assert {
        "training loss",
        "learning rate",
        "evaluation metrics per checkpoint with confidence bands",
    } <= set(alts)
    assert "final metrics with confidence intervals" in alts
    assert len(images(html)) >= 5

    # hashes and verification
    for digest in (
        manifest.manifest_hash,
        manifest.config_hash,
        manifest.dataset_hash,
        manifest.adapter_hash,
    ):
        assert digest and digest in html
    for rel, digest in manifest.outputs.items():
        assert rel in html and digest in html
    assert "verified" in html and "FAILED" not in html

    # the final metric table shows eval.json's numbers and intervals
    result = EvalResult.load(RunStore(out_dir).run_dir(manifest.run_id) / "eval.json")
    for name, m in result.metrics.items():
        row = re.search(
            rf"<tr><td>{name}</td><td class=\"num\">([^<]*)</td><td class=\"num\">([^<]*)</td>", html
        )
        assert row, name
        assert row.group(1) == f"{m.mean:.4f}"
        assert row.group(2) == f"[{m.ci_lower:.4f}, {m.ci_upper:.4f}]"
    assert "Source: eval.json in the run folder" in html


def test_curves_come_from_the_train_log(real_run: tuple[Path, RunManifest]) -> None:
    out_dir, manifest = real_run
    run = load_run(manifest.run_id, out_dir)
    steps, losses = series(run.train_log, "loss")
    assert steps == [1.0, 2.0, 3.0, 4.0]
    assert losses[0] == pytest.approx(manifest.metrics["first_loss"])
    assert losses[-1] == pytest.approx(manifest.metrics["final_loss"])
    eval_steps, _ = series(run.train_log, "eval/exact_match")
    assert eval_steps == [2.0, 4.0]  # the EvalCallback ran every 2 steps
    _, lows = series(run.train_log, "eval/token_f1_ci_lower")
    _, means = series(run.train_log, "eval/token_f1")
    assert all(lo <= m for lo, m in zip(lows, means, strict=True))


def test_same_artifacts_give_the_same_report_bytes(real_run: tuple[Path, RunManifest]) -> None:
    out_dir, manifest = real_run
    assert render_report(manifest.run_id, output_dir=out_dir) == render_report(
        RunStore(out_dir).manifest_path(manifest.run_id)
    )


def test_user_controlled_strings_are_escaped(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    payload = "<script>alert(1)</script>"
    attr_payload = '"><img src=x onerror=alert(2)>'
    m = stub_run(
        out,
        model_name_or_path=payload,
        peft={"target_modules": [attr_payload]},
        data={"rejected_field": "</pre><script>alert(3)</script>"},
    )
    # The name pattern keeps such names out of configs, but a manifest is just a file: write one
    # with a hostile name and re-seal it, as anyone with write access could.
    hostile = RunManifest.load(RunStore(out).manifest_path(m.run_id))
    hostile.name = "<script>alert('name')</script>"
    hostile.seal().save(RunStore(out).manifest_path(m.run_id))
    child = stub_run(out, seed=1)
    child_manifest = RunManifest.load(RunStore(out).manifest_path(child.run_id))
    child_manifest.provenance, child_manifest.relation = [m.run_id], "<b>rlaif</b>"
    child_manifest.seal().save(RunStore(out).manifest_path(child.run_id))

    html = render_report(m.run_id, output_dir=out, baseline=child.run_id)
    assert_no_fetches(html)  # includes: no <script anywhere
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<b>rlaif</b>" not in html and "&lt;b&gt;rlaif&lt;/b&gt;" in html
    # the lineage drawing carries the names too, escaped as XML
    svgs = [data.decode() for _, data in images(html)]
    lineage = [s for s in svgs if "this run" in s]
    assert lineage and "&lt;script&gt;" in lineage[0] and "&lt;b&gt;rlaif" in lineage[0]


def test_tampered_run_still_renders_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    m = stub_run(out)
    adapter = RunStore(out).run_dir(m.run_id) / "adapter" / "stub_adapter.bin"
    adapter.write_bytes(adapter.read_bytes()[:-1] + b"\0")
    html = render_report(m.run_id, output_dir=out)
    assert "FAILED" in html
    assert "output adapter/stub_adapter.bin changed (hash differs)" in html
    assert "Treat every number below as untrusted" in html


def test_gate_verdict_against_a_baseline(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    refs = [f"answer {i}" for i in range(30)]
    base, new = stub_run(out), stub_run(out, seed=7)
    write_eval(out, base.run_id, refs, refs)
    write_eval(out, new.run_id, refs[:10] + ["wrong"] * 20, refs)
    html = render_report(new.run_id, output_dir=out, baseline=base.run_id)
    assert "TRIPPED" in html
    assert "regression gate tripped: exact_match dropped" in html
    assert "mcnemar" in html and "paired_bootstrap" in html
    assert "regression (trips the gate)" in html
    # the reverse direction is an improvement and passes
    html_up = render_report(base.run_id, output_dir=out, baseline=new.run_id)
    assert "PASSED" in html_up and "improvement" in html_up
    # a baseline without an evaluation is reported, not crashed on
    third = stub_run(out, seed=8)
    html_none = render_report(new.run_id, output_dir=out, baseline=third.run_id)
    assert "not compared" in html_none and "no evaluation for the baseline" in html_none


def test_scan_results_appear_in_the_data_section(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    rows = [{"prompt": f"q{i}", "response": f"a{i}"} for i in range(6)]
    rows[2]["response"] = "write to jane.doe@example.com"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "artifacts"
    m = stub_run(out, data={"path": str(data), "scan": "report"})
    assert m.scans is not None and m.scans["has_pii"]
    html = render_report(m.run_id, output_dir=out)
    assert "PII found: yes" in html and "secrets found: no" in html and "6 rows scanned" in html
    assert '<tr><td>pii</td><td>EMAIL</td><td class="num">1</td></tr>' in html
    assert "CREDIT_CARD" not in html  # types with no finding are not listed


def test_unknown_run_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no run"):
        render_report("123e4567-e89b-42d3-a456-426614174000", output_dir=tmp_path)
    with pytest.raises(ManifestError, match="neither a manifest file nor a run id"):
        render_report("no/such/run", output_dir=tmp_path)
    # a server passes allow_path=False: an existing file path is then refused, not read
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    with pytest.raises(ManifestError, match="neither a manifest file nor a run id"):
        render_report(str(outside), output_dir=tmp_path, allow_path=False)
    with pytest.raises(ManifestError, match="manifest not found"):
        render_report(tmp_path / "missing.json", output_dir=tmp_path)


def test_cli_report_lineage_compare_and_errors(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    a, b = stub_run(out), stub_run(out, seed=3)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "provenir.cli.main", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    proc = cli("report", a.run_id[:8], "--out", "r.html", "--baseline", b.run_id)
    assert proc.returncode == 0, proc.stderr
    assert '<h2 id="regression-gate">' in (tmp_path / "r.html").read_text()
    proc = cli("lineage", a.run_id)
    assert proc.returncode == 0 and a.run_id[:8] in proc.stdout, proc.stderr
    proc = cli("compare", a.run_id, b.run_id, "--json")
    assert proc.returncode == 0, proc.stderr
    assert [c["key"] for c in json.loads(proc.stdout)["config_changes"]] == ["seed"]
    for args in (
        ("report", "123e4567-e89b-42d3-a456-426614174000"),
        ("lineage", "nope/../x"),
        ("compare", a.run_id, "missing.json"),
    ):
        proc = cli(*args)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        assert "Traceback" not in proc.stderr


def test_environment_section_shows_nested_records_as_dotted_rows(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    m = stub_run(out)
    html = render_report(m.run_id, output_dir=out)
    section = html[html.index('<h2 id="environment">') : html.index('<h2 id="config">')]
    cpu = m.environment["cpu"]
    assert f"<tr><th>cpu.logical_cpus</th><td>{cpu['logical_cpus']}</td></tr>" in section
    if cpu["flags"]:
        assert f"<tr><th>cpu.flags</th><td>{', '.join(cpu['flags'])}</td></tr>" in section
    assert "{" not in section  # no record printed as a Python dict
