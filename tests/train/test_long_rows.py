"""Rows longer than max_length: measured on bounded prefixes, cut or dropped as TRL would, counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provenir.core.abstractions import TrainData
from provenir.core.config import RunConfig
from provenir.core.errors import DataError
from provenir.train.backends.trl_backend import load_tokenizer, prepare_rows
from provenir.train.long_rows import MARGIN, clip_text, fit_completions

WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit "


@pytest.fixture(scope="module")
def tokenizer(tiny_model_path: Path) -> Any:
    return load_tokenizer(str(tiny_model_path))


def ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text)["input_ids"])


def test_short_text_is_kept_whole(tokenizer: Any) -> None:
    text = "What is LoRA?"
    assert clip_text(tokenizer, text, 64) == (text, False)
    exactly = WORDS * 3
    n = len(ids(tokenizer, exactly))
    assert clip_text(tokenizer, exactly, n) == (exactly, False)
    assert clip_text(tokenizer, exactly, n - 1) == (exactly, True)


def test_long_text_is_cut_to_a_prefix_that_keeps_the_first_tokens(tokenizer: Any) -> None:
    text = WORDS * 2000  # ~110k characters: tokenizing it whole is still cheap enough to compare
    prefix, long = clip_text(tokenizer, text, 128)
    assert long and text.startswith(prefix)
    assert len(prefix) < len(text) // 20  # only a bounded prefix was tokenized and kept
    assert len(ids(tokenizer, prefix)) > 128 + MARGIN
    assert ids(tokenizer, prefix)[:128] == ids(tokenizer, text)[:128]


def test_keep_start_fate_of_prompt_and_completion(tokenizer: Any) -> None:
    prompt = "Question: " + WORDS
    fate, [completion] = fit_completions(tokenizer, prompt, ["a short answer"], 128)
    assert (fate, completion) == ("fits", "a short answer")

    long_answer = WORDS * 500
    fate, [completion] = fit_completions(tokenizer, prompt, [long_answer], 128)
    assert fate == "truncated" and long_answer.startswith(completion) and len(completion) < len(long_answer)
    assert ids(tokenizer, prompt + completion)[:128] == ids(tokenizer, prompt + long_answer)[:128]

    fate, _ = fit_completions(tokenizer, WORDS * 500, ["answer"], 128)
    assert fate == "dropped"  # the prompt alone fills max_length: no answer token would remain


def data(train: list[dict[str, Any]], eval_rows: list[dict[str, Any]] | None = None) -> TrainData:
    schema = "preference" if "chosen" in train[0] else "sft" if "response" in train[0] else "prompt"
    return TrainData(train=train, schema=schema, eval=eval_rows)  # type: ignore[arg-type]


def test_sft_rows_are_counted_cut_and_dropped(tokenizer: Any) -> None:
    config = RunConfig.from_dict({"max_length": 64})
    rows = [
        {"prompt": "Say hi.", "response": "Hi."},
        {"prompt": "Summarise.", "response": WORDS * 10_000},
        {"prompt": WORDS * 10_000, "response": "Done."},
        {"prompt": "Say bye.", "response": "Bye."},
    ]
    evals = [{"prompt": "Echo.", "response": WORDS * 50}, {"prompt": "Hi?", "response": "Hi."}]
    prepared = prepare_rows(config, data(rows, evals), tokenizer)
    lr = prepared.long_rows
    assert (lr.max_length, lr.training_rows, lr.truncated, lr.dropped) == (64, 2, 1, 1)
    assert lr.first_training_rows == [2, 3] and lr.eval_rows == 1
    assert len(prepared.rows) == 3  # the row whose prompt fills max_length is left out
    assert all(len(r["prompt"]) + len(r["completion"]) < 20_000 for r in prepared.rows)
    assert prepared.rows[0]["completion"].endswith(tokenizer.eos_token)  # as TRL appends it


def test_dpo_and_grpo_rows(tokenizer: Any) -> None:
    dpo = RunConfig.from_dict({"algorithm": "dpo", "max_length": 64})
    rows = [
        {"prompt": "Pick.", "chosen": "A", "rejected": WORDS * 1000},
        {"prompt": WORDS * 1000, "chosen": "A", "rejected": "B"},
        {"prompt": "Pick.", "chosen": "A", "rejected": "B"},
    ]
    prepared = prepare_rows(dpo, data(rows), tokenizer)
    assert (prepared.long_rows.truncated, prepared.long_rows.dropped) == (1, 1)
    assert [r["chosen"] for r in prepared.rows] == ["A" + tokenizer.eos_token] * 2
    assert prepared.long_rows.eval_rows is None

    grpo = RunConfig.from_dict({"algorithm": "grpo", "max_length": 64})
    prompts = [{"prompt": "2+2?", "reference": "4"}, {"prompt": WORDS * 1000}]
    prepared = prepare_rows(grpo, data(prompts), tokenizer)
    assert (prepared.long_rows.truncated, prepared.long_rows.dropped) == (0, 1)
    assert prepared.rows == [{"prompt": prepared.rows[0]["prompt"], "reference": "4"}]


def test_nothing_left_to_train_on_is_a_data_error(tokenizer: Any) -> None:
    config = RunConfig.from_dict({"max_length": 32})
    with pytest.raises(DataError, match="max_length=32 tokens, so no row is left to train on"):
        prepare_rows(config, data([{"prompt": WORDS * 100, "response": "x"}]), tokenizer)
