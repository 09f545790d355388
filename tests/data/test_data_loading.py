"""Dataset loading: every kind of bad input is a one-line DataError naming the file, line or row."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from provenir.core.config import DataConfig, RunConfig
from provenir.core.errors import DataError
from provenir.core.hashing import sha256_path, sha256_rows
from provenir.data.contamination import ContaminationError, ContaminationWarning
from provenir.data.loading import (
    dataset_hash,
    detect_schema,
    inspect_dataset,
    is_hub_id,
    load_rows,
    load_train_data,
    read_rows,
    resolve_data_path,
    split_rows,
)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


SFT = [{"prompt": f"question {i}", "response": f"answer {i}"} for i in range(10)]


def one_line(exc: pytest.ExceptionInfo[DataError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# -- unreadable input --------------------------------------------------------------------------------


def test_non_utf8_jsonl_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_bytes(b'{"prompt": "a", "response": "b"}\n{"prompt": "caf\xe9", "response": "b"}\n')
    with pytest.raises(DataError) as exc:
        read_rows(str(p))
    assert one_line(exc) == f"{p}: line 2 is not UTF-8 text (byte 16)"


def test_non_utf8_csv_and_json(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_bytes(b"prompt,response\na,b\nc,\xff\n")
    with pytest.raises(DataError, match=r"d.csv: line 3 is not UTF-8 text"):
        read_rows(str(csv))
    js = tmp_path / "d.json"
    js.write_bytes(b'[{"prompt": "\xff"}]')
    with pytest.raises(DataError, match=r"d.json: not UTF-8 text"):
        read_rows(str(js))


def test_empty_and_blank_files(tmp_path: Path) -> None:
    empty = tmp_path / "e.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"e.jsonl: file is empty"):
        read_rows(str(empty))
    blank = tmp_path / "b.jsonl"
    blank.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"b.jsonl: no rows"):
        read_rows(str(blank))


def test_invalid_json_line_and_non_object(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text('{"prompt": "a"}\n{"prompt": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2 is not valid JSON"):
        read_rows(str(p))
    p.write_text('{"prompt": "a"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2 is a JSON list, expected an object"):
        read_rows(str(p))


def test_bom_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"prompt": "a", "response": "b"}\n')
    assert read_rows(str(p)) == [{"prompt": "a", "response": "b"}]


def test_missing_and_unsupported(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"dataset not found: .*nope.jsonl"):
        read_rows(str(tmp_path / "nope.jsonl"))
    txt = tmp_path / "d.txt"
    txt.write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match=r"unsupported file type .txt"):
        read_rows(str(txt))
    with pytest.raises(DataError, match=r"unknown built-in dataset 'nope'"):
        read_rows("builtin:nope")


# -- rows and columns ---------------------------------------------------------------------------------


def _config(path: Path | str, **data: object) -> RunConfig:
    return RunConfig.from_dict({"data": {"path": str(path), **data}})


def test_null_field_names_first_bad_row(tmp_path: Path) -> None:
    rows = [dict(r) for r in SFT]
    rows[6]["response"] = None
    rows[8]["response"] = None
    p = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError) as exc:
        load_train_data(_config(p))
    assert one_line(exc) == f"{p}: row 7: column 'response' is null"


def test_null_in_csv_and_parquet(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("prompt,response\na,b\nc,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d.csv: row 2: column 'response' is null"):
        load_train_data(_config(csv))
    datasets = pytest.importorskip("datasets")
    pq = tmp_path / "d.parquet"
    datasets.Dataset.from_list(
        [{"prompt": "a", "response": "b"}, {"prompt": None, "response": "c"}]
    ).to_parquet(str(pq))
    with pytest.raises(DataError, match=r"d.parquet: row 2: column 'prompt' is null"):
        load_train_data(_config(pq))


def test_missing_columns_are_listed_with_a_schema_hint(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "a", "chosen": "b", "rejected": "c"}])
    with pytest.raises(DataError) as exc:
        load_train_data(_config(p))
    message = one_line(exc)
    assert "sft data needs column(s) 'response'" in message
    assert "found 'chosen', 'prompt', 'rejected'" in message and "looks like preference data" in message


def test_column_mapping(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "q", "output": "a", "sys": "s"}])
    data = load_train_data(
        _config(p, prompt_field="instruction", response_field="output", system_field="sys")
    )
    assert data.train == [{"prompt": "q", "response": "a", "system": "s"}]


def test_folder_reports_file_and_row_within_it(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", SFT[:3])
    write_jsonl(folder / "b.jsonl", [SFT[3], {"prompt": "x", "response": ""}])
    (folder / "README.md").write_text("not data", encoding="utf-8")
    assert len(read_rows(str(folder))) == 5
    with pytest.raises(DataError, match=r"b.jsonl: row 2: column 'response' is empty"):
        load_train_data(_config(folder))
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="folder has no .jsonl"):
        read_rows(str(tmp_path / "none"))


def test_all_formats_give_the_same_rows(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = SFT[:4]
    write_jsonl(tmp_path / "d.jsonl", rows)
    (tmp_path / "d.json").write_text(json.dumps({"data": rows}), encoding="utf-8")
    (tmp_path / "d.csv").write_text(
        "prompt,response\n" + "".join(f"{r['prompt']},{r['response']}\n" for r in rows)
    )
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "d.parquet"))
    for suffix in ("jsonl", "json", "csv", "parquet"):
        assert read_rows(str(tmp_path / f"d.{suffix}")) == rows, suffix


# -- schema detection ---------------------------------------------------------------------------------


def test_detect_schema() -> None:
    assert detect_schema([{"prompt": "a", "response": "b"}]) == "sft"
    assert detect_schema([{"prompt": "a", "chosen": "b", "rejected": "c", "response": "d"}]) == "preference"
    assert detect_schema([{"prompt": "a", "reference": "b"}]) == "prompt"
    assert detect_schema([{"q": "a", "a": "b"}], DataConfig(prompt_field="q", response_field="a")) == "sft"
    with pytest.raises(DataError, match=r"cannot tell what the data is: found column\(s\) 'text'"):
        detect_schema([{"text": "a"}])
    with pytest.raises(DataError, match="no rows"):
        detect_schema([])


def test_builtin_datasets_detect_their_schema() -> None:
    assert detect_schema(read_rows("builtin:sft-sample")) == "sft"
    assert detect_schema(read_rows("builtin:dpo-sample")) == "preference"
    assert detect_schema(read_rows("builtin:prompts-sample")) == "prompt"


# -- hashing ------------------------------------------------------------------------------------------


def test_hash_is_streamed_file_bytes_and_shared_with_inspect(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", SFT)
    h = dataset_hash(str(p))
    assert h == sha256_path(p) == load_rows(str(p)).dataset_hash == inspect_dataset(str(p))["dataset_hash"]
    assert load_train_data(_config(p)).dataset_hash == h
    write_jsonl(p, SFT[:-1])
    assert dataset_hash(str(p)) != h


def test_inspect_dataset(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", SFT)
    info = inspect_dataset(str(p), sample=2)
    assert info["rows"] == 10 and info["schema"] == "sft" and info["columns"] == ["prompt", "response"]
    assert info["sample"] == SFT[:2]
    odd = write_jsonl(tmp_path / "o.jsonl", [{"text": "x"}])
    assert inspect_dataset(str(odd))["schema"] == "unknown"


# -- hub ids ------------------------------------------------------------------------------------------


def test_is_hub_id(tmp_path: Path) -> None:
    assert is_hub_id("tatsu-lab/alpaca") and is_hub_id("imdb")
    assert not is_hub_id("data/train.jsonl") and not is_hub_id("builtin:sft-sample")
    assert not is_hub_id("./x/y") and not is_hub_id("/abs/path")
    assert not is_hub_id(str(tmp_path))


def test_hub_dataset_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Couldn't reach 'someone/sft' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as exc:
        read_rows("someone/sft")
    message = one_line(exc)
    assert message.startswith(
        "'someone/sft' is not a local file or folder, and as a hub dataset it could not be loaded"
    )
    assert "HF_DATASETS_OFFLINE=1" in message


def test_hub_dataset_rows_and_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    calls: list[tuple] = []

    def fake(repo_id: str, *, name: str | None, split: str, revision: str | None) -> object:
        calls.append((repo_id, name, split, revision))
        return datasets.Dataset.from_list(SFT)

    monkeypatch.setattr(datasets, "load_dataset", fake)
    data = load_train_data(_config("someone/sft"))
    assert calls == [("someone/sft", None, "train", None)]  # loaded once for rows and hash together
    assert data.train == SFT and data.dataset_hash == sha256_rows(SFT) == dataset_hash("someone/sft")
    assert [(p.uri, p.sha256, p.rows) for p in data.sources] == [("someone/sft", sha256_rows(SFT), len(SFT))]

    # A mixture source selects a config, split and revision of a hub dataset, and records them.
    calls.clear()
    source = {"path": "someone/sft", "config": "en", "split": "validation", "revision": "v1.0"}
    mixed = load_train_data(RunConfig.from_dict({"data": {"sources": [source]}}))
    assert calls == [("someone/sft", "en", "validation", "v1.0")]
    pin = mixed.sources[0]
    assert (pin.config, pin.split, pin.revision, pin.rows_used) == ("en", "validation", "v1.0", len(SFT))
    with pytest.raises(DataError, match="revision only apply to hub datasets"):
        dataset_hash(resolve_data_path("builtin:sft-sample"), revision="v1")


# -- split and contamination policy -------------------------------------------------------------------


def test_split_rows_is_seeded() -> None:
    a = split_rows(SFT, 0.3, seed=1)
    assert a == split_rows(SFT, 0.3, seed=1) and a != split_rows(SFT, 0.3, seed=2)
    assert len(a[1]) == 3 and sorted(map(str, a[0] + a[1])) == sorted(map(str, SFT))
    with pytest.raises(DataError, match="fewer than 2 rows"):
        split_rows(SFT[:1], 0.5, seed=0)


LONG = "the model was trained on a large corpus of public text and evaluated on held out questions"


def _contaminated_pair(tmp_path: Path) -> tuple[Path, Path]:
    train = write_jsonl(tmp_path / "train.jsonl", [*SFT, {"prompt": "intro", "response": LONG}])
    held = write_jsonl(
        tmp_path / "eval.jsonl", [{"prompt": LONG.upper() + "?", "response": "x"}, SFT[0] | {"prompt": "new"}]
    )
    return train, held


def test_contamination_refuse_warn_off(tmp_path: Path) -> None:
    train, held = _contaminated_pair(tmp_path)
    with pytest.raises(ContaminationError) as exc:
        load_train_data(_config(train, eval_path=str(held), contamination_check="refuse"))
    assert "1 of 2 checked eval rows" in one_line(exc) and "eval rows 1" in str(exc.value)
    with pytest.warns(ContaminationWarning, match="eval data is contaminated"):
        data = load_train_data(_config(train, eval_path=str(held), contamination_check="warn"))
    assert data.eval is not None and len(data.eval) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_train_data(_config(train, eval_path=str(held)))  # default off: no check, no warning
        load_train_data(
            _config(train, eval_path=str(held), contamination_check="refuse", contamination_ngram=50)
        )


def test_contamination_config_field_is_validated() -> None:
    from provenir.core.errors import ConfigError

    with pytest.raises(ConfigError, match="data.contamination_check: must be one of"):
        RunConfig.from_dict({"data": {"contamination_check": "maybe"}})
    with pytest.raises(ConfigError, match="data.contamination_ngram: must be >= 1"):
        RunConfig.from_dict({"data": {"contamination_ngram": 0}})
