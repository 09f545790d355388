"""A run's pinned inputs: every difference ``provenir reproduce`` must name, and none it must invent."""

from __future__ import annotations

import hashlib

from provenir.core.hashing import sha256_json
from provenir.core.inputs import (
    CheckpointPin,
    DatasetSourcePin,
    FileSetPin,
    LongRows,
    RowsPin,
    RunInputs,
    TemplatePin,
    diff_file_sets,
    diff_inputs,
    file_set_digest,
)

A, B, C = "a" * 64, "b" * 64, "c" * 64


def _model(files: dict[str, str], *, source: str = "org/m", revision: str | None = "r1") -> FileSetPin:
    return FileSetPin(
        source=source, kind="hub", resolved_revision=revision, files=files, digest=file_set_digest(files)
    )


def _inputs(**changes: object) -> RunInputs:
    base: dict[str, object] = {
        "model": _model({"config.json": A, "model.safetensors": B}),
        "chat_template": TemplatePin(name="chatml", origin="builtin", version="1", sha256=A),
        "datasets": [
            DatasetSourcePin(role="train", uri="data/train.jsonl", sha256=A, rows=10),
            DatasetSourcePin(role="eval", uri="data/eval.jsonl", sha256=B, rows=4),
        ],
        "training_rows": RowsPin(path="inputs/train.jsonl", sha256=A, count=10),
        "eval_rows": RowsPin(path="inputs/eval.jsonl", sha256=B, count=4),
    }
    base.update(changes)
    return RunInputs.model_validate(base)


def test_file_set_digest_is_sha256_of_sorted_path_and_hash_lines() -> None:
    files = {"b.json": B, "a.bin": A}
    expected = hashlib.sha256(f"a.bin\0{A}\nb.json\0{B}\n".encode()).hexdigest()
    assert file_set_digest(files) == expected
    assert file_set_digest({}) == hashlib.sha256(b"").hexdigest()


def test_identical_inputs_have_no_differences() -> None:
    assert diff_inputs(_inputs(), _inputs()) == []
    assert diff_file_sets("model", None, None) == []


def test_a_changed_added_or_removed_model_file_is_named() -> None:
    recorded = _model({"config.json": A, "model.safetensors": B, "old.txt": C})
    current = _model({"config.json": A, "model.safetensors": C, "new.txt": A})
    assert diff_file_sets("model", recorded, current) == [
        "model file model.safetensors changed: sha256 bbbbbbbb… -> cccccccc…",
        "model file new.txt added",
        "model file old.txt removed",
    ]


def test_a_model_that_appeared_or_went_away_is_named() -> None:
    model = _model({"w": A}, source="org/base")
    assert diff_file_sets("model", None, model) == ["model: recorded nothing, now org/base"]
    assert diff_file_sets("model", model, None) == ["model: recorded org/base, now nothing"]


def test_a_moved_hub_revision_is_named() -> None:
    lines = diff_file_sets("model", _model({"w": A}, revision="r1"), _model({"w": A}, revision="r2"))
    assert lines == ["model revision resolved to r2 (recorded r1)"]


def test_every_input_difference_is_named() -> None:
    recorded = _inputs()
    current = _inputs(
        model=_model({"config.json": A, "model.safetensors": C}),
        init_adapter=_model({"adapter.safetensors": A}, source="org/adapter"),
        chat_template=TemplatePin(name="chatml", origin="builtin", version="2", sha256=B),
        datasets=[
            DatasetSourcePin(role="train", uri="data/train.jsonl", sha256=C, rows=10),
            DatasetSourcePin(role="train", uri="data/extra.jsonl", sha256=A, rows=3),
        ],
        training_rows=RowsPin(path="inputs/train.jsonl", sha256=C, count=12),
        eval_rows=None,
    )
    assert diff_inputs(recorded, current) == [
        "model file model.safetensors changed: sha256 bbbbbbbb… -> cccccccc…",
        "initial adapter: recorded nothing, now org/adapter",
        "chat template chatml changed: sha256 aaaaaaaa… -> bbbbbbbb…",
        "eval dataset data/eval.jsonl removed",
        "train dataset data/extra.jsonl added",
        "train dataset changed: data/train.jsonl sha256 aaaaaaaa… -> cccccccc…",
        "training rows changed: sha256 aaaaaaaa… -> cccccccc… (10 -> 12 rows)",
        "eval rows changed: sha256 bbbbbbbb… -> (none) (4 -> 0 rows)",
    ]


def test_a_template_or_eval_rows_that_appeared_are_named() -> None:
    recorded = _inputs(chat_template=None, eval_rows=None)
    lines = diff_inputs(recorded, _inputs())
    assert "chat template chatml changed: sha256 (none) -> aaaaaaaa…" in lines
    assert "eval rows changed: sha256 (none) -> bbbbbbbb… (0 -> 4 rows)" in lines
    assert diff_inputs(_inputs(), recorded)[0] == "chat template chatml changed: sha256 aaaaaaaa… -> (none)"


def test_a_dataset_with_the_same_content_but_other_rows_is_named() -> None:
    current = _inputs(
        datasets=[
            DatasetSourcePin(role="train", uri="data/train.jsonl", sha256=A, rows=7),
            DatasetSourcePin(role="eval", uri="data/eval.jsonl", sha256=B, rows=4),
        ]
    )
    assert diff_inputs(_inputs(), current) == ["train dataset data/train.jsonl: rows 10 -> 7"]


def test_notes_and_the_resumed_checkpoint_are_not_inputs_of_a_replay() -> None:
    resumed = _inputs(
        notes=["model: hub revision not resolved"],
        resumed_checkpoint=CheckpointPin(
            name="checkpoint-10", files={"w": A}, digest=file_set_digest({"w": A})
        ),
    )
    assert diff_inputs(_inputs(), resumed) == []


def test_unmeasured_long_rows_leave_the_hash_of_older_manifests_unchanged() -> None:
    plain = _inputs()
    assert "long_rows" not in plain.model_dump(mode="json")
    measured = _inputs(long_rows=LongRows(max_length=512, training_rows=2, truncated=1, dropped=1))
    dumped = measured.model_dump(mode="json")
    assert dumped["long_rows"]["truncated"] == 1 and dumped["long_rows"]["first_training_rows"] == []
    assert sha256_json(plain.model_dump(mode="json")) != sha256_json(dumped)
