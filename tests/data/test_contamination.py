"""The contamination checks agree with brute-force references, never cross fields or rows, find exact
copies of rows of any length, and find near-duplicates deterministically."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import pytest

from provenir.core.errors import DataError
from provenir.data import contamination
from provenir.data.contamination import (
    ContaminationError,
    ContaminationWarning,
    enforce_contamination_policy,
    find_contamination,
    normalize_words,
)

SENTENCE_TEXT = "the model was trained on a large corpus of public text and evaluated on held out questions"
WORDS = SENTENCE_TEXT.split(" ")
SENTENCE = " ".join(WORDS)  # 17 words
# 20 distinct words; PARAPHRASE changes the 11th, so it shares no 13-gram and its word-set Jaccard is 19/21.
TWENTY = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango"
PARAPHRASE = TWENTY.replace("kilo", "zulu")


def needs_datasketch() -> None:
    pytest.importorskip("datasketch")


Row = tuple[int, int, int, int | None, int | None, int | None]


def reference(train: list[dict], evals: list[dict], n: int) -> list[Row]:
    """Brute force with Python sets: (eval_row, overlap, total, ngram, exact, prompt first train rows)."""

    def words(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", text.lower())

    def grams(row: dict) -> list[tuple[str, ...]]:
        out = []
        for value in row.values():
            w = words(value)
            out += [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
        if not out and any(words(v) for v in row.values()):
            out = [("<whole>", whole(row))]  # no field of n words: the whole row is the one gram
        return out

    def whole(row: dict) -> str:
        return "".join(w for v in row.values() for w in words(v))

    def prompt(row: dict) -> str:
        return "".join(words(row["prompt"]))

    first: dict[tuple[str, ...], int] = {}
    first_whole: dict[str, int] = {}
    first_prompt: dict[str, int] = {}
    for t, row in enumerate(train, start=1):
        for g in grams(row):
            first.setdefault(g, t)
        first_whole.setdefault(whole(row), t)
        first_prompt.setdefault(prompt(row), t)
    result = []
    for e, row in enumerate(evals, start=1):
        distinct = set(grams(row))
        shared = [g for g in distinct if g in first]
        exact = first_whole.get(whole(row)) if whole(row) else None
        same_prompt = first_prompt.get(prompt(row)) if prompt(row) else None
        ngram = min(first[g] for g in shared) if shared else None
        if shared or exact or same_prompt:
            result.append((e, len(shared), len(distinct), ngram, exact, same_prompt))
    return result


def as_tuples(report: contamination.ContaminationReport) -> list[Row]:
    return [
        (i.eval_row, i.overlap, i.total, i.ngram_train_row, i.exact_train_row, i.prompt_train_row)
        for i in report.items
    ]


@pytest.mark.parametrize("n", [1, 3, 5])
def test_matches_brute_force_on_random_data(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(n)
    vocab = [f"w{i}" for i in range({1: 12, 3: 6, 5: 3}[n])]  # tiny vocabulary: plenty of accidental overlaps

    def text() -> str:
        return " ".join(rng.choices(vocab, k=rng.randint(0, 9)))

    train = [{"prompt": text(), "response": text()} for _ in range(300)]
    evals = [{"prompt": text(), "response": text()} for _ in range(40)]
    evals[5] = {k: v.upper() + "!" for k, v in train[17].items()}
    evals[9] = {"prompt": train[40]["prompt"] + ".", "response": text()}
    expected = reference(train, evals, n)
    assert any(r[4] for r in expected) and any(r[5] for r in expected) and any(r[3] for r in expected)
    assert as_tuples(find_contamination(train, evals, n=n)) == expected
    # Chunk boundaries must not change anything: first-seen rows and counts carry across chunks.
    monkeypatch.setattr(contamination, "_CHUNK_ROWS", 7)
    assert as_tuples(find_contamination(iter(train), evals, n=n)) == expected


def test_normalization_rule() -> None:
    assert normalize_words("Don't  STOP-now!\t2+2 = 4") == ["dont", "stopnow", "22", "4"]
    # NFKC folds full-width letters and ligatures; Unicode punctuation, symbols and spaces are handled too.
    assert normalize_words("ＦＵＬＬ ﬁne “quoted”\u3000café — ok…\x1cend €5") == [
        "full", "fine", "quoted", "café", "ok", "end", "5",
    ]  # fmt: skip
    # The ASCII fast path and the Unicode path give the same words for the same ASCII text.
    rng = random.Random(0)
    for _ in range(200):
        text = "".join(rng.choices("aZ9 _-'.,;:!?\t\n\x1c\x1f(){}", k=40))
        assert normalize_words(text + " é") == [*normalize_words(text), "é"]


def test_short_exact_copy_is_found() -> None:
    """A 3-word eval row that copies a training row (modulo case, whitespace, punctuation) is found."""
    train = [{"prompt": "Name a colour", "response": "Blue."}, {"prompt": "What is 2+2?", "response": "Four"}]
    evals = [
        {"prompt": "what   is 2 + 2", "response": "four!"},  # whitespace and punctuation differ
        {"prompt": "something else", "response": "entirely"},
        {"prompt": "...", "response": "?!"},  # no words: cannot be checked
    ]
    report = find_contamination(train, evals, n=13)
    assert [(i.eval_row, i.methods, i.first_train_row) for i in report.items] == [
        (1, ("exact", "prompt", "ngram"), 2)
    ]
    assert report.eval_checked == 2 and report.eval_unchecked == 1 and report.contaminated_fraction == 0.5
    with pytest.raises(ContaminationError, match=r"1 of 2 checked eval rows .* 1 exact copies"):
        enforce_contamination_policy(report, "refuse")


def test_same_prompt_is_found_whatever_the_response() -> None:
    train = [{"prompt": "Summarise the article.", "response": "A long summary. " * 5}]
    report = find_contamination(train, [{"prompt": "summarise the ARTICLE", "response": "Short."}])
    assert [(i.methods, i.prompt_train_row) for i in report.items] == [(("prompt",), 1)]
    chat = [
        {
            "messages": [
                {"role": "user", "content": "Summarise the article"},
                {"role": "assistant", "content": "x"},
            ]
        }
    ]
    assert find_contamination(chat, [{"prompt": "Summarise the article!"}]).items[0].methods == ("prompt",)
    assert find_contamination(train, [{"prompt": "Short."}], prompt_field=None).items == []


def test_finds_a_copy_despite_case_and_punctuation() -> None:
    train = [
        {"prompt": "hello", "response": "nothing"},
        {"prompt": "Intro: " + SENTENCE.upper().replace(" ", ",  ") + "!"},
    ]
    report = find_contamination(train, [{"prompt": SENTENCE}, {"prompt": "short"}], n=13)
    assert as_tuples(report) == [(1, 5, 5, 2, None, None)]
    assert report.train_rows == 2 and report.eval_rows == 2 and report.eval_checked == 2
    assert report.eval_unchecked == 0 and report.train_rows_with_overlap == 1


def test_overlap_shorter_than_n_is_not_contamination() -> None:
    train = [{"prompt": " ".join(WORDS[:12]) + " unrelated tail words here"}]
    assert find_contamination(train, [{"prompt": SENTENCE}], n=13).items == []
    assert find_contamination(train, [{"prompt": SENTENCE}], n=12).contaminated == 1


def test_short_rows_are_compared_whole_not_inside_longer_rows() -> None:
    """A short eval row's one gram is its whole text: it matches short training rows, not a phrase inside a long one."""
    train = [{"prompt": SENTENCE}, {"prompt": "large corpus", "response": "of text"}]
    report = find_contamination(
        train, [{"prompt": "a large corpus"}, {"prompt": "Large corpus", "response": "of text"}]
    )
    assert as_tuples(report) == [(2, 1, 1, 2, 2, 2)]


