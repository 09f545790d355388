"""RLAIF end to end on the tiny model with an offline judge: real generation, verdicts, DPO, eval, gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenir.core.errors import ConfigError, DataError
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.rlaif import RLAIFConfig, RLAIFPipeline, RLAIFResult

pytestmark = pytest.mark.slow


def rlaif_config(out: Path, **overrides: Any) -> RLAIFConfig:
    data: dict[str, Any] = {
        "name": "t",
        "output_dir": str(out),
        "n_iterations": 2,
        "prompts_path": "builtin:prompts-sample",
        "eval_split": 0.25,
        "generation": {"num_variants": 3, "max_new_tokens": 12},
        "judge": {"name": "reward", "reward": "token_f1"},
        "pairs": {"min_confidence": 0.05, "max_pairs_per_prompt": 1},
        "gate": {"tolerance": 0.5, "metrics": ["token_f1"]},
        "dpo": {
            "max_steps": 4,
            "batch_size": 4,
            "learning_rate": 2e-3,
            "gradient_checkpointing": False,
            "data": {"template": "raw_completion"},
            "peft": {"rank": 4, "alpha": 8},
        },
    }
    for key, value in overrides.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return RLAIFConfig.from_dict(data)


def jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def two_iterations(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path
) -> tuple[RLAIFResult, RLAIFConfig]:
    config = rlaif_config(tmp_path_factory.mktemp("rlaif"))
    return RLAIFPipeline(config, progress=False).run(), config


def test_variants_are_model_generations(two_iterations: tuple[RLAIFResult, RLAIFConfig]) -> None:
    result, _ = two_iterations
    for k in (1, 2):
        candidates = jsonl(result.folder / f"iter-{k}" / "candidates.jsonl")
        assert len(candidates) == 30  # 40 prompts minus the 25% held out
        assert all(len(c["variants"]) == 3 for c in candidates)
        # Sampled by the model, not the references copied over.
        assert sum(v.strip() != c["reference"] for c in candidates for v in c["variants"]) > len(candidates)
        assert len({v for c in candidates for v in c["variants"]}) > len(candidates)


def test_pairs_come_from_verdicts(two_iterations: tuple[RLAIFResult, RLAIFConfig]) -> None:
    result, _ = two_iterations
    it = result.folder / "iter-1"
    candidates, judgments, pairs = (
        jsonl(it / f) for f in ("candidates.jsonl", "judgments.jsonl", "pairs.jsonl")
    )
    assert pairs and result.iterations[0].pairs == len(pairs)
    for p in pairs:
        j = judgments[p["judgment"]]
        assert j["preferred"] in ("a", "b") and j["confidence"] >= 0.05
        c = candidates[j["candidate"]]
        winner, loser = (j["a"], j["b"]) if j["preferred"] == "a" else (j["b"], j["a"])
        assert (p["chosen"], p["rejected"]) == (c["variants"][winner], c["variants"][loser])
    assert len({p["prompt"] for p in pairs}) == len(pairs)  # max_pairs_per_prompt: 1


def test_dpo_trained_and_provenance_chains(two_iterations: tuple[RLAIFResult, RLAIFConfig]) -> None:
    from safetensors.torch import load_file

    result, config = two_iterations
    first, second = (it.run_id for it in result.iterations)
    m1, m2 = (RunManifest.load(RunStore(config.output_dir).manifest_path(r)) for r in (first, second))
    for m in (m1, m2):
        m.verify(run_directory=RunStore(config.output_dir).run_dir(m.run_id))
        assert m.algorithm == "dpo" and m.relation == "rlaif"
        rl = m.extra["rlaif"]
        for name in ("candidates", "judgments", "pairs"):
            from provenir.core.hashing import sha256_file

            assert sha256_file(rl[name]["path"]) == rl[name]["sha256"]
        assert "passed" in rl["gate"]
        assert m.eval is not None
    assert m1.provenance == [] and m2.provenance == [first]
    assert m2.config["init_adapter"] == str(RunStore(config.output_dir).run_dir(first) / "adapter")
    w1 = load_file(RunStore(config.output_dir).run_dir(first) / "adapter" / "adapter_model.safetensors")
    w2 = load_file(RunStore(config.output_dir).run_dir(second) / "adapter" / "adapter_model.safetensors")
    assert any(float(v.abs().sum()) > 0 for k, v in w1.items() if "lora_B" in k)
    assert any(not (w1[k] == w2[k]).all() for k in w1)  # iteration 2 moved the adapter further


def test_eval_on_held_out_prompts(two_iterations: tuple[RLAIFResult, RLAIFConfig]) -> None:
    from provenir.eval.harness import EvalResult, _item_key

    result, config = two_iterations
    generated = {c["prompt"] for c in jsonl(result.folder / "iter-1" / "candidates.jsonl")}
    held_out = RLAIFPipeline(config, progress=False).eval_rows
    assert len(held_out) == 10 and not ({r["prompt"] for r in held_out} & generated)
    ev = EvalResult.load(RunStore(config.output_dir).run_dir(result.iterations[0].run_id) / "eval.json")
    assert ev.metrics["token_f1"].n == 10
    assert ev.item_keys == [_item_key(r["prompt"], [r["reference"]]) for r in held_out]
    assert result.iterations[0].gate_passed is not None and result.iterations[0].gate_message


def test_rerun_resumes_without_redoing_stages(two_iterations: tuple[RLAIFResult, RLAIFConfig]) -> None:
    result, config = two_iterations
    manifests = set((Path(config.output_dir) / "manifests").glob("*.json"))
    again = RLAIFPipeline(config, progress=False).run()
    assert set((Path(config.output_dir) / "manifests").glob("*.json")) == manifests  # nothing retrained
    assert again.best_run_id == result.best_run_id


def test_gate_trip_stops_and_keeps_previous(tmp_path: Path, tiny_model_path: Path) -> None:
    # An absurd learning rate wrecks the policy; a zero tolerance gate must catch it.
    config = rlaif_config(
        tmp_path,
        gate={"tolerance": 0.0, "metrics": ["token_f1"]},
        dpo={
            "max_steps": 6,
            "batch_size": 4,
            "learning_rate": 5.0,
            "gradient_checkpointing": False,
            "data": {"template": "raw_completion"},
            "peft": {"rank": 4, "alpha": 8},
        },
    )
    result = RLAIFPipeline(config, progress=False).run()
    assert len(result.iterations) == 1
    assert result.iterations[0].gate_passed is False
    assert "regression gate tripped" in result.stopped_because
    assert result.best_run_id is None and result.best_adapter is None  # the base model stays the result
    assert not (result.folder / "iter-2").exists()
    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["iterations"][0]["gate_passed"] is False


def test_config_and_data_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dpo.algorithm must be dpo"):
        RLAIFConfig.from_dict({"dpo": {"algorithm": "sft"}})
    with pytest.raises(ConfigError, match="gate.metrics"):
        RLAIFConfig.from_dict({"gate": {"metrics": ["bleu4"]}})
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prompt": ""}\n')
    with pytest.raises(DataError, match="row 1"):
        RLAIFPipeline(RLAIFConfig.from_dict({"prompts_path": str(bad), "output_dir": str(tmp_path)}))


def test_samples_are_kept_as_the_policy_generated_them(
    two_iterations: tuple[RLAIFResult, RLAIFConfig], tiny_model_path: Path
) -> None:
    from provenir.rlaif.pipeline import _completion_text
    from provenir.train.backends.trl_backend import load_tokenizer

    result, _ = two_iterations
    variants = [v for c in jsonl(result.folder / "iter-1" / "candidates.jsonl") for v in c["variants"]]
    # After "...?" the model writes " The ...": byte-level BPE folds that space into the word, so
    # a pair trains on the policy's own tokens only if the space stays.
    assert sum(v.startswith(" ") for v in variants) > len(variants) // 2
    tokenizer = load_tokenizer(str(tiny_model_path))
    assert _completion_text("raw_completion", tokenizer)(" 4 plus 5 is 9. ") == " 4 plus 5 is 9."
    # Mistral's template writes that space itself: keeping the sampled one would double it.
    assert _completion_text("mistral", tokenizer)(" 4 plus 5 is 9. ") == "4 plus 5 is 9."


def test_no_best_run_when_no_iteration_beats_the_base_model(tmp_path: Path, tiny_model_path: Path) -> None:
    # A learning rate this small leaves every greedy answer as it was: the gate passes (nothing
    # dropped), but nothing improved either, and the result must say so rather than name a run.
    config = rlaif_config(
        tmp_path,
        n_iterations=1,
        generation={"num_variants": 2, "max_new_tokens": 8},
        dpo={
            "max_steps": 1,
            "batch_size": 4,
            "learning_rate": 1e-9,
            "gradient_checkpointing": False,
            "data": {"template": "raw_completion"},
            "peft": {"rank": 4, "alpha": 8},
        },
    )
    result = RLAIFPipeline(config, progress=False).run()
    (it,) = result.iterations
    assert it.gate_passed is True and it.run_id is not None
    assert it.metrics["token_f1"]["mean"] == result.baseline["token_f1"]["mean"]
    assert it.vs_baseline["token_f1"]["significant"] is False and it.improved is False
    assert result.improved is False and result.best_run_id is None and result.best_adapter is None
    assert "no iteration beat the base model significantly" in result.stopped_because
    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["best_run_id"] is None and summary["improved"] is False


def test_offline_example_beats_the_base_model(tmp_path: Path, tiny_model_path: Path) -> None:
    """The shipped example learns: its last iteration is significantly above the base model."""
    example = Path(__file__).resolve().parents[2] / "examples" / "rlaif_offline.yaml"
    config = RLAIFConfig.from_yaml(example, [f"output_dir={tmp_path}"])
    result = RLAIFPipeline(config, progress=False).run()
    assert len(result.iterations) == config.n_iterations
    last = result.iterations[-1]
    assert last.gate_passed
    for metric in config.gate.metrics:
        versus = last.vs_baseline[metric]
        assert last.metrics[metric]["mean"] > result.baseline[metric]["mean"]
        assert versus["delta"] > 0 and versus["p_value"] < 0.05 and versus["verdict"] == "improvement"
    assert result.improved and result.best_run_id is not None
    assert result.best_run_id in {it.run_id for it in result.iterations if it.improved}
