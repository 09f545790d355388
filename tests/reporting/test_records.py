"""Every fact a model card and a report show equals the manifest's (or the evaluation record's)."""

from __future__ import annotations

import re
import shlex
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from reporting_support import stub_run

from provenir.core.hashing import sha256_path
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.eval.harness import EvalResult
from provenir.governance.model_card import ModelCardGenerator
from provenir.reporting.report import render_report

pytestmark = pytest.mark.slow

_SHA = r"[0-9a-f]{64}"


class _Sections(HTMLParser):
    """The report's table rows and text, by the id of the ``<h2>`` section they are in."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.section = "header"
        self.rows: dict[str, list[list[str]]] = {}
        self.text: dict[str, str] = {}
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2":
            self.section = dict(attrs).get("id") or ""
        elif tag == "tr":
            self.rows.setdefault(self.section, []).append([])
        elif tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None:
            self.rows[self.section][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        self.text[self.section] = self.text.get(self.section, "") + data

    def fields(self, section: str) -> dict[str, str]:
        """``{key: value}`` of a section's two-cell rows."""
        return {row[0]: row[1] for row in self.rows.get(section, []) if len(row) == 2}

    def sentence(self, section: str, prefix: str) -> str:
        """The text after ``prefix`` up to the end of its sentence, in one section."""
        text = " ".join(self.text[section].split())
        match = re.search(re.escape(prefix) + r" (.*?)\.(?: |$)", text)
        assert match, (prefix, text)
        return match.group(1)


def _card_parts(text: str) -> tuple[dict[str, Any], str]:
    _, front, body = text.split("---\n", 2)
    return yaml.safe_load(front), body


def _line(body: str, pattern: str) -> re.Match[str]:
    match = re.search(pattern, body, re.M)
    assert match, f"no line matching {pattern!r} in the card"
    return match


def _table_rows(body: str) -> dict[str, list[str]]:
    """Markdown table rows by their first cell."""
    rows = [line.strip("|").split(" | ") for line in body.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows}


def _cli(*args: str) -> int:
    from provenir.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0)