def test_ngrams_never_cross_fields_or_rows() -> None:
    head, tail = " ".join(WORDS[:7]), " ".join(WORDS[7:13])
    split_fields = [{"prompt": head, "response": tail}]
    split_rows = [{"prompt": "a " + head}, {"prompt": tail + " b"}]
    for train in (split_fields, split_rows):
        report = find_contamination(train, [{"prompt": " ".join(WORDS[:13])}], n=13)
        assert all(i.ngram_train_row is None for i in report.items)
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
    train = [{"prompt": "a\x01b\x00c \x02 d"}, {"prompt": SENTENCE}]
    assert as_tuples(find_contamination(train, [{"prompt": SENTENCE}], n=13)) == [(1, 5, 5, 2, 2, 2)]


def test_disjoint_eval_set_is_clean() -> None:
    needs_datasketch()
    rng = random.Random(3)
    train = [{"prompt": " ".join(rng.choices([f"t{i}" for i in range(50)], k=20))} for _ in range(500)]
    evals = [
        {"prompt": " ".join(rng.choices([f"e{i}" for i in range(50)], k=rng.randint(1, 20)))}
        for _ in range(50)
    ]
    report = find_contamination(train, evals, n=13, near_dup=0.5)
    assert report.items == [] and report.eval_checked == 50
    assert report.manifest_summary()["methods"] == {
        m: {"count": 0, "eval_rows": []} for m in ("exact", "prompt", "ngram", "near_dup")
    }


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
    with pytest.raises(ContaminationError, match=r"eval data is contaminated: 1 of 1 checked eval rows"):
        enforce_contamination_policy(dirty, "refuse")
    with pytest.warns(ContaminationWarning):
        enforce_contamination_policy(dirty, "warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enforce_contamination_policy(dirty, "off")
        enforce_contamination_policy(clean, "refuse")
    with pytest.raises(DataError, match="off, warn or refuse"):
        enforce_contamination_policy(dirty, "loud")  # type: ignore[arg-type]
    out = dirty.to_dict()
    assert out["contaminated"] == 1 and out["items"][0]["eval_row"] == 1
    assert out["items"][0]["methods"] == ["exact", "ngram"]  # no "prompt" column: no prompt check


def test_manifest_summary_has_counts_and_rows_per_method_and_no_text() -> None:
    needs_datasketch()
    train = [{"prompt": "Tell me a story.", "response": SENTENCE}, {"prompt": TWENTY, "response": "ok"}]
    evals = [
        {"prompt": "another story", "response": SENTENCE},  # n-gram, and a near-duplicate (Jaccard 17/20)
        {"prompt": "tell me a STORY", "response": "no"},  # same prompt
        {"prompt": "new", "response": "words"},  # clean
        {"prompt": PARAPHRASE, "response": "ok"},  # near-duplicate only
    ]
    summary = find_contamination(train, evals, near_dup=0.8).manifest_summary(limit=1)
    assert summary["methods"] == {
        "exact": {"count": 0, "eval_rows": []},
        "prompt": {"count": 1, "eval_rows": [2]},
        "ngram": {"count": 1, "eval_rows": [1]},
        "near_dup": {"count": 2, "eval_rows": [1]},
    }
    assert summary["contaminated"] == 3 and summary["eval_rows"] == [1] and summary["rows_listed"] == 1
    full = find_contamination(train, evals, near_dup=0.8).manifest_summary()
    assert full["methods"]["near_dup"]["eval_rows"] == [1, 4] and full["eval_rows"] == [1, 2, 4]
    assert summary["near_dup_threshold"] == 0.8 and summary["near_dup_num_perm"] == 128
    dumped = json.dumps(summary)
    assert not any(word in dumped for word in ("story", "corpus", "alpha", "zulu"))


# -- near-duplicates (MinHash LSH) ----------------------------------------------------------------


def test_one_word_paraphrase_is_a_near_duplicate_not_an_exact_copy() -> None:
    needs_datasketch()
    train = [{"prompt": "first row", "response": "nothing here"}, {"prompt": TWENTY}]
    evals = [{"prompt": PARAPHRASE.upper() + "."}, {"prompt": "first row"}]
    report = find_contamination(train, evals, n=13, near_dup=0.8)
    item = report.items[0]
    assert (item.eval_row, item.methods, item.near_dup_train_row) == (1, ("near_dup",), 2)
    assert item.similarity == pytest.approx(19 / 21)
    assert [i.methods for i in report.items[1:]] == [("prompt",)]  # "first row" has another response
    assert find_contamination(train, evals, n=13).contaminated == 1  # without near_dup: not found
    with pytest.raises(ContaminationError, match=r"1 near-duplicates \(Jaccard >= 0.8\)"):
        enforce_contamination_policy(report, "refuse")
    assert find_contamination(train, evals, near_dup=0.95).items[0].near_dup_train_row is None


def test_signatures_equal_datasketch_minhash() -> None:
    needs_datasketch()
    import numpy as np
    from datasketch import MinHash

    from provenir.data.near_dup import NUM_PERM, SEED, signatures

    rows = [{"prompt": SENTENCE}, {"prompt": TWENTY, "response": "Café, naïve!"}, {"prompt": "?"}]
    analysed = contamination._analyse(rows, 13, None, "prompt", np)
    words = analysed.word_rows()
    perms = MinHash(num_perm=NUM_PERM, seed=SEED, scheme="affine32").permutations
    sig = signatures(words, perms, np)
    for r in range(2):
        reference = MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=zlib.crc32, scheme="affine32")
        reference.update_batch(list(words.word_set(r)))
        assert np.array_equal(sig[:, r], reference.hashvalues)
    assert (sig[:, 2] == np.iinfo(np.uint32).max).all()  # no words


