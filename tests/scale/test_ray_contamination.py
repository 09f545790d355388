"""``provenir data contamination --executor ray`` reports what the local check reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenir.data.contamination import check_train_shard, find_contamination, merge_shard_matches
from provenir.testing.cli import run_cli

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "wizards",
    "quietly",
    "judge",
    "boxing",
    "matches",
]


def _rows(path: Path, count: int, offset: int) -> Path:
    """Rows of shuffled words; rows whose number is a multiple of 9 are the same for every offset."""
    with path.open("w", encoding="utf-8") as fh:
        for i in range(count):
            step = 1 if i % 9 == 0 else offset + 3
            words = [WORDS[(i * 7 + j * step) % len(WORDS)] for j in range(16 + i % 5)]
            row = {"prompt": f"q{i % 40} " + " ".join(words[:6]), "response": " ".join(words)}
            fh.write(json.dumps(row) + "\n")
    return path


def test_shards_merge_to_the_single_pass_report(tmp_path: Path) -> None:
    """Slices checked separately (in this process) merge to the one-pass report, near-dups included."""
    from provenir.data.loading import read_rows

    train = read_rows(str(_rows(tmp_path / "train.jsonl", 300, 1)))
    evals = read_rows(str(_rows(tmp_path / "eval.jsonl", 60, 2)))
    options = {"n": 5, "near_dup": 0.5}
    whole = find_contamination(train, evals, **options)
    parts = [check_train_shard(train[i : i + 70], i, evals, **options) for i in range(0, 300, 70)]
    assert merge_shard_matches(parts, evals, **options).to_dict() == whole.to_dict()
    assert whole.items  # the fixture really overlaps


@pytest.mark.usefixtures("ray_cluster")
def test_ray_contamination_report_equals_local(tmp_path: Path, capsys) -> None:
    train = _rows(tmp_path / "train.jsonl", 400, 1)
    evals = _rows(tmp_path / "eval.jsonl", 50, 2)
    args = ["data", "contamination", str(train), str(evals), "--n", "5", "--json"]
    assert run_cli(args) == 0
    local = json.loads(capsys.readouterr().out)
    assert run_cli([*args, "--executor", "ray"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote.pop("executor")["executor"] == "ray"
    assert remote == local and local["items"]
