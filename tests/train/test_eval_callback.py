"""EvalCallback inside a real TRL SFT + LoRA run on the built-in tiny model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenir.core.errors import EvaluationError
from provenir.eval.harness import MultiMetricEvaluator
from provenir.train.eval_callback import EvalCallback, EvalCallbackConfig, generate_predictions

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).parents[2] / "src" / "provenir" / "data" / "builtin" / "sft_sample.jsonl"


def _rows(n: int) -> list[dict[str, Any]]:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:n]
    return [json.loads(line) for line in lines]


def _trainer(model_path: Path, tmp_path: Path, callback: EvalCallback, max_steps: int) -> Any:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    train = Dataset.from_list(
        [{"prompt": r["prompt"] + "\n", "completion": r["response"]} for r in _rows(16)]
    )
    args = SFTConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
        use_cpu=True,
        dataset_num_proc=None,
    )
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
        callbacks=[callback],
    )


def _callback(**config: Any) -> EvalCallback:
    return EvalCallback(
        config=EvalCallbackConfig(max_new_tokens=8, batch_size=3, **config),
        evaluator=MultiMetricEvaluator(["exact_match", "token_f1"], n_bootstrap=200),
        eval_dataset=_rows(5),
        prompt_formatter=lambda row: row["prompt"] + "\n",
    )


def test_callback_evaluates_the_trained_model_and_logs_metrics(tiny_model_path: Path, tmp_path: Path) -> None:
    callback = _callback(eval_every_n_steps=2)
    trainer = _trainer(tiny_model_path, tmp_path, callback, max_steps=4)
    trainer.train()

    assert [r.step for r in callback.history] == [2, 4]  # the final step was evaluated once, not twice
    logged = [e for e in trainer.state.log_history if "eval/exact_match" in e]
    assert [e["step"] for e in logged] == [2, 4]
    for entry in logged:
        assert (
            0.0
            <= entry["eval/token_f1_ci_lower"]
            <= entry["eval/token_f1"]
            <= entry["eval/token_f1_ci_upper"]
            <= 1
        )
    # The predictions scored at step 4 are exactly what the trained model generates now.
    last = callback.history[-1]
    assert len(last.predictions) == 5
    tokenizer = trainer.processing_class
    prompts = [r["prompt"] + "\n" for r in _rows(5)]
    assert (
        generate_predictions(trainer.model, tokenizer, prompts, max_new_tokens=8, batch_size=5)
        == last.predictions
    )
    assert last.result.n == 5 and set(last.result.metrics) == {"exact_match", "token_f1"}


def test_early_stopping_stops_training_when_quality_stops_improving(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    # Requiring a strict improvement of exact match, which a few tiny-model steps never reach
    # after the first evaluation, patience 1 must stop at the second evaluation (step 2).
    callback = _callback(eval_every_n_steps=1, early_stopping_patience=1, metric="exact_match")
    trainer = _trainer(tiny_model_path, tmp_path, callback, max_steps=50)
    trainer.train()
    assert callback.stopped_early
    assert trainer.state.global_step == 2
    assert [r.improved for r in callback.history] == [True, False]


def test_batched_left_padded_generation_equals_one_by_one(tiny_model_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    tokenizer.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    model.train()
    # Prompts of different lengths, so the batch really is padded.
    prompts = [r["prompt"] + "\n" for r in _rows(6)]
    batched = generate_predictions(model, tokenizer, prompts, max_new_tokens=6, batch_size=6)
    single = [generate_predictions(model, tokenizer, [p], max_new_tokens=6, batch_size=1)[0] for p in prompts]
    assert batched == single
    assert model.training, "generation must restore train mode"
    assert tokenizer.padding_side == "right", "generation must restore the tokenizer's padding side"
    assert any(batched), "the tiny model generated nothing at all"


def test_config_and_dataset_are_validated() -> None:
    with pytest.raises(EvaluationError):
        EvalCallbackConfig(eval_every_n_steps=0)
    with pytest.raises(EvaluationError, match="empty"):
        EvalCallback(eval_dataset=[])
    with pytest.raises(EvaluationError, match="not computed"):
        EvalCallback(EvalCallbackConfig(metric="bleu4"), eval_dataset=[{"prompt": "p", "response": "r"}])
