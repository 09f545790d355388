"""Load a training dataset, map its columns to canonical names, and validate every row.

Sources: a local JSONL / JSON / CSV / Parquet file, a folder of them, ``builtin:<name>``, or a
Hugging Face hub id (``owner/name``, its ``train`` split, through ``datasets.load_dataset``).

Canonical columns by schema:

* ``sft``: ``prompt``, ``response`` (+ ``system``)
* ``preference``: ``prompt``, ``chosen``, ``rejected`` (+ ``system``)
* ``prompt``: ``prompt`` (+ ``reference``, ``system``) — GRPO and generation

Errors name the file, the row (1-based, within that file) and the column, e.g.
``data.jsonl: row 17: column 'response' is null``.

Hashes: a local file or folder is hashed over its bytes, streamed (:func:`provenir.core.hashing.sha256_path`);
a hub dataset over its rows' canonical JSON (:func:`provenir.core.hashing.sha256_rows`). The same
function serves ``provenir data inspect`` and the run manifest, so the two always agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenir.core.abstractions import DataSchema, TrainData
from provenir.core.errors import DataError
from provenir.core.hashing import sha256_json, sha256_path, sha256_rows
from provenir.core.jsonl import iter_jsonl_objects
from provenir.core.library_output import quiet_libraries

if TYPE_CHECKING:
    from provenir.core.config import DataConfig, RunConfig

BUILTIN_PREFIX = "builtin:"
BUILTIN_DATASETS: dict[str, str] = {
    "sft-sample": "sft_sample.jsonl",
    "dpo-sample": "dpo_sample.jsonl",
    "prompts-sample": "prompts_sample.jsonl",
    # Held out: never in the training samples nor in the tiny model's pretraining corpus.
    "sft-eval": "sft_eval.jsonl",
    "prompts-eval": "prompts_eval.jsonl",
    "arithmetic-prompts": "arithmetic_prompts.jsonl",
    "arithmetic-eval": "arithmetic_eval.jsonl",
}
_TABULAR = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
# owner/name or name, as the hub spells repository ids; anything else that does not exist is a missing path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


@dataclass
class LoadedRows:
    """Raw rows of a dataset, grouped by the file they came from, plus the dataset's hash."""

    parts: list[tuple[str, list[dict[str, Any]]]]
    dataset_hash: str

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every row, in file order."""
        return [row for _, rows in self.parts for row in rows]


def resolve_data_path(path: str) -> str:
    """Turn ``builtin:<name>`` into the bundled file's path; leave anything else as given."""
    if not path.startswith(BUILTIN_PREFIX):
        return path
    name = path[len(BUILTIN_PREFIX) :]
    if name not in BUILTIN_DATASETS:
        raise DataError(
            f"unknown built-in dataset {name!r}; available: {', '.join(sorted(BUILTIN_DATASETS))}"
        )
    return str(resources.files("provenir.data") / "builtin" / BUILTIN_DATASETS[name])


def is_hub_id(path: str) -> bool:
    """True when ``path`` names a hub dataset: no such local path, ``owner/name`` shape, no file suffix."""
    if path.startswith(BUILTIN_PREFIX) or Path(path).expanduser().exists():
        return False
    return bool(_HUB_ID.match(path)) and Path(path).suffix.lower() not in _TABULAR


def _hub_only(path: str, split: str | None, revision: str | None, config: str | None) -> None:
    """``split`` / ``revision`` / ``config`` select within a hub dataset; a local file has none."""
    given = [k for k, v in (("split", split), ("revision", revision), ("config", config)) if v is not None]
    if given:
        raise DataError(f"{path}: {', '.join(given)} only apply to hub datasets, and this is a local path")


def dataset_hash(
    path: str, *, split: str | None = None, revision: str | None = None, config: str | None = None
) -> str:
    """SHA-256 of a dataset as recorded in the manifest: file/folder bytes (streamed) or hub rows."""
    local = Path(resolve_data_path(path)).expanduser()
    if local.exists():
        _hub_only(path, split, revision, config)
        return sha256_path(local)
    if is_hub_id(path):
        return sha256_rows(_read_hub(path, split=split, revision=revision, config=config))
    raise DataError(f"dataset not found: {path}")