def test_card_and_report_state_the_manifest_and_eval_record(
    real_run: tuple[Path, RunManifest], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir, recorded = real_run
    store, run_id = RunStore(out_dir), recorded.run_id
    mfile = store.manifest_path(run_id)
    m = RunManifest.load(mfile)
    evaluation = EvalResult.load(store.run_dir(run_id) / "eval.json")
    inputs = m.inputs
    assert inputs is not None and inputs.model is not None and inputs.chat_template is not None
    assert inputs.eval_rows is not None
    # `provenir eval` recorded what it scored: the run's own stored eval rows, by hash and count.
    assert evaluation.extra["data"] == "run eval rows"
    assert evaluation.extra["data_sha256"] == inputs.eval_rows.sha256
    assert evaluation.extra["data_rows"] == inputs.eval_rows.count == evaluation.n

    monkeypatch.chdir(out_dir.parent)
    assert _cli("model-card", "--manifest", str(mfile), "--out", str(tmp_path / "card.md"), "--no-audit") == 0
    meta, body = _card_parts((tmp_path / "card.md").read_text())

    # -- the card's metadata
    assert meta["base_model"] == m.config["model_name_or_path"] == inputs.model.source
    (result,) = meta["model-index"][0]["results"]  # one evaluation, one dataset
    dataset = result["dataset"]
    assert dataset["args"] == {"sha256": inputs.eval_rows.sha256, "rows": inputs.eval_rows.count}
    assert dataset["name"] == f"eval rows of run {run_id[:8]} (held out from the training data)"
    training = (
        {m.dataset_hash, inputs.training_rows.sha256}
        | {p.uri for p in inputs.datasets}
        | {p.sha256 for p in inputs.datasets}
    )
    assert not training & {dataset["name"], dataset["type"], dataset["args"]["sha256"]}
    shown = {x["type"]: x for x in result["metrics"]}
    assert set(shown) == set(evaluation.metrics)
    for name, mr in evaluation.metrics.items():
        assert shown[name]["value"] == mr.mean
        assert shown[name]["args"] == {"ci_lower": mr.ci_lower, "ci_upper": mr.ci_upper, "n": mr.n}

    # -- the card's body: every metric with its interval, data and data hash
    table = _table_rows(body)
    for name, mr in evaluation.metrics.items():
        assert table[name] == [
            name,
            f"{mr.mean:.4f}",
            f"[{mr.ci_lower:.4f}, {mr.ci_upper:.4f}]",
            str(mr.n),
            dataset["name"],
            f"`{inputs.eval_rows.sha256}`",
        ]
    for key in ("seed", "max_steps", "batch_size", "learning_rate", "max_length", "precision"):
        assert table[key] == [key, str(m.config[key])]
    assert table["config_hash"] == ["config_hash", f"`{m.config_hash}`"]
    run_line = _line(body, r"Run `([^`]+)`, status \*\*(\w+)\*\*")
    assert run_line.groups() == (m.run_id, m.status)
    model = _line(body, rf"^- Base model: `([^`]+)` \((\w+)\), (\d+) files, digest `({_SHA})`$")
    assert model.groups() == (
        inputs.model.source,
        inputs.model.kind,
        str(len(inputs.model.files)),
        inputs.model.digest,
    )
    t = inputs.chat_template
    template = _line(
        body, rf"^- Chat template: `([^`]+)` \((\w+)(?:, version ([^)]+))?\), SHA-256 `({_SHA})`$"
    )
    assert template.groups() == (t.name, t.origin, t.version, t.sha256)
    for pin in inputs.datasets:
        source = _line(body, rf"^- Training source `{re.escape(pin.uri)}`: SHA-256 `({_SHA})`, (\d+) rows")
        assert source.groups() == (pin.sha256, str(pin.rows))
    for label, rows in (("Training rows", inputs.training_rows), ("Evaluation rows", inputs.eval_rows)):
        assert _line(body, rf"^- {label}: (\d+), SHA-256 `({_SHA})`").groups() == (
            str(rows.count),
            rows.sha256,
        )
    assert _line(body, rf"^- Dataset SHA-256: `({_SHA})`$").group(1) == m.dataset_hash
    assert _line(body, rf"^- Evaluation dataset SHA-256: `({_SHA})`$").group(1) == m.eval_dataset_hash
    assert _line(body, rf"^- Manifest hash: `({_SHA})` \(verified\)$").group(1) == m.manifest_hash
    assert _line(body, rf"^- Weights SHA-256: `({_SHA})`$").group(1) == m.adapter_hash
    assert _line(body, r"^- Started: (.+); finished: (.+)$").groups() == (m.timestamp, m.finished_at)
    command = shlex.split(_line(body, r"^- Reproduce: `(.+)`$").group(1))
    assert command[:2] == ["provenir", "reproduce"] and Path(command[2]).resolve() == mfile.resolve()

    # -- the report
    page = _Sections(render_report(run_id, output_dir=out_dir))
    assert m.run_id in page.text["header"] and m.status in page.text["header"]
    summary = page.fields("summary")
    assert summary["model"] == m.config["model_name_or_path"]
    assert (summary["algorithm"], summary["backend"], summary["seed"]) == (
        m.algorithm,
        m.backend,
        str(m.seed),
    )
    assert (summary["started"], summary["finished"]) == (m.timestamp, m.finished_at)
    assert summary["device"] == m.environment["device"]
    if m.git_sha:
        assert summary["git commit"].startswith(m.git_sha)
    assert page.fields("hashes") == {
        "manifest_hash": m.manifest_hash,
        "config_hash": m.config_hash,
        "dataset_hash": m.dataset_hash,
        "eval_dataset_hash": m.eval_dataset_hash,
        "adapter_hash": m.adapter_hash,
        "file": "sha256",  # the header of the output files' table
        **m.outputs,
    }
    shown_inputs = page.fields("inputs")
    assert {k: v for k, v in shown_inputs.items() if k.startswith("base model")} == {
        "base model source": inputs.model.source,
        "base model kind": inputs.model.kind,
        "base model revision": "none (builtin: no hub revision)",
        "base model digest": inputs.model.digest,
        "base model files": str(len(inputs.model.files)),
    }
    assert shown_inputs["chat template"] == t.name
    assert shown_inputs["chat template origin"] == f"{t.origin} (version {t.version})"
    assert shown_inputs["chat template sha256"] == t.sha256
    for label, rows in (("training rows", inputs.training_rows), ("eval rows", inputs.eval_rows)):
        assert shown_inputs[label] == str(rows.count)
        assert shown_inputs[f"{label} sha256"] == rows.sha256
        assert shown_inputs[f"{label} file"] == f"runs/{run_id}/{rows.path}"
    assert inputs.resumed_checkpoint is None
    assert shown_inputs["resumed checkpoint"] == "none (the run did not resume)"
    sources = [row for row in page.rows["inputs"] if len(row) == 7][1:]  # after the header row
    assert sources == [
        [
            p.role,
            p.uri,
            "—",
            "—",
            p.sha256,
            str(p.rows),
            "all (no mixture)" if p.rows_used is None else str(p.rows_used),
        ]
        for p in inputs.datasets
    ]
    data = page.fields("data")
    assert data["data path"] == m.data_path and data["dataset hash"] == m.dataset_hash
    assert data["training rows"] == str(inputs.training_rows.count)
    assert data["eval rows"] == str(inputs.eval_rows.count)
    assert data["eval dataset hash"] == m.eval_dataset_hash
    assert data["max samples"] == str(m.config["data"]["max_samples"])
    assert data["evaluated items"] == str(evaluation.n)
    evaluated = f"{dataset['name']}, {inputs.eval_rows.count} rows, SHA-256 {inputs.eval_rows.sha256}"
    assert data["evaluation data"] == evaluated
    assert page.sentence("final-metrics", "Computed on:") == evaluated
    final = {row[0]: row for row in page.rows["final-metrics"] if len(row) == 6}
    for name, mr in evaluation.metrics.items():
        assert final[name][1:5] == [
            f"{mr.mean:.4f}",
            f"[{mr.ci_lower:.4f}, {mr.ci_upper:.4f}]",
            mr.interval,
            str(mr.n),
        ]
    trained = {row[0]: row[1] for row in page.rows["training"] if len(row) == 2}
    for key, value in m.metrics.items():
        assert trained[key] == f"{value:.6g}"
    env = page.fields("environment")
    for key in ("python", "implementation", "platform", "machine", "device"):
        assert env[key] == str(m.environment[key])
    for name, version in m.environment["packages"].items():
        assert env[name] == (version or "not installed")


def test_an_evaluation_on_a_users_file_names_that_file(
    real_run: tuple[Path, RunManifest], tmp_path: Path
) -> None:
    """``provenir eval RUN --data FILE``: the card and report name FILE and its hash, not the run's data."""
    from provenir.train.evaluation import evaluate_run

    out_dir, recorded = real_run
    copy = shutil.copytree(out_dir, tmp_path / "artifacts")  # evaluating rewrites eval.json
    store, run_id = RunStore(copy), recorded.run_id
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text(
        '{"prompt": "Name a colour.", "response": "blue"}\n{"prompt": "2+2?", "response": "4"}\n'
    )
    result, _ = evaluate_run(store.manifest_path(run_id), data_path=str(heldout), max_new_tokens=2)
    assert result.extra["data_sha256"] == sha256_path(heldout) and result.extra["data_rows"] == 2

    meta, body = _card_parts(ModelCardGenerator().generate(store.manifest_path(run_id)).text)
    (entry,) = meta["model-index"][0]["results"]
    assert entry["dataset"] == {
        "name": str(heldout),
        "type": "provenir-eval",
        "args": {"sha256": sha256_path(heldout), "rows": 2},
    }
    assert (
        _line(body, r"^Computed on: (.+)\.$").group(1) == f"{heldout}, 2 rows, SHA-256 {sha256_path(heldout)}"
    )
    page = _Sections(render_report(run_id, output_dir=copy))
    assert page.fields("data")["evaluation data"] == f"{heldout}, 2 rows, SHA-256 {sha256_path(heldout)}"


def test_a_schema_1_manifest_says_what_it_does_not_record(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    run = stub_run(out)
    path = RunStore(out).manifest_path(run.run_id)
    old = RunManifest.load(path)
    old.schema_version, old.inputs = 1, None  # as manifests were written before inputs were pinned
    old.seal().save(path)

    page = _Sections(render_report(run.run_id, output_dir=out))
    assert page.sentence("inputs", "Inputs (model files, chat template, data sources, exact rows):") == (
        "not recorded in this manifest (schema 1)"
    )
    assert page.fields("data")["training rows"] == "not recorded in this manifest (schema 1)"
    assert page.fields("data")["eval rows"] == "not recorded in this manifest (schema 1)"
    card = ModelCardGenerator().generate(path).text
    assert "- Not recorded in this manifest (schema 1): no input was pinned." in card
    assert "- Reproduce: not possible: this manifest (schema 1) pins no inputs to replay against" in card
