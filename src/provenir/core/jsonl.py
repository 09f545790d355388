"""JSON Lines: streaming reading with errors that name the file and line, and one writer.

One reader for every JSONL input (datasets, scans, predictions, pipeline stage files), so a bad
line is reported the same way everywhere: ``data.jsonl: line 17 is not valid JSON (Expecting
value)``; one writer, so every stage file is written atomically in the same canonical form.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from provenir.core.atomic import atomic_write_text
from provenir.core.errors import DataError


def iter_json_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """``(line number from 1, parsed value)`` for every non-blank line, read one line at a time.

    A UTF-8 byte-order mark on the first line is accepted (Windows editors add one).
    """
    with open(path, "rb") as fh:
        yield from parse_json_lines(fh, source=path)


def parse_json_lines(
    lines: Iterable[bytes], *, source: str | os.PathLike[str], first_line: int = 1
) -> Iterator[tuple[int, Any]]:
    """:func:`iter_json_lines` over raw lines already read (a byte range of a file, say), numbered
    from ``first_line``; errors name ``source`` and the line as the file reader does."""
    for lineno, raw in enumerate(lines, start=first_line):
        try:
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{source}: line {lineno} is not UTF-8 text (byte {exc.start + 1})") from None
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}: line {lineno} is not valid JSON ({exc.msg})") from None


def iter_jsonl_objects(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every line's JSON object; a line holding anything else is a :class:`DataError`."""
    yield from json_objects(iter_json_lines(path), source=path)


def json_objects(
    numbered: Iterable[tuple[int, Any]], *, source: str | os.PathLike[str]
) -> Iterator[dict[str, Any]]:
    """The values of ``(line, value)`` pairs, each of which must be a JSON object."""
    for lineno, value in numbered:
        if not isinstance(value, dict):
            raise DataError(f"{source}: line {lineno} is a JSON {type(value).__name__}, expected an object")
        yield value


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every line's JSON object, as a list (see :func:`iter_jsonl_objects`)."""
    return list(iter_jsonl_objects(path))


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``rows`` as JSON Lines, atomically; returns the path.

    Keys are sorted and non-ASCII text is kept as is, so the same rows always give the same bytes
    (a stage's output is identified by its SHA-256).
    """
    text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    return atomic_write_text(path, text)
