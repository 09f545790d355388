"""Streaming JSON Lines reading with errors that name the file and line.

One reader for every JSONL input (datasets, scans, predictions), so a bad line is reported the
same way everywhere: ``data.jsonl: line 17 is not valid JSON (Expecting value)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from provenir.core.errors import DataError


def iter_json_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """``(line number from 1, parsed value)`` for every non-blank line, read one line at a time.

    A UTF-8 byte-order mark on the first line is accepted (Windows editors add one).
    """
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}: line {lineno} is not UTF-8 text (byte {exc.start + 1})") from None
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {lineno} is not valid JSON ({exc.msg})") from None


def iter_jsonl_objects(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every line's JSON object; a line holding anything else is a :class:`DataError`."""
    for lineno, value in iter_json_lines(path):
        if not isinstance(value, dict):
            raise DataError(f"{path}: line {lineno} is a JSON {type(value).__name__}, expected an object")
        yield value
