"""Multi-turn SFT data: a `messages` conversation per row, validated with row numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import DataError
from provenir.data.loading import load_train_data

CHAT = [
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Italy?"},
            {"role": "assistant", "content": "Rome."},
        ]
    },
    {"messages": [{"role": "user", "content": "2 plus 2?"}, {"role": "assistant", "content": "4"}]},
]


def write(tmp_path: Path, rows: list[dict]) -> RunConfig:
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return RunConfig.from_dict({"data": {"path": str(path), "template": "chatml"}})


def test_conversations_load_as_sft(tmp_path: Path) -> None:
    data = load_train_data(write(tmp_path, CHAT))
    assert data.schema == "sft"
    assert data.train[0]["messages"][-1] == {"role": "assistant", "content": "Rome."}


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([], "non-empty list"),
        ([{"role": "user", "content": "hi"}], "must end with a non-empty assistant message"),
        ([{"role": "assistant", "content": "hello"}], "has no user message"),
        ([{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}], "[0] must be"),
        ([{"role": "user", "content": None}, {"role": "assistant", "content": "y"}], "[0] must be"),
    ],
)
def test_bad_conversations_name_the_row(tmp_path: Path, messages: list, fragment: str) -> None:
    with pytest.raises(DataError) as exc:
        load_train_data(write(tmp_path, [CHAT[1], {"messages": messages}]))
    assert "row 2: 'messages'" in str(exc.value) and fragment in str(exc.value)
