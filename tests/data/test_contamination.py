"""The n-gram contamination check agrees with a brute-force reference and never crosses fields or rows."""

from __future__ import annotations

import random
import re
import warnings

import pytest

from provenir.core.errors import DataError
from provenir.data import contamination
from provenir.data.contamination import (
    ContaminationError,
    ContaminationWarning,
    enforce_contamination_policy,
    find_contamination,
)

SENTENCE_TEXT = "the model was trained on a large corpus of public text and evaluated on held out questions"
WORDS = SENTENCE_TEXT.split(" ")
SENTENCE = " ".join(WORDS)  # 17 words


def reference(train: list[dict], evals: list[dict], n: int) -> list[tuple[int, int, int, int]]:
    """Brute force: (eval_row, overlap, total, first_train_row) with Python sets of word tuples."""

    def grams(row: dict) -> list[tuple[str, ...]]:
        out = []
        for value in row.values():
            words = re.findall(r"[A-Za-z0-9_]+", value.lower())
            out += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        return out

    first: dict[tuple[str, ...], int] = {}
    for t, row in enumerate(train, start=1):
        for g in grams(row):
            first.setdefault(g, t)
    result = []
    for e, row in enumerate(evals, start=1):
        distinct = set(grams(row))
        shared = [g for g in distinct if g in first]
        if shared:
            result.append((e, len(shared), len(distinct), min(first[g] for g in shared)))
    return result


def as_tuples(report: contamination.ContaminationReport) -> list[tuple[int, int, int, int]]:
    return [(i.eval_row, i.overlap, i.total, i.first_train_row) for i in report.items]


@pytest.mark.parametrize("n", [1, 3, 5])
def test_matches_brute_force_on_random_data(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(n)
    vocab = [f"w{i}" for i in range({1: 12, 3: 6, 5: 3}[n])]  # tiny vocabulary: plenty of accidental overlaps

    def text() -> str:
        return " ".join(rng.choices(vocab, k=rng.randint(0, 9)))

    train = [{"prompt": text(), "response": text()} for _ in range(300)]
    evals = [{"prompt": text(), "response": text()} for _ in range(40)]
    expected = reference(train, evals, n)
    assert expected, "the fixture should produce overlaps"
    assert as_tuples(find_contamination(train, evals, n=n)) == expected
    # Chunk boundaries must not change anything: first-seen rows and counts carry across chunks.
    monkeypatch.setattr(contamination, "_CHUNK_ROWS", 7)
    assert as_tuples(find_contamination(iter(train), evals, n=n)) == expected


def test_finds_a_copy_despite_case_and_punctuation() -> None:
    train = [
        {"prompt": "hello", "response": "nothing"},
        {"prompt": "Intro: " + SENTENCE.upper().replace(" ", ",  ") + "!"},
    ]
    report = find_contamination(train, [{"prompt": SENTENCE}, {"prompt": "short"}], n=13)
    assert as_tuples(report) == [(1, 5, 5, 2)]
    assert report.train_rows == 2 and report.eval_rows == 2 and report.eval_checked == 1
    assert report.eval_too_short == 1 and report.train_rows_with_overlap == 1
    assert report.contaminated_fraction == 1.0


def test_overlap_shorter_than_n_is_not_contamination() -> None:
    train = [{"prompt": " ".join(WORDS[:12]) + " unrelated tail words here"}]
    assert find_contamination(train, [{"prompt": SENTENCE}], n=13).items == []
    assert find_contamination(train, [{"prompt": SENTENCE}], n=12).contaminated == 1


def test_ngrams_never_cross_fields_or_rows() -> None:
    head, tail = " ".join(WORDS[:7]), " ".join(WORDS[7:13])
    split_fields = [{"prompt": head, "response": tail}]
    split_rows = [{"prompt": "a " + head}, {"prompt": tail + " b"}]
    for train in (split_fields, split_rows):
        assert find_contamination(train, [{"prompt": " ".join(WORDS[:13])}], n=13).items == []
    assert (
        find_contamination(
            [{"prompt": head + " " + tail}], [{"prompt": " ".join(WORDS[:13])}], n=13
        ).contaminated
        == 1
    )


def test_fields_and_chat_messages() -> None:
    train = [{"prompt": "x", "response": SENTENCE}]
    evals = [{"prompt": "y", "response": SENTENCE}]
    assert find_contamination(train, evals, n=13).contaminated == 1
    assert find_contamination(train, evals, n=13, fields=["prompt"]).contaminated == 0
    chat = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": SENTENCE}], "id": 7}
    ]
    assert find_contamination(chat, evals, n=13).contaminated == 1


def test_control_characters_in_data_do_not_shift_rows() -> None:
    train = [{"prompt": "a\x01b\x00c"}, {"prompt": SENTENCE}]
    assert as_tuples(find_contamination(train, [{"prompt": SENTENCE}], n=13)) == [(1, 5, 5, 2)]


def test_bad_input() -> None:
    with pytest.raises(DataError, match="positive integer"):
        find_contamination([{"p": "a"}], [{"p": "a"}], n=0)
    with pytest.raises(DataError, match="eval set has no rows"):
        find_contamination([{"p": "a"}], [], n=1)
    with pytest.raises(DataError, match="training set has no rows"):
        find_contamination([], [{"p": "a"}], n=1)
    with pytest.raises(DataError, match="rows must be mappings"):
        find_contamination(["text"], [{"p": "a"}], n=1)  # type: ignore[list-item]


def test_policy() -> None:
    dirty = find_contamination([{"p": SENTENCE}], [{"p": SENTENCE}], n=13)
    clean = find_contamination([{"p": "other words entirely"}], [{"p": SENTENCE}], n=13)
    with pytest.raises(ContaminationError, match=r"eval data is contaminated: 1 of 1 checkable eval rows"):
        enforce_contamination_policy(dirty, "refuse")
    with pytest.warns(ContaminationWarning):
        enforce_contamination_policy(dirty, "warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enforce_contamination_policy(dirty, "off")
        enforce_contamination_policy(clean, "refuse")
    with pytest.raises(DataError, match="off, warn or refuse"):
        enforce_contamination_policy(dirty, "loud")  # type: ignore[arg-type]
    assert dirty.to_dict()["contaminated"] == 1 and dirty.to_dict()["items"][0]["eval_row"] == 1