def test_near_duplicates_agree_with_exact_jaccard(monkeypatch: pytest.MonkeyPatch) -> None:
    """No reported pair is below the threshold; every pair at Jaccard >= 0.9 is found, across chunks."""
    needs_datasketch()
    rng = random.Random(7)
    vocab = [f"v{i}" for i in range(400)]
    train = [{"prompt": " ".join(rng.sample(vocab, rng.randint(8, 30)))} for _ in range(400)]
    evals = []
    for _ in range(60):
        words = list(rng.choice(train)["prompt"].split())
        for _ in range(rng.randint(0, 4)):  # drop, add or swap a few words
            op = rng.randrange(3)
            if op == 0 and len(words) > 1:
                words.pop(rng.randrange(len(words)))
            elif op == 1:
                words.append(rng.choice(vocab))
            else:
                words[rng.randrange(len(words))] = rng.choice(vocab)
        evals.append({"prompt": " ".join(words)})

    def jaccard(a: str, b: str) -> float:
        x, y = set(a.split()), set(b.split())
        return len(x & y) / len(x | y)

    best = [max(jaccard(e["prompt"], t["prompt"]) for t in train) for e in evals]
    monkeypatch.setattr(contamination, "_CHUNK_ROWS", 64)
    report = find_contamination(train, evals, n=50, near_dup=0.8)
    near = {i.eval_row - 1: i for i in report.items if i.near_dup_train_row is not None}
    for e, item in near.items():
        sim = jaccard(evals[e]["prompt"], train[item.near_dup_train_row - 1]["prompt"])
        assert sim == pytest.approx(item.similarity) and sim >= 0.8
    strong = {e for e, s in enumerate(best) if s >= 0.9}
    assert strong and strong <= set(near)
    assert set(near) <= {e for e, s in enumerate(best) if s >= 0.8}