def load_rows(
    path: str, *, split: str | None = None, revision: str | None = None, config: str | None = None
) -> LoadedRows:
    """Read a dataset once: its rows per file and its hash (what :func:`load_train_data` uses)."""
    local = Path(resolve_data_path(path)).expanduser()
    if local.exists():
        _hub_only(path, split, revision, config)
        return LoadedRows(parts=_read_local(local), dataset_hash=sha256_path(local))
    if is_hub_id(path):
        rows = _read_hub(path, split=split, revision=revision, config=config)
        return LoadedRows(parts=[(path, rows)], dataset_hash=sha256_rows(rows))
    raise DataError(f"dataset not found: {path}")


def read_rows(path: str) -> list[dict[str, Any]]:
    """Read every row of a local JSONL/JSON/CSV/Parquet file, a folder of them, or a hub dataset."""
    return load_rows(path).rows


def _read_local(local: Path) -> list[tuple[str, list[dict[str, Any]]]]:
    if local.is_dir():
        files = sorted(f for f in local.rglob("*") if f.is_file() and f.suffix.lower() in _TABULAR)
        if not files:
            raise DataError(f"{local}: folder has no .jsonl/.json/.csv/.parquet files")
        return [(str(f), _read_file(f)) for f in files]
    return [(str(local), _read_file(local))]


def _read_file(local: Path) -> list[dict[str, Any]]:
    suffix = local.suffix.lower()
    if suffix not in _TABULAR:
        raise DataError(
            f"{local}: unsupported file type {suffix or '(none)'}; use .jsonl, .json, .csv or .parquet"
        )
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
    return list(iter_jsonl_objects(path))


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of objects (or {{'data': [...]}})")
    for i, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {i} is a JSON {type(row).__name__}, expected an object")
    return data


def _read_with_datasets(path: Path, builder: str) -> list[dict[str, Any]]:
    import datasets

    if builder == "csv":
        _check_utf8(path)
    try:
        with quiet_libraries():  # after the import: datasets sets up its logger when first imported
            ds = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as exc:  # datasets wraps parser errors in many types
        raise DataError(f"{path}: cannot read as {builder}: {_first_line(exc)}") from None
    return ds.to_list()


