"""data.train_on_turns: loss on every assistant turn of a conversation, as TRL trains it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import ConfigError
from provenir.data.templates import BUILTIN_TEMPLATES
from provenir.train.runner import train

pytestmark = pytest.mark.slow

CONVERSATION = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
        {"role": "assistant", "content": "Rome."},
    ]
}
SINGLE = {"messages": [{"role": "user", "content": "2 plus 2?"}, {"role": "assistant", "content": "Four."}]}

#: A ChatML template whose assistant turns are wrapped in generation markers.
MARKED_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}<|im_start|>assistant\n{% generation %}"
    "{{ m['content'] }}<|im_end|>\n{% endgeneration %}{% else %}<|im_start|>{{ m['role'] }}\n"
    "{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
UNMARKED_TEMPLATE = MARKED_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")


def write_rows(folder: Path, rows: list[dict[str, Any]], copies: int = 4, name: str = "chat.jsonl") -> str:
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows * copies))
    return str(path)


def chat_config(tmp_path: Path, template: str = "chatml", **overrides: Any) -> RunConfig:
    data = {
        "path": write_rows(tmp_path, [CONVERSATION, SINGLE]),
        "template": template,
        "train_on_turns": "all",
    }
    data.update(overrides.pop("data", {}))
    base: dict[str, Any] = {
        "name": "turns",
        "output_dir": str(tmp_path / "artifacts"),
        "max_steps": 2,
        "batch_size": 2,
        "learning_rate": 1e-3,
        "gradient_checkpointing": False,
        "peft": {"rank": 4, "alpha": 8},
        "data": data,
    }
    base.update(overrides)
    return RunConfig.from_dict(base)


def labelled_spans(labels: list[int]) -> list[list[int]]:
    """Runs of consecutive labelled tokens."""
    spans: list[list[int]] = []
    current: list[int] = []
    for label in labels:
        if label != -100:
            current.append(label)
        elif current:
            spans.append(current)
            current = []
    return spans + ([current] if current else [])


def trainer_rows(config: RunConfig, tmp_path: Path) -> tuple[Any, Any]:
    """TRL's own processed training rows and the tokenizer, from a trainer built for ``config``."""
    from provenir.data.loading import load_train_data
    from provenir.train.backends.trl_backend import TRLBackend

    trainer, tokenizer, _ = TRLBackend(progress=False).build_trainer(
        config, load_train_data(config), tmp_path
    )
    return trainer.train_dataset, tokenizer


def test_every_assistant_turn_is_labelled_and_nothing_else(tiny_model_path: Path, tmp_path: Path) -> None:
    """In TRL's processed rows, the labels are exactly the two assistant turns (with their end markers)."""
    dataset, tokenizer = trainer_rows(chat_config(tmp_path), tmp_path)
    row = next(r for r in dataset if tokenizer.decode(r["input_ids"]).count("<|im_start|>assistant") == 2)
    spans = [tokenizer.decode(s) for s in labelled_spans(row["labels"])]
    assert spans == ["Paris.<|im_end|>\n", "Rome.<|im_end|>\n</s>"]
    unlabelled = tokenizer.decode(
        [i for i, lab in zip(row["input_ids"], row["labels"], strict=True) if lab == -100]
    )
    for text in ("Be brief.", "Capital of France?", "And of Italy?", "<|im_start|>assistant"):
        assert text in unlabelled


@pytest.mark.parametrize("template", BUILTIN_TEMPLATES)
def test_each_builtin_template_labels_each_turn_once(tiny_model_path: Path, template: str) -> None:
    from provenir.train.backends.trl_backend import load_tokenizer
    from provenir.train.turns import all_turns_row, row_messages

    tokenizer = load_tokenizer(str(tiny_model_path))
    row = all_turns_row(template, tokenizer, row_messages(CONVERSATION))
    spans = [tokenizer.decode(s) for s in labelled_spans(row["labels"])]
    assert len(spans) == 2
    assert spans[0].strip().startswith("Paris.") and spans[1].strip().startswith("Rome.")
    assert spans[1].endswith(tokenizer.eos_token)
    assert not any(user in "".join(spans) for user in ("France", "Italy", "brief"))


