"""provenir compare: config diff, identity hashes, metric deltas with the gate's paired tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from reporting_support import stub_run, write_eval
from rich.console import Console

from provenir.core.store import RunStore
from provenir.eval.harness import EvalResult
from provenir.eval.regression import mcnemar_test
from provenir.reporting.artifacts import load_run
from provenir.reporting.compare import compare_runs, config_diff, flatten


def test_flatten_and_diff() -> None:
    assert flatten({"a": 1, "p": {"r": 2, "t": ["q"]}, "e": {}}) == {"a": 1, "p.r": 2, "p.t": ["q"], "e": {}}
    changes = config_diff(
        {"a": 1, "p": {"r": 2}, "output_dir": "x"}, {"a": 1, "p": {"r": 3, "n": 1}, "output_dir": "y"}
    )
    assert [(c.key, c.a, c.b, c.present_a) for c in changes] == [("p.n", None, 1, False), ("p.r", 2, 3, True)]


def test_compare_two_runs_with_paired_significance(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    a = stub_run(out)
    b = stub_run(out, seed=9, peft={"rank": 32})
    refs = [f"answer {i}" for i in range(40)]
    write_eval(out, a.run_id, refs, refs)
    write_eval(out, b.run_id, refs[:25] + ["nope"] * 15, refs)

    result = compare_runs(load_run(a.run_id, out), load_run(b.run_id, out))
    assert [c.key for c in result.config_changes] == ["peft.rank", "seed"]
    assert result.identity["dataset_hash"][0] == result.identity["dataset_hash"][1]
    assert result.identity["config_hash"][0] != result.identity["config_hash"][1]
    assert result.identity["adapter_hash"][0] != result.identity["adapter_hash"][1]
    assert result.training_metrics == {"train_rows": (a.metrics["train_rows"], b.metrics["train_rows"])}

    gate = result.gate
    assert gate is not None and not gate.passed and gate.paired
    em = gate.comparisons["exact_match"]
    assert em.delta == pytest.approx(25 / 40 - 1.0)
    assert em.test == "mcnemar" and em.verdict == "regression"
    new = EvalResult.load(RunStore(out).run_dir(b.run_id) / "eval.json").metrics["exact_match"].scores
    base = EvalResult.load(RunStore(out).run_dir(a.run_id) / "eval.json").metrics["exact_match"].scores
    assert em.p_value == pytest.approx(mcnemar_test(new, base))
    assert gate.comparisons["token_f1"].test == "paired_bootstrap"

    data = result.to_dict()
    assert data["identity"]["dataset_hash"]["same"] is True
    assert data["gate"]["tripped"] == ["exact_match", "token_f1"]

    console = Console(width=160, record=True, color_system=None)
    console.print(result.renderable())
    text = console.export_text()
    assert "peft.rank" in text and "mcnemar" in text and "regression gate tripped" in text


def test_compare_without_evaluations_says_so(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    a, b = stub_run(out), stub_run(out)
    result = compare_runs(load_run(a.run_id, out), load_run(b.run_id, out))
    assert result.same_config and result.gate is None
    assert result.identity["adapter_hash"][0] == result.identity["adapter_hash"][1]  # same inputs, same bytes
    assert any("no evaluation for run A and B" in n for n in result.notes)