def _check_utf8(path: Path) -> None:
    """Streamed UTF-8 check naming the line of the first bad byte (CSV text is otherwise decoded lazily)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError:
                raise DataError(f"{path}: line {lineno} is not UTF-8 text") from None
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise DataError(f"{path}: ends in the middle of a UTF-8 character") from None


def _read_hub(
    repo_id: str, *, split: str | None = None, revision: str | None = None, config: str | None = None
) -> list[dict[str, Any]]:
    """One split (default ``train``) of a hub dataset, as rows; a clear error when it cannot be fetched."""
    from provenir.core.hub_access import offline_requested, unreachable_reason

    if not offline_requested():
        # Without network, the hub client retries each request for about half a minute.
        reason = unreachable_reason()
        if reason is not None:
            raise DataError(
                f"{repo_id!r} is not a local file or folder, and the Hugging Face hub is unreachable "
                f"({reason}); use a local file, or set HF_HUB_OFFLINE=1 to read a copy already in the "
                "Hugging Face cache"
            )
    import datasets

    split = split or "train"
    try:
        with quiet_libraries():  # after the import: datasets sets up its logger when first imported
            ds = datasets.load_dataset(repo_id, name=config, split=split, revision=revision)
    except Exception as exc:  # offline, missing, gated, or no train split: all need the same advice
        raise DataError(
            f"{repo_id!r} is not a local file or folder, and as a hub dataset it could not be loaded "
            f"({_first_line(exc)}); without network access use a local file, or a copy already in the "
            "Hugging Face cache with HF_DATASETS_OFFLINE=1"
        ) from None
    rows = ds.to_list()
    if not rows:
        raise DataError(f"hub dataset {repo_id!r}: the {split} split has no rows")
    return rows


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- schema ----------------------------------------------------------------------------------------


def _required_columns(schema: DataSchema, cfg: DataConfig) -> dict[str, str]:
    """Canonical column -> source column."""
    if schema == "sft":
        return {"prompt": cfg.prompt_field, "response": cfg.response_field}
    if schema == "preference":
        return {"prompt": cfg.prompt_field, "chosen": cfg.chosen_field, "rejected": cfg.rejected_field}
    return {"prompt": cfg.prompt_field}


def detect_schema(rows: Iterable[Mapping[str, Any]], cfg: DataConfig | None = None) -> DataSchema:
    """Which schema the rows hold, from their columns: preference > sft > prompt-only.

    Column names come from ``cfg`` (``prompt_field``, ...) or the canonical defaults.
    """
    from provenir.core.config import DataConfig

    cfg = cfg or DataConfig()
    first = next(iter(rows), None)
    if first is None:
        raise DataError("cannot detect the schema of a dataset with no rows")
    columns = set(first)
    for schema in ("preference", "sft", "prompt"):
        if set(_required_columns(schema, cfg).values()) <= columns:
            return schema
    raise DataError(
        f"cannot tell what the data is: found column(s) {_names(columns)}; expected "
        f"{cfg.prompt_field!r}+{cfg.response_field!r} (sft), "
        f"{cfg.prompt_field!r}+{cfg.chosen_field!r}+{cfg.rejected_field!r} (preference) "
        f"or {cfg.prompt_field!r} (prompt-only)"
    )


def _names(columns: Iterable[str]) -> str:
    return ", ".join(repr(c) for c in sorted(columns)) or "none"


def canonicalize(
    rows: list[dict[str, Any]], schema: DataSchema, cfg: DataConfig, source: str
) -> list[dict[str, Any]]:
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
    if schema == "sft" and missing and cfg.messages_field in present:
        return [_chat_row(row, cfg.messages_field, source, i) for i, row in enumerate(rows, start=1)]
    if missing:
        hint = ""
        try:
            detected = detect_schema(rows, cfg)
            hint = f" (the data looks like {detected} data)" if detected != schema else ""
        except DataError:
            pass
        raise DataError(
            f"{source}: {schema} data needs column(s) {', '.join(repr(m) for m in missing)}; "
            f"found {_names(present)}{hint}; map yours with data.prompt_field / response_field / "
            "chosen_field / rejected_field"
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


_ROLES = ("system", "user", "assistant")


def _chat_row(row: dict[str, Any], field: str, source: str, i: int) -> dict[str, Any]:
    """A multi-turn SFT row: ``{"messages": [...]}`` ending with the assistant turn to learn."""
    messages = row.get(field)
    where = f"{source}: row {i}: {field!r}"
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where} must be a non-empty list of {{role, content}} messages")
    clean = []
    for j, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
            raise DataError(f"{where}[{j}] must be {{'role': system|user|assistant, 'content': text}}")
        clean.append({"role": m["role"], "content": m["content"]})
    if clean[-1]["role"] != "assistant" or not clean[-1]["content"].strip():
        raise DataError(f"{where} must end with a non-empty assistant message (the response to learn)")
    if not any(m["role"] == "user" for m in clean):
        raise DataError(f"{where} has no user message")
    return {"messages": clean}


def _canonicalize_parts(loaded: LoadedRows, schema: DataSchema, cfg: DataConfig) -> list[dict[str, Any]]:
    # Per file, so a bad row in a folder is reported by its file and its row within that file.
    return [row for source, rows in loaded.parts for row in canonicalize(rows, schema, cfg, source)]


def inspect_dataset(path: str, sample: int = 3) -> dict[str, Any]:
    """What ``provenir data inspect`` shows: rows, files, columns, schema, hash and the first rows.

    When the columns match a schema every row is validated against it, so a null or empty field
    is reported here (file and row number) rather than at training time.
    """
    loaded = load_rows(path)
    rows = loaded.rows
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    try:
        schema: str = detect_schema(rows)
    except DataError:
        schema = "unknown"
    else:
        from provenir.core.config import DataConfig

        _canonicalize_parts(loaded, schema, DataConfig())  # type: ignore[arg-type]
    return {
        "path": path,
        "rows": len(rows),
        "files": len(loaded.parts),
        "columns": list(columns),
        "schema": schema,
        "dataset_hash": loaded.dataset_hash,
        # default=str: Parquet dates or bytes still print instead of failing the whole command.
        "sample": [json.loads(json.dumps(r, default=str)) for r in rows[:sample]],
    }


def schema_for(config: RunConfig) -> DataSchema:
    """The data schema an algorithm trains on."""
    return {"sft": "sft", "dpo": "preference", "grpo": "prompt"}[config.algorithm]  # type: ignore[return-value]


def load_train_data(config: RunConfig) -> TrainData:
    """Load, canonicalise and hash the training (and evaluation) data of a run.

    ``data.path`` is one source; ``data.sources`` is a weighted mixture of several
    (:mod:`provenir.data.mixture`). Each source is recorded as a
    :class:`~provenir.core.inputs.DatasetSourcePin`. When ``data.contamination_check`` is
    ``warn`` or ``refuse`` and there is evaluation data, the eval rows are checked against the
    training rows here, before training (exact copies, same prompts, n-gram overlap and, with
    ``data.contamination_near_dup``, near-duplicates; see :mod:`provenir.data.contamination`).
    """
    from provenir.core.inputs import DatasetSourcePin

    cfg = config.data
    schema = schema_for(config)
    pins: list[DatasetSourcePin] = []
    if cfg.sources:
        from provenir.data.mixture import interleave

        per_source: list[list[dict[str, Any]]] = []
        for src in cfg.sources:
            loaded = load_rows(src.path, split=src.split, revision=src.revision, config=src.config)
            src_rows = _canonicalize_parts(loaded, schema, cfg)[: src.max_samples]
            per_source.append(src_rows)
            pins.append(
                DatasetSourcePin(
                    role="train",
                    uri=src.path,
                    revision=src.revision,
                    config=src.config,
                    split=src.split,
                    weight=src.weight,
                    sha256=loaded.dataset_hash,
                    rows=len(src_rows),
                )
            )
        rows, used = interleave(per_source, [s.weight for s in cfg.sources], config.seed)
        for pin, n in zip(pins, used, strict=True):
            pin.rows_used = n
        # A mixture's dataset hash covers every source's content and the mixing weights.
        train_hash = sha256_json([p.model_dump(mode="json", exclude={"rows_used"}) for p in pins])
    else:
        assert cfg.path is not None  # DataConfig guarantees path when there are no sources
        loaded = load_rows(cfg.path)
        rows = _canonicalize_parts(loaded, schema, cfg)
        pins.append(DatasetSourcePin(role="train", uri=cfg.path, sha256=loaded.dataset_hash, rows=len(rows)))
        train_hash = loaded.dataset_hash
    if cfg.max_samples is not None:
        rows = rows[: cfg.max_samples]
    eval_rows: list[dict[str, Any]] | None = None
    eval_hash: str | None = None
    if cfg.eval_path:
        loaded_eval = load_rows(cfg.eval_path)
        eval_rows = _canonicalize_parts(loaded_eval, schema, cfg)
        eval_hash = loaded_eval.dataset_hash
        pins.append(DatasetSourcePin(role="eval", uri=cfg.eval_path, sha256=eval_hash, rows=len(eval_rows)))
    elif cfg.eval_split > 0:
        rows, eval_rows = split_rows(rows, cfg.eval_split, config.seed)
        eval_hash = sha256_rows(eval_rows)
    data = TrainData(
        train=rows,
        schema=schema,
        eval=eval_rows,
        path=cfg.path,
        dataset_hash=train_hash,
        eval_dataset_hash=eval_hash,
        sources=pins,
    )
    mode = cfg.contamination_check
    if mode != "off" and eval_rows:
        from provenir.data.contamination import enforce_contamination_policy, find_contamination

        report = find_contamination(
            rows, eval_rows, n=cfg.contamination_ngram, near_dup=cfg.contamination_near_dup
        )
        enforce_contamination_policy(report, mode)
        # Counts and row numbers per check only: the overlapping text stays out of manifests.
        data.contamination = {"mode": mode, **report.manifest_summary()}
    return data


def split_rows(
    rows: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
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
