"""An RLAIF iteration and ``provenir eval`` on Ray actors write the local run's files, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenir.core.hashing import sha256_file
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.rlaif import RLAIFConfig, RLAIFPipeline
from provenir.testing.cli import run_cli

pytestmark = pytest.mark.usefixtures("ray_cluster")


def _config(out: Path, executor: str) -> RLAIFConfig:
    return RLAIFConfig.from_dict(
        {
            "name": "t",
            "output_dir": str(out),
            "n_iterations": 1,
            "prompts_path": "builtin:prompts-sample",
            "eval_split": 0.25,
            # 30 prompts in batches of 8: four batches, spread over two actors.
            "generation": {"num_variants": 2, "max_new_tokens": 8, "batch_size": 8},
            "judge": {"name": "reward", "reward": "token_f1", "cache": False},
            "pairs": {"min_confidence": 0.0, "max_pairs_per_prompt": 1},
            "gate": {"tolerance": 1.0, "metrics": ["token_f1"]},
            "executor": {"executor": executor, "ray": {"num_workers": 2}},
            "dpo": {
                "max_steps": 1,
                "batch_size": 4,
                "gradient_checkpointing": False,
                "data": {"template": "raw_completion"},
                "peft": {"rank": 4, "alpha": 8},
            },
        }
    )


def _files(folder: Path) -> dict[str, str]:
    it = folder / "iter-1"
    return {name: sha256_file(it / name) for name in ["candidates.jsonl", "judgments.jsonl", "pairs.jsonl"]}


def _eval(path: Path) -> dict[str, Any]:
    """eval.json without its creation time (the only field two evaluations may not share)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("created_at")
    return data


def test_rlaif_iteration_and_eval_on_ray_equal_local(tmp_path: Path, tiny_model_path: Path, capsys) -> None:
    local = RLAIFPipeline(_config(tmp_path / "local", "local"), progress=False).run()
    remote = RLAIFPipeline(_config(tmp_path / "ray", "ray"), progress=False).run()
    assert _files(remote.folder) == _files(local.folder)
    assert _eval(remote.folder / "baseline_eval.json") == _eval(local.folder / "baseline_eval.json")
    (it_local,), (it_remote,) = local.iterations, remote.iterations
    assert it_local.pairs > 0 and it_remote.pairs == it_local.pairs
    assert it_remote.metrics == it_local.metrics

    def stored(result: Any) -> tuple[RunManifest, Path]:
        store = RunStore(result.folder.parents[1])
        run_id = result.iterations[0].run_id
        return RunManifest.load(store.manifest_path(run_id)), store.run_dir(run_id)

    (m_local, dir_local), (m_remote, dir_remote) = stored(local), stored(remote)
    assert m_remote.adapter_hash == m_local.adapter_hash  # trained on the same pairs
    assert "executor" not in m_local.extra["rlaif"]  # a local run records what it always did
    record = m_remote.extra["rlaif"]["executor"]["generate"]
    assert record["executor"] == "ray" and record["cluster"]["cpus"] == 2.0
    assert (
        json.loads((dir_remote / "eval.json").read_text())["metrics"]
        == json.loads((dir_local / "eval.json").read_text())["metrics"]
    )

    # provenir eval RUN on Ray actors: the same eval.json as a local evaluation of the same run.
    run = str(RunStore(remote.folder.parents[1]).manifest_path(it_remote.run_id))
    data = ["--data", "builtin:prompts-sample"]  # an RLAIF iteration trains on pairs and holds out nothing
    assert run_cli(["eval", run, *data, "--json", "--max-new-tokens", "8"]) == 0
    local_eval = _eval(dir_remote / "eval.json")
    assert run_cli(["eval", run, *data, "--json", "--max-new-tokens", "8", "--executor", "ray"]) == 0
    capsys.readouterr()
    assert _eval(dir_remote / "eval.json") == local_eval and local_eval["predictions"]
    assert RunManifest.load(run).extra["executor"]["eval"]["executor"] == "ray"