def test_results_do_not_depend_on_python_hash_seed(tmp_path: Path) -> None:
    """Two processes with different PYTHONHASHSEED give the same report (near-duplicates included)."""
    needs_datasketch()
    script = tmp_path / "run.py"
    script.write_text(
        "import json, random\n"
        "from provenir.data.contamination import find_contamination\n"
        "rng = random.Random(11)\n"
        "vocab = [f'w{i}' for i in range(300)]\n"
        "train = [{'prompt': ' '.join(rng.sample(vocab, 20)), 'response': ' '.join(rng.sample(vocab, 5))}"
        " for _ in range(300)]\n"
        "evals = []\n"
        "for _ in range(80):\n"
        "    w = rng.choice(train)['prompt'].split()\n"
        "    w[rng.randrange(20)] = rng.choice(vocab); w[rng.randrange(20)] = rng.choice(vocab)\n"
        "    evals.append({'prompt': ' '.join(w), 'response': rng.choice(vocab)})\n"
        "evals += [dict(t) for t in train[:3]]\n"
        "print(json.dumps(find_contamination(train, evals, n=5, fields=['prompt'], near_dup=0.7).to_dict(), sort_keys=True))\n"
    )
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": ":".join(sys.path)}
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, check=True
        )
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
    assert sum(1 for i in outputs[0]["items"] if "near_dup" in i["methods"]) > 40


