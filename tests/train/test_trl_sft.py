"""Real TRL SFT + LoRA on the built-in tiny model: training changes weights, runs are reproducible."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.train.runner import train

pytestmark = pytest.mark.slow


def sft_config(output_dir: Path, **overrides: object) -> RunConfig:
    base = {
        "name": "sft-test",
        "output_dir": str(output_dir),
        "max_steps": 6,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "peft": {"rank": 4, "alpha": 8, "dropout": 0.1},
        "data": {"max_samples": 24},
    }
    base.update(overrides)
    return RunConfig.from_dict(base)


@pytest.fixture(scope="module")
def two_runs(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path
) -> tuple[RunManifest, RunManifest, Path]:
    out = tmp_path_factory.mktemp("sft") / "artifacts"
    config = sft_config(out)
    return train(config), train(config), out


def test_lora_weights_change_and_loss_is_finite(two_runs: tuple[RunManifest, RunManifest, Path]) -> None:
    from safetensors.torch import load_file

    first, _, out = two_runs
    assert first.status == "completed"
    assert math.isfinite(first.metrics["final_loss"]) and math.isfinite(first.metrics["train_loss"])
    assert first.metrics["global_step"] == 6
    weights = load_file(RunStore(out).run_dir(first.run_id) / "adapter" / "adapter_model.safetensors")
    lora_b = {k: v for k, v in weights.items() if "lora_B" in k}
    assert lora_b, "adapter has no LoRA B matrices"
    # PEFT initialises lora_B to zero: any non-zero entry means training moved the adapter.
    assert all(float(v.abs().sum()) > 0 for v in lora_b.values())


def test_same_seed_gives_identical_adapter(two_runs: tuple[RunManifest, RunManifest, Path]) -> None:
    first, second, _ = two_runs
    assert first.run_id != second.run_id
    assert first.adapter_hash is not None
    assert first.adapter_hash == second.adapter_hash
    assert first.config_hash == second.config_hash and first.dataset_hash == second.dataset_hash


def test_manifest_is_complete_and_verifies(two_runs: tuple[RunManifest, RunManifest, Path]) -> None:
    first, _, out = two_runs
    loaded, raw = RunManifest.load_with_text(RunStore(out).manifest_path(first.run_id))
    result = loaded.verify(raw=raw, run_directory=RunStore(out).run_dir(first.run_id))
    assert result.outputs_ok
    assert "adapter/adapter_model.safetensors" in loaded.outputs
    assert loaded.environment["packages"]["trl"] and loaded.environment["device"] == "cpu"
    assert loaded.config["peft"]["rank"] == 4


def test_different_seed_gives_different_adapter(
    two_runs: tuple[RunManifest, RunManifest, Path], tmp_path: Path
) -> None:
    first, _, _ = two_runs
    other = train(sft_config(tmp_path / "a", seed=7, max_steps=2))
    assert other.adapter_hash != first.adapter_hash


def test_prompt_tokens_are_masked(tiny_model_path: Path, tmp_path: Path) -> None:
    """Loss is on the response only: every prompt token's label is -100."""
    from provenir.data.loading import load_train_data
    from provenir.train.backends.trl_backend import TRLBackend

    config = sft_config(tmp_path, max_steps=1)
    data = load_train_data(config)
    trainer, tokenizer, _ = TRLBackend(progress=False).build_trainer(config, data, tmp_path)
    from provenir.data.templates.rendering import template_pair

    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels = batch["labels"][0].tolist()
    ids = batch["input_ids"][0].tolist()
    prompt, completion = template_pair("alpaca", tokenizer, data.train[0], data.train[0]["response"])
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids
    assert all(label == -100 for label in labels[: len(prompt_ids)])
    response = [i for i, label in zip(ids, labels, strict=True) if label != -100]
    assert tokenizer.decode(response) == completion == data.train[0]["response"] + tokenizer.eos_token


def test_eval_every_n_steps_evaluates_during_training(tmp_path: Path, tiny_model_path: Path) -> None:
    """The config's eval section alone attaches the EvalCallback; its metrics land in the log."""
    import json

    config = sft_config(
        tmp_path,
        max_steps=4,
        gradient_checkpointing=False,
        data={"max_samples": 24, "eval_split": 0.25},
        eval={"eval_every_n_steps": 2, "max_new_tokens": 8},
    )
    manifest = train(config)
    log = [
        json.loads(line) for line in (RunStore(tmp_path).run_dir(manifest.run_id) / "train_log.jsonl").open()
    ]
    evals = [e for e in log if "eval/exact_match" in e]
    assert [e["step"] for e in evals][:2] == [2, 4]
    assert all(0.0 <= e["eval/token_f1"] <= 1.0 for e in evals)
    assert manifest.inputs is not None and manifest.inputs.eval_rows is not None
    assert manifest.inputs.training_rows.count == 18 and manifest.inputs.eval_rows.count == 6


def test_eval_every_n_steps_without_eval_data_fails_before_the_run(tmp_path: Path) -> None:
    from provenir.core.errors import ConfigError

    config = sft_config(tmp_path, eval={"eval_every_n_steps": 2})
    with pytest.raises(ConfigError, match="needs eval data"):
        train(config)
    assert not (tmp_path / "manifests").exists()


def test_template_bos_is_not_doubled_by_a_bos_adding_tokenizer(tiny_model_path: Path) -> None:
    """Llama 3 / Mistral templates write BOS into the text; a tokenizer that adds BOS must not add a second."""
    from tokenizers import processors
    from transformers import AutoTokenizer

    from provenir.data.templates import TEMPLATE_REGISTRY
    from provenir.train.backends.trl_backend import strip_auto_bos

    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    rendered = TEMPLATE_REGISTRY.format("mistral", {"prompt": "hi"})
    assert rendered.startswith("<s>")
    assert strip_auto_bos(rendered, tok) == rendered  # this tokenizer adds no BOS itself
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)]
    )
    fixed = strip_auto_bos(rendered, tok)
    ids = tok(fixed)["input_ids"]
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert tok(rendered, add_special_tokens=False)["input_ids"] == ids  # generation sees the same ids


def test_conversation_loss_is_on_the_final_assistant_turn(tiny_model_path: Path, tmp_path: Path) -> None:
    import json

    from provenir.data.loading import load_train_data
    from provenir.train.backends.trl_backend import TRLBackend

    rows = [
        {
            "messages": [
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris."},
                {"role": "user", "content": "And of Italy?"},
                {"role": "assistant", "content": "Rome."},
            ]
        }
    ] * 4
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = sft_config(
        tmp_path, max_steps=2, gradient_checkpointing=False, data={"path": str(path), "template": "chatml"}
    )
    trainer, tokenizer, _ = TRLBackend(progress=False).build_trainer(
        config, load_train_data(config), tmp_path
    )
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    learned = tokenizer.decode([i for i, label in zip(ids, labels, strict=True) if label != -100])
    assert learned.startswith("Rome.<|im_end|>")
    assert "Paris" in tokenizer.decode(ids) and "Paris" not in learned  # earlier turns are context only
    assert train(config).status == "completed"
