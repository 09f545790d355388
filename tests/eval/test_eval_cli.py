"""``provenir eval``: a predictions file without a model, and a trained run with its adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.eval.harness import EvalResult
from provenir.testing.cli import run_cli


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_predictions_file_against_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write_jsonl(
        tmp_path / "data.jsonl",
        [
            {"prompt": "a", "response": "Paris"},
            {"prompt": "b", "response": "green grass"},
            {"prompt": "c", "response": "4"},
        ],
    )
    preds = _write_jsonl(
        tmp_path / "preds.jsonl", [{"prediction": "paris"}, "grass is green", {"output": "5"}]
    )
    assert (
        run_cli(
            ["eval", "--predictions", str(preds), "--data", str(data), "--metrics", "exact_match,token_f1"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "exact_match" in out and "wilson" in out and "bootstrap" in out
    result = EvalResult.load(tmp_path / "eval.json")
    assert result.metrics["exact_match"].scores == [1.0, 0.0, 0.0]
    assert result.predictions == ["paris", "grass is green", "5"]

    # Gate against a better baseline: one line, exit code 2.
    better = _write_jsonl(tmp_path / "better.jsonl", ["paris", "green grass", "4"])
    assert (
        run_cli(
            ["eval", "--predictions", str(better), "--data", str(data), "--out", str(tmp_path / "base.json")]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        run_cli(
            [
                "eval",
                "--predictions",
                str(preds),
                "--data",
                str(data),
                "--baseline",
                str(tmp_path / "base.json"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: regression gate tripped: ") and err.count("\n") == 1
    assert "exact_match dropped 0.6667 (1.0000 -> 0.3333" in err

    # A passing gate (better than its baseline) says what the set could not have detected, per metric.
    worse = tmp_path / "worse.json"
    assert run_cli(["eval", "--predictions", str(preds), "--data", str(data), "--out", str(worse)]) == 0
    capsys.readouterr()
    assert run_cli(["eval", "--predictions", str(better), "--data", str(data), "--baseline", str(worse)]) == 0
    out = capsys.readouterr().out
    assert "regression gate passed (" in out, out
    for name in result.metrics:
        assert f"  {name}: this set (3 items) cannot detect a drop smaller than" in out


def test_mismatched_lengths_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write_jsonl(tmp_path / "data.jsonl", [{"prompt": "a", "response": "x"}])
    preds = _write_jsonl(tmp_path / "preds.jsonl", ["x", "y"])
    assert run_cli(["eval", "--predictions", str(preds), "--data", str(data)]) == 2
    assert "2 predictions but" in capsys.readouterr().err


@pytest.mark.slow
def test_trained_run_is_evaluated_and_attached_to_the_manifest(
    tiny_model_path: Path, artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from provenir.core.config import RunConfig
    from provenir.train.runner import train

    config = RunConfig.from_dict(
        {
            "name": "eval-cli",
            "output_dir": str(artifacts),
            "max_steps": 1,
            "batch_size": 4,
            "peft": {"rank": 4, "alpha": 8},
            "data": {"max_samples": 16, "eval_split": 0.25},
        }
    )
    manifest = train(config)
    mpath = artifacts / "manifests" / f"{manifest.run_id}.json"
    old_hash = manifest.manifest_hash
    assert run_cli(["eval", str(mpath), "--max-new-tokens", "4"]) == 0
    assert "exact_match" in capsys.readouterr().out

    eval_path = RunStore(artifacts).run_dir(manifest.run_id) / "eval.json"
    result = EvalResult.load(eval_path)
    assert result.n == 4 and len(result.predictions or []) == 4
    after, raw = RunManifest.load_with_text(mpath)
    assert after.eval == result.summary()
    assert after.manifest_hash != old_hash  # re-sealed because its content changed
    assert "eval.json" in after.outputs
    after.verify(raw=raw, run_directory=RunStore(artifacts).run_dir(manifest.run_id))


def test_continuous_metrics_get_a_bca_interval_on_request(tmp_path: Path) -> None:
    from provenir.eval.bootstrap import bca_mean_ci

    rows = [{"prompt": str(i), "response": f"the answer is {i} and {i + 1}"} for i in range(30)]
    data = _write_jsonl(tmp_path / "data.jsonl", rows)
    preds = _write_jsonl(tmp_path / "preds.jsonl", [f"answer {i} or {i * 7}" for i in range(30)])
    args = ["eval", "--predictions", str(preds), "--data", str(data), "--metrics", "exact_match,token_f1"]
    assert run_cli([*args, "--interval", "bca", "--out", str(tmp_path / "bca.json")]) == 0
    assert run_cli([*args, "--out", str(tmp_path / "pct.json")]) == 0
    bca, pct = EvalResult.load(tmp_path / "bca.json"), EvalResult.load(tmp_path / "pct.json")
    f1 = bca.metrics["token_f1"]
    assert f1.interval == "bca" and pct.metrics["token_f1"].interval == "bootstrap"
    assert f1.scores is not None
    assert (f1.ci_lower, f1.ci_upper) == bca_mean_ci(f1.scores, confidence=0.95, n_resamples=1000, seed=0)
    assert (f1.ci_lower, f1.ci_upper) != (pct.metrics["token_f1"].ci_lower, pct.metrics["token_f1"].ci_upper)
    # Binary metrics keep Wilson's interval either way.
    assert bca.metrics["exact_match"].interval == pct.metrics["exact_match"].interval == "wilson"
    assert run_cli([*args, "--interval", "normal"]) == 2
