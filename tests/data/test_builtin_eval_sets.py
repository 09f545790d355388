"""The built-in eval sets are held out: nothing in them was trained on or pretrained on.

Every built-in dataset named ``*-eval`` is checked against every other built-in dataset and
against the tiny model's pretraining corpus (what ``_corpus_texts`` feeds it): no eval row, nor
any of its fields, appears there after normalisation, and no 8-word sequence of them does
either (a text shorter than 8 words counts as one sequence of all its words).
"""

from __future__ import annotations

import re

import pytest

from provenir.data.loading import BUILTIN_DATASETS, read_rows
from provenir.train.tiny_model import _corpus_texts

N = 8
EVAL_SETS = sorted(name for name in BUILTIN_DATASETS if name.endswith("-eval"))
TRAIN_SETS = sorted(name for name in BUILTIN_DATASETS if not name.endswith("-eval"))


def words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\w+", text.casefold()))


def row_texts(row: dict[str, object]) -> list[str]:
    """Each text field of a row, and the whole row as one text."""
    fields = [str(v) for _, v in sorted(row.items())]
    return [*fields, " ".join(fields)]


def seen_texts() -> list[tuple[str, ...]]:
    texts = [words(t) for t in _corpus_texts()]
    for name in TRAIN_SETS:
        for row in read_rows(f"builtin:{name}"):
            texts += [words(t) for t in row_texts(row)]
    return texts


Seen = tuple[set[tuple[str, ...]], set[tuple[str, ...]]]


@pytest.fixture(scope="module")
def seen() -> Seen:
    """(whole normalised texts, every word sequence of up to N words) of training and pretraining."""
    texts = seen_texts()
    grams = {t[i : i + k] for t in texts for k in range(1, N + 1) for i in range(len(t) - k + 1)}
    return set(texts), grams


def leak(text: str, seen: Seen) -> str | None:
    """What of ``text`` was seen in training or pretraining, or None."""
    whole, grams = seen
    w = words(text)
    if w in whole:
        return "the whole text"
    span = min(N, len(w))
    for i in range(len(w) - span + 1):
        if w[i : i + span] in grams:
            return " ".join(w[i : i + span])
    return None


def test_there_are_held_out_sets() -> None:
    assert {"sft-eval", "prompts-eval"} <= set(EVAL_SETS)
    assert {"sft-sample", "dpo-sample", "prompts-sample"} <= set(TRAIN_SETS)


@pytest.mark.parametrize("name", EVAL_SETS)
def test_eval_set_is_disjoint_from_training_and_pretraining(name: str, seen: Seen) -> None:
    rows = read_rows(f"builtin:{name}")
    assert len(rows) >= 40  # enough items for a paired test to see a real change
    for row in rows:
        for text in row_texts(row):
            assert words(text), f"{name}: empty text in {row}"
            found = leak(text, seen)
            assert found is None, f"{name}: {text!r} shares {found!r} with training data or the corpus"


@pytest.mark.parametrize("name", EVAL_SETS)
def test_eval_prompts_are_unique(name: str) -> None:
    prompts = [words(str(r["prompt"])) for r in read_rows(f"builtin:{name}")]
    assert len(prompts) == len(set(prompts))


def test_the_check_sees_training_rows_and_their_parts(seen: Seen) -> None:
    assert leak("What is the capital of France?", seen) == "the whole text"  # a corpus question
    assert leak("spell the word lamp backwards", seen) == "the whole text"  # a training prompt, normalised
    assert leak("Quiz: the capital of France is Paris. What is next?", seen) is not None  # 8 words in common
    assert leak("What is the capital of Chile?", seen) is None
