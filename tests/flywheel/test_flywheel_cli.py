"""``provenir flywheel``: runs the example config; bad input is one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from flywheel_assets import flywheel_dict

from provenir.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_offline_example_runs_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the example names its predictions file relative to the repo root
    args = ["flywheel", "examples/flywheel_offline.yaml", "--set", f"output_dir={tmp_path}", "--no-progress"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "flywheel/flywheel-offline/summary.json").read_text())
    assert summary["stages"]["augment"]["counts"]["variants"] > 0
    assert summary["output"]["sha256"] in out
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and out.count("reused") == 4


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"bogus": 1}, "bogus: unknown key"),
        ({"mining": {"eval_data": "x.jsonl"}}, "set exactly one of eval_result"),
        ({"mining.threshold": "high"}, "mining.threshold: must be a number"),
        ({"mining.metric": "rouge_l"}, "metric 'rouge_l' is not in the evaluation result"),
        ({"mining.eval_result": "missing.json"}, "mining.eval_result: file not found"),
        ({"generation.generators": ["magic"]}, "generation.generators.0: must be one of"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path,
    scored: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    change: dict[str, Any],
    fragment: str,
) -> None:
    data = flywheel_dict(tmp_path, scored)
    for key, value in change.items():
        node, *path = key.split(".")
        if path:
            data.setdefault(node, {})[path[0]] = value
        else:
            data[node] = value
    cfg = tmp_path / "fw.yaml"
    cfg.write_text(yaml.safe_dump(data))
    code, _, err = run_cli(["flywheel", str(cfg), "--no-progress"], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_missing_config_and_bad_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["flywheel", str(tmp_path / "none.yaml")], capsys)
    assert code == 2 and err.startswith("error: config file not found")
    cfg = tmp_path / "fw.yaml"
    cfg.write_text("mining: {eval_data: a, predictions: b}\n")
    code, _, err = run_cli(["flywheel", str(cfg), "--set", "mining.threshold"], capsys)
    assert code == 2 and "expected key.path=value" in err


def test_offline_example_filter_removes_the_near_duplicates_it_generates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from itertools import combinations

    from provenir.flywheel.config import FlywheelConfig
    from provenir.flywheel.quality import jaccard, ngrams

    monkeypatch.chdir(REPO)
    config = FlywheelConfig.from_yaml(REPO / "examples/flywheel_offline.yaml")
    args = ["flywheel", "examples/flywheel_offline.yaml", "--set", f"output_dir={tmp_path}", "--no-progress"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    folder = tmp_path / "flywheel/flywheel-offline"
    rejected = [json.loads(line) for line in (folder / "rejected.jsonl").read_text().splitlines()]
    accepted = [json.loads(line) for line in (folder / "accepted.jsonl").read_text().splitlines()]
    assert sum(r["reason"] == "near_duplicate" for r in rejected) > 0
    assert accepted
    # What is kept for one failed item: its original and its variants, no two of them near-duplicates.
    kept: dict[int, list[str]] = {}
    for a in accepted:
        kept.setdefault(a["failure_index"], [a["original"]]).append(a["text"])
    n, limit = config.filter.ngram, config.filter.max_similarity
    for texts in kept.values():
        for x, y in combinations(texts, 2):
            assert jaccard(ngrams(x, n), ngrams(y, n)) < limit, (x, y)