@pytest.mark.parametrize(
    "rows",
    [
        [{"prompt": "What is 2 plus 2?", "response": "Four."}, {"prompt": "A colour?", "response": "Blue."}],
        [
            SINGLE,
            {
                "messages": [
                    {"role": "user", "content": "A colour?"},
                    {"role": "assistant", "content": "Blue."},
                ]
            },
        ],
    ],
    ids=["prompt-response", "messages"],
)
def test_one_turn_rows_get_the_labels_of_last(
    tiny_model_path: Path, tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    """With one assistant turn, `all` hands TRL exactly the tokens and labels `last` ends up with."""
    path = write_rows(tmp_path, rows, copies=1, name="one-turn.jsonl")
    every, tokenizer = trainer_rows(chat_config(tmp_path, data={"path": path}), tmp_path / "a")
    last, _ = trainer_rows(
        chat_config(tmp_path, data={"path": path, "train_on_turns": "last"}), tmp_path / "b"
    )
    pairs = {tuple(r["input_ids"]): r["labels"] for r in last}
    assert len(pairs) == 2
    for row in every:
        assert pairs[tuple(row["input_ids"])] == row["labels"]


def test_training_on_all_turns_completes(tiny_model_path: Path, tmp_path: Path) -> None:
    manifest = train(chat_config(tmp_path))
    assert manifest.status == "completed" and manifest.metrics["global_step"] == 2
    assert manifest.config["data"]["train_on_turns"] == "all"


def model_with_template(tiny_model_path: Path, folder: Path, template: str) -> Path:
    """A copy of the tiny model whose tokenizer carries ``template`` as its chat template."""
    from transformers import AutoTokenizer

    shutil.copytree(tiny_model_path, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(folder)
    return folder


def test_tokenizer_template_uses_its_assistant_masks(tiny_model_path: Path, tmp_path: Path) -> None:
    model = model_with_template(tiny_model_path, tmp_path / "model", MARKED_TEMPLATE)
    config = chat_config(tmp_path, template="tokenizer", model_name_or_path=str(model))
    dataset, tokenizer = trainer_rows(config, tmp_path / "run")
    row = next(r for r in dataset if len(labelled_spans(r["labels"])) == 2)
    assert [tokenizer.decode(s) for s in labelled_spans(row["labels"])] == [
        "Paris.<|im_end|>\n",
        "Rome.<|im_end|>\n",
    ]
    expected = tokenizer.apply_chat_template(
        CONVERSATION["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    assert row["input_ids"] == expected["input_ids"]
    assert [lab != -100 for lab in row["labels"]] == [bool(m) for m in expected["assistant_masks"]]
    manifest = train(config)
    assert manifest.status == "completed"


def test_tokenizer_template_without_markers_is_refused(tiny_model_path: Path, tmp_path: Path) -> None:
    model = model_with_template(tiny_model_path, tmp_path / "model", UNMARKED_TEMPLATE)
    config = chat_config(tmp_path, template="tokenizer", model_name_or_path=str(model))
    with pytest.raises(ConfigError, match=r"needs \{% generation %\}") as exc:
        train(config)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "artifacts" / "manifests").exists()  # refused before the run started


def test_all_turns_is_sft_only(tiny_model_path: Path, tmp_path: Path) -> None:
    config = RunConfig.from_dict(
        {
            "algorithm": "dpo",
            "output_dir": str(tmp_path),
            "data": {"path": "builtin:dpo-sample", "train_on_turns": "all", "max_samples": 4},
        }
    )
    with pytest.raises(ConfigError, match="applies to SFT conversations"):
        train(config)


def test_a_long_conversation_is_measured_and_cut_not_tokenized_whole(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """A 200k-character later turn: the row counts as truncated, the first turn keeps its labels."""
    from provenir.core.abstractions import TrainData
    from provenir.train.backends.trl_backend import load_tokenizer, prepare_rows

    long_turn = {
        "messages": [
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "word " * 40_000},
            {"role": "assistant", "content": "Too long."},
        ]
    }
    config = chat_config(tmp_path, max_length=64)
    tokenizer = load_tokenizer(str(tiny_model_path))
    prepared = prepare_rows(config, TrainData(train=[long_turn, SINGLE], schema="sft"), tokenizer)
    assert (prepared.long_rows.truncated, prepared.long_rows.dropped) == (1, 0)
    row = prepared.rows[0]
    assert 64 < len(row["input_ids"]) < 64 + 200  # a bounded prefix, cut to 64 by TRL
    assert [tokenizer.decode(s) for s in labelled_spans(row["labels"])] == ["Paris.<|im_end|>\n"]
