"""Load a training dataset, map its columns to canonical names, and validate every row.

Canonical columns by schema:

* ``sft``: ``prompt``, ``response`` (+ ``system``)
* ``preference``: ``prompt``, ``chosen``, ``rejected`` (+ ``system``)
* ``prompt``: ``prompt`` (+ ``reference``, ``system``) — GRPO and generation

Errors name the file, the row (1-based) and the column, e.g.
``data.jsonl: row 17: column 'response' is null``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenir.core.abstractions import DataSchema, TrainData
from provenir.core.errors import DataError
from provenir.core.hashing import sha256_path, sha256_rows

if TYPE_CHECKING:
    from provenir.core.config import DataConfig, RunConfig

BUILTIN_PREFIX = "builtin:"
BUILTIN_DATASETS: dict[str, str] = {
    "sft-sample": "sft_sample.jsonl",
    "dpo-sample": "dpo_sample.jsonl",
    "prompts-sample": "prompts_sample.jsonl",
}
_TABULAR = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def resolve_data_path(path: str) -> str:
    """Turn ``builtin:<name>`` into the bundled file's path; leave anything else as given."""
    if not path.startswith(BUILTIN_PREFIX):
        return path
    name = path[len(BUILTIN_PREFIX) :]
    if name not in BUILTIN_DATASETS:
        raise DataError(f"unknown built-in dataset {name!r}; available: {', '.join(sorted(BUILTIN_DATASETS))}")
    return str(resources.files("provenir.data") / "builtin" / BUILTIN_DATASETS[name])


def dataset_hash(path: str) -> str:
    """SHA-256 of a dataset file or folder (streamed), as recorded in the manifest."""
    local = Path(resolve_data_path(path))
    if local.exists():
        return sha256_path(local)
    raise DataError(f"dataset not found: {path}")


def read_rows(path: str) -> list[dict[str, Any]]:
    """Read every row of a local JSONL/JSON/CSV/Parquet file or folder of them."""
    local = Path(resolve_data_path(path))
    if local.is_dir():
        files = sorted(f for f in local.rglob("*") if f.suffix.lower() in _TABULAR)
        if not files:
            raise DataError(f"{local}: folder has no .jsonl/.json/.csv/.parquet files")
        return [row for f in files for row in read_rows(str(f))]
    if not local.is_file():
        raise DataError(f"dataset not found: {path}")
    suffix = local.suffix.lower()
    if suffix not in _TABULAR:
        raise DataError(f"{local}: unsupported file type {suffix or '(none)'}; use .jsonl, .json, .csv or .parquet")
    if local.stat().st_size == 0:
        raise DataError(f"{local}: file is empty")
    if suffix == ".jsonl":
        rows = _read_jsonl(local)
    elif suffix == ".json":
        rows = _read_json(local)
    else:
        rows = _read_with_datasets(local, _TABULAR[suffix])
    if not rows:
        raise DataError(f"{local}: no rows")
    return rows


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}: line {lineno} is not UTF-8 text") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {lineno} is not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {lineno} is a JSON {type(row).__name__}, expected an object")
            rows.append(row)
    return rows


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{path}: expected a JSON list of objects (or {{'data': [...]}})")
    return data


def _read_with_datasets(path: Path, builder: str) -> list[dict[str, Any]]:
    import datasets

    if builder == "csv":
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text") from None
    try:
        ds = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:  # datasets wraps parser errors in many types
        raise DataError(f"{path}: cannot read as {builder}: {str(exc).splitlines()[0]}") from None
    return ds.to_list()


def _required_columns(schema: DataSchema, cfg: DataConfig) -> dict[str, str]:
    """Canonical column -> source column."""
    if schema == "sft":
        return {"prompt": cfg.prompt_field, "response": cfg.response_field}
    if schema == "preference":
        return {"prompt": cfg.prompt_field, "chosen": cfg.chosen_field, "rejected": cfg.rejected_field}
    return {"prompt": cfg.prompt_field}


def canonicalize(rows: list[dict[str, Any]], schema: DataSchema, cfg: DataConfig, source: str) -> list[dict[str, Any]]:
    """Map columns to canonical names and check every row; the error names the first bad row."""
    required = _required_columns(schema, cfg)
    optional = {"system": cfg.system_field} if cfg.system_field else {}
    if schema == "prompt":
        # A reference answer, if present, lets GRPO rewards and evaluation compare against it.
        for candidate in ("reference", cfg.response_field):
            if rows and candidate in rows[0]:
                optional["reference"] = candidate
                break
    present = set(rows[0]) if rows else set()
    missing = [src for src in required.values() if src not in present]
    if missing:
        raise DataError(
            f"{source}: {schema} data needs column(s) {', '.join(repr(m) for m in missing)}; "
            f"found {', '.join(repr(c) for c in sorted(present)) or 'none'}"
        )
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows, start=1):
        item: dict[str, Any] = {}
        for canon, src in {**required, **optional}.items():
            value = row.get(src)
            if src not in row:
                if canon in required:
                    raise DataError(f"{source}: row {i}: missing column {src!r}")
                continue
            if value is None:
                raise DataError(f"{source}: row {i}: column {src!r} is null")
            if not isinstance(value, str):
                raise DataError(f"{source}: row {i}: column {src!r} must be text, got {type(value).__name__}")
            if canon in required and not value.strip():
                raise DataError(f"{source}: row {i}: column {src!r} is empty")
            item[canon] = value
        out.append(item)
    return out


def schema_for(config: RunConfig) -> DataSchema:
    """The data schema an algorithm trains on."""
    return {"sft": "sft", "dpo": "preference", "grpo": "prompt"}[config.algorithm]  # type: ignore[return-value]


def load_train_data(config: RunConfig) -> TrainData:
    """Load, canonicalise and hash the training (and evaluation) data of a run."""
    cfg = config.data
    schema = schema_for(config)
    rows = canonicalize(read_rows(cfg.path), schema, cfg, cfg.path)
    if cfg.max_samples is not None:
        rows = rows[: cfg.max_samples]
    eval_rows: list[dict[str, Any]] | None = None
    eval_hash: str | None = None
    if cfg.eval_path:
        eval_rows = canonicalize(read_rows(cfg.eval_path), schema, cfg, cfg.eval_path)
        eval_hash = dataset_hash(cfg.eval_path)
    elif cfg.eval_split > 0:
        rows, eval_rows = split_rows(rows, cfg.eval_split, config.seed)
        eval_hash = sha256_rows(eval_rows)
    return TrainData(
        train=rows,
        schema=schema,
        eval=eval_rows,
        path=cfg.path,
        dataset_hash=dataset_hash(cfg.path),
        eval_dataset_hash=eval_hash,
    )


def split_rows(rows: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Seeded shuffle split into (train, eval); at least one row on each side."""
    import random

    if len(rows) < 2:
        raise DataError("cannot split a dataset of fewer than 2 rows into train and eval")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(rows) - 1, max(1, round(len(rows) * fraction)))
    eval_idx = set(order[:n_eval])
    train = [r for i, r in enumerate(rows) if i not in eval_idx]
    held = [r for i, r in enumerate(rows) if i in eval_idx]
    return train, held

