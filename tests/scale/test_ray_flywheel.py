"""A flywheel round whose model paraphrases and judge run on Ray actors writes the local run's files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from provenir.core.hashing import sha256_file
from provenir.flywheel import DataFlywheel, FlywheelConfig
from provenir.testing.cli import run_cli

pytestmark = pytest.mark.usefixtures("ray_cluster")

ROWS = [
    {"prompt": "What is the capital of Canada?", "response": "The capital of Canada is Ottawa."},
    {"prompt": "What is 18 plus 6?", "response": "24"},
    {"prompt": "What is the opposite of hot?", "response": "The opposite of hot is cold."},
    {"prompt": "Name a primary color.", "response": "Red is a primary color."},
]
PREDICTIONS = ["I do not know.", "25", "Warm.", "Red is a primary color."]  # three failures
OUTPUTS = ["failures.jsonl", "candidates.jsonl", "accepted.jsonl", "rejected.jsonl", "augmented.jsonl"]


def _config(tmp_path: Path, out: str, executor: str, model: Path) -> dict[str, Any]:
    data, preds = tmp_path / "data.jsonl", tmp_path / "preds.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    preds.write_text("".join(json.dumps({"prediction": p}) + "\n" for p in PREDICTIONS), encoding="utf-8")
    return {
        "name": "fw",
        "output_dir": str(tmp_path / out),
        "mining": {"eval_data": str(data), "predictions": str(preds), "threshold": 0.5},
        # Three failures in batches of two: two paraphrasing actors, each loading the model once.
        "generation": {
            "generators": ["rules", "model"],
            "variants_per_failure": 2,
            "model": {
                "model_name_or_path": str(model),
                "device": "cpu",
                "max_new_tokens": 8,
                "batch_size": 2,
            },
        },
        "filter": {"judge": {"name": "reward", "reward": "token_f1"}, "min_judge_score": 1.0, "ngram": 1},
        "executor": {"executor": executor, "ray": {"num_workers": 2}},
    }


def _state(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "flywheel_state.json").read_text(encoding="utf-8"))["stages"]


def _started_hashes(out: Path) -> list[str]:
    lines = (out / "audit" / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    return [e["fields"]["config_sha256"] for e in events if e["event"] == "flywheel_started"]


def test_flywheel_on_ray_equals_local_and_resumes_across_executors(
    tmp_path: Path, tiny_model_path: Path, capsys
) -> None:
    local_cfg = _config(tmp_path, "local", "local", tiny_model_path)
    local = DataFlywheel(FlywheelConfig.from_dict(local_cfg)).run(progress=False)
    remote = DataFlywheel(FlywheelConfig.from_dict(_config(tmp_path, "ray", "ray", tiny_model_path))).run(
        progress=False
    )

    assert {n: sha256_file(remote.folder / n) for n in OUTPUTS} == {
        n: sha256_file(local.folder / n) for n in OUTPUTS
    }
    assert remote.counts == local.counts
    assert local.counts["generate"]["per_generator"].get("model"), "the model generated no variant"
    assert local.counts["filter"]["accepted"] > 0

    # Where it ran is recorded on the stages that ran there, and only for a non-local run.
    local_state, remote_state = _state(local.folder), _state(remote.folder)
    assert not any("executor" in rec for rec in local_state.values())
    assert sorted(n for n, rec in remote_state.items() if "executor" in rec) == ["filter", "generate"]
    record = remote_state["generate"]["executor"]
    assert record["executor"] == "ray" and record["workers"] == 2 and record["cluster"]["cpus"] == 2.0
    assert {n: r["fingerprint"] for n, r in remote_state.items()} == {
        n: r["fingerprint"] for n, r in local_state.items()
    }
    local_summary = json.loads(local.summary_path.read_text(encoding="utf-8"))
    remote_summary = json.loads(remote.summary_path.read_text(encoding="utf-8"))
    assert "executor" not in local_summary and "executor" not in local_summary["config"]
    assert sorted(remote_summary["executor"]) == ["filter", "generate"]
    assert _started_hashes(tmp_path / "ray") == _started_hashes(tmp_path / "local")

    # Switching the executor (here on the command line) resumes the local folder: nothing re-runs.
    config_file = tmp_path / "flywheel.yaml"
    config_file.write_text(yaml.safe_dump(local_cfg), encoding="utf-8")
    capsys.readouterr()
    assert run_cli(["flywheel", str(config_file), "--executor", "ray", "--ray-workers", "2", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["stages_run"] == [] and body["augmented_sha256"] == local.augmented_sha256