def test_near_dup_without_datasketch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasketch", None)  # as if not installed
    with pytest.raises(DataError, match=r"needs datasketch: pip install 'provenir\[dedup\]'"):
        find_contamination([{"p": "a b"}], [{"p": "a b"}], near_dup=0.8)
    assert find_contamination([{"p": "a b"}], [{"p": "a b"}]).contaminated == 1  # the rest works without it


def test_near_dup_threshold_is_validated() -> None:
    needs_datasketch()
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(DataError, match="between 0 and 1"):
            find_contamination([{"p": "a"}], [{"p": "a"}], near_dup=bad)


# -- wiring: config, load_train_data (manifest summary), CLI ------------------------------------------


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_load_train_data_records_every_check_and_refuses_on_near_duplicates(tmp_path: Path) -> None:
    needs_datasketch()
    from provenir.core.config import RunConfig
    from provenir.data.loading import load_train_data

    train = _jsonl(
        tmp_path / "train.jsonl", [{"prompt": TWENTY, "response": "ok"}, {"prompt": "Hi", "response": "Yo"}]
    )
    held = _jsonl(
        tmp_path / "eval.jsonl",
        [{"prompt": PARAPHRASE, "response": "ok"}, {"prompt": "hi!", "response": "yo"}],
    )

    def config(**data: object) -> RunConfig:
        return RunConfig.from_dict({"data": {"path": str(train), "eval_path": str(held), **data}})

    with pytest.warns(ContaminationWarning):
        recorded = load_train_data(
            config(contamination_check="warn", contamination_near_dup=0.8)
        ).contamination
    assert recorded is not None and recorded["mode"] == "warn" and recorded["contaminated"] == 2
    assert {m: v["eval_rows"] for m, v in recorded["methods"].items()} == {
        "exact": [2], "prompt": [2], "ngram": [2], "near_dup": [1, 2],
    }  # fmt: skip
    with pytest.warns(ContaminationWarning):
        recorded = load_train_data(config(contamination_check="warn")).contamination
    assert (
        recorded is not None
        and "near_dup" not in recorded["methods"]
        and recorded["near_dup_threshold"] is None
    )
    short = _jsonl(tmp_path / "short.jsonl", [{"prompt": PARAPHRASE, "response": "ok"}])
    with pytest.raises(ContaminationError, match="1 near-duplicates"):
        load_train_data(
            RunConfig.from_dict(
                {"data": {"path": str(train), "eval_path": str(short), "contamination_check": "refuse",
                          "contamination_near_dup": 0.8}}
            )
        )  # fmt: skip


def test_near_dup_config_is_validated() -> None:
    from provenir.core.config import RunConfig
    from provenir.core.errors import ConfigError

    assert RunConfig.from_dict({"data": {"contamination_near_dup": 0.8}}).data.contamination_near_dup == 0.8
    for bad in (0, 1, 1.5):
        with pytest.raises(ConfigError, match="data.contamination_near_dup"):
            RunConfig.from_dict({"data": {"contamination_near_dup": bad}})


def test_cli_near_dup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    needs_datasketch()
    from provenir.cli.main import main

    train = _jsonl(tmp_path / "t.jsonl", [{"prompt": TWENTY}])
    held = _jsonl(tmp_path / "e.jsonl", [{"prompt": PARAPHRASE}, {"prompt": "other"}])
    for argv, code in (([], 0), (["--near-dup", "0.8"], 1)):
        with pytest.raises(SystemExit) as exc:
            main(["data", "contamination", str(train), str(held), "--strict", *argv])
        assert exc.value.code == code
    out = capsys.readouterr().out
    assert "0 of 2 checked eval rows" in out and "1 of 2 checked eval rows" in out and "near_dup" in out
    with pytest.raises(SystemExit) as exc:
        main(["data", "contamination", str(train), str(held), "--near-dup", "1.5"])
    assert exc.value.code == 2 and "between 0 and 1" in capsys.readouterr().err
