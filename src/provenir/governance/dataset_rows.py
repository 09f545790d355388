"""Rows of a dataset to scan or mask, whatever it came as: list of dicts, ``datasets.Dataset``, file.

Governance depends on :mod:`provenir.core` only, so it reads the simple file formats itself
(JSONL streamed line by line, JSON array or ``{"data": [...]}``, CSV) rather than going through
:mod:`provenir.data`. Nested values (chat ``messages`` lists) are walked, and every string gets
a field path such as ``messages[1].content``.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from provenir.core.errors import DataError
from provenir.core.jsonl import iter_jsonl_objects

FILE_SUFFIXES = (".jsonl", ".json", ".csv")


def is_path_like(dataset: Any) -> bool:
    """True when ``dataset`` names a file rather than holding rows."""
    return isinstance(dataset, str | os.PathLike)


def iter_rows(dataset: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Yield ``(row number from 0, row)`` for a list of dicts, a ``datasets.Dataset`` or a file."""
    if is_path_like(dataset):
        yield from enumerate(_read_file(Path(dataset)))
        return
    if isinstance(dataset, Mapping):
        raise DataError(
            "dataset must be a list of rows (dicts), a datasets.Dataset or a file path, not one dict"
        )
    if not isinstance(dataset, Iterable) or isinstance(dataset, str | bytes):
        raise DataError(
            f"cannot scan a {type(dataset).__name__}: pass a list of dicts, a datasets.Dataset or a path"
        )
    for i, row in enumerate(dataset):
        if not isinstance(row, Mapping):
            raise DataError(f"row {i} is a {type(row).__name__}, expected a dict of column -> value")
        yield i, row


def _read_file(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"dataset file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            yield from iter_jsonl_objects(path)
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, Mapping) and isinstance(data.get("data"), list):
                data = data["data"]
            if not isinstance(data, list):
                raise DataError(f"{path}: expected a JSON array of rows (or {{'data': [...]}})")
            for i, row in enumerate(data):
                if not isinstance(row, dict):
                    raise DataError(f"{path}: row {i} is not an object")
                yield row
        elif suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as fh:
                yield from csv.DictReader(fh)
        else:
            raise DataError(
                f"{path}: unsupported dataset format {suffix or '(none)'}; use .jsonl, .json or .csv"
            )
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None


def iter_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside ``value`` with its field path (``messages[0].content``)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from iter_strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from iter_strings(v, f"{path}[{i}]")


def map_strings(value: Any, path: str, fn: Callable[[str, str], str]) -> Any:
    """A copy of ``value`` with every string ``s`` at ``path`` replaced by ``fn(path, s)``."""
    if isinstance(value, str):
        return fn(path, value)
    if isinstance(value, Mapping):
        return {k: map_strings(v, f"{path}.{k}" if path else str(k), fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [map_strings(v, f"{path}[{i}]", fn) for i, v in enumerate(value)]
    return value


def write_rows(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows to ``path`` (format from the suffix), atomically: temp file, fsync, rename."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise DataError(f"{target}: output must end in .jsonl, .json or .csv")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            if suffix == ".jsonl":
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            elif suffix == ".json":
                json.dump(list(rows), fh, ensure_ascii=False, indent=1)
            else:
                materialised = list(rows)
                columns = list(dict.fromkeys(k for row in materialised for k in row))
                writer = csv.DictWriter(fh, fieldnames=columns)
                writer.writeheader()
                writer.writerows(materialised)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
