"""The exact rows a run trains and evaluates on, stored once in its run folder.

After loading, scanning/masking, splitting and mixing, the run driver writes the final rows as
RFC 8785 canonical JSON lines (``data/train.jsonl``, ``data/eval.jsonl``). The file's SHA-256 is
therefore :func:`provenir.core.hashing.sha256_rows` of the rows, and it is recorded in the
manifest's ``inputs.training_rows`` / ``inputs.eval_rows``. Every rank of a distributed run reads
this file and checks its hash; none reloads or rescans the source, so what the manifest says was
trained on is what every rank trained on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provenir.core.atomic import atomic_write_bytes
from provenir.core.errors import DataError
from provenir.core.hashing import canonical_json, sha256_rows
from provenir.core.inputs import RowsPin

TRAIN_ROWS_FILE = "data/train.jsonl"
EVAL_ROWS_FILE = "data/eval.jsonl"


def rows_pin(rows: Sequence[dict[str, Any]], rel_path: str) -> RowsPin:
    """The pin of ``rows`` as they would be stored at ``rel_path`` (nothing is written)."""
    return RowsPin(path=rel_path, sha256=sha256_rows(rows), count=len(rows))


def write_rows(run_dir: Path, rel_path: str, rows: Sequence[dict[str, Any]]) -> RowsPin:
    """Store ``rows`` as canonical JSON lines under ``run_dir`` (atomically) and return their pin."""
    data = b"".join(canonical_json(dict(row)) + b"\n" for row in rows)
    atomic_write_bytes(run_dir / rel_path, data)
    return RowsPin(path=rel_path, sha256=hashlib.sha256(data).hexdigest(), count=len(rows))


def read_rows(run_dir: Path, pin: RowsPin) -> list[dict[str, Any]]:
    """The rows ``pin`` names, after checking the stored file still hashes as recorded."""
    path = run_dir / pin.path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"the run's stored rows {pin.path} are missing from {run_dir}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != pin.sha256:
        raise DataError(
            f"the run's stored rows {pin.path} changed: sha256 {pin.sha256[:8]}… -> {actual[:8]}…; "
            "refusing to train on them"
        )
    rows = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    if len(rows) != pin.count:
        raise DataError(f"{pin.path}: {len(rows)} rows, the manifest recorded {pin.count}")
    return rows
