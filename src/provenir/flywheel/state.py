"""The flywheel's stage ledger: which stages finished, from what inputs, into which hashed file.

``flywheel_state.json`` in the flywheel folder holds, per completed stage, its output path, the
output's SHA-256 and a *fingerprint*: the hash of the stage's parameters and of its inputs'
hashes. A stage is skipped on a re-run only when its fingerprint is unchanged and its output
file still hashes the same; otherwise it runs again (and so, through their fingerprints, do the
stages after it whose inputs changed). The ledger is rewritten atomically after each stage, so
an interruption loses at most the stage in progress.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from provenir.core.atomic import atomic_write_json
from provenir.core.errors import DataError
from provenir.core.hashing import sha256_file
from provenir.core.manifest import utc_now

__all__ = ["STATE_FILENAME", "StageLedger", "StageRecord"]

STATE_FILENAME = "flywheel_state.json"
STATE_SCHEMA_VERSION = 1


@dataclass
class StageRecord:
    """One completed stage: ``path`` (relative to the flywheel folder), its hash, and counts."""

    fingerprint: str
    path: str
    sha256: str
    completed_at: str
    counts: dict[str, Any]


class StageLedger:
    """Reads and writes ``flywheel_state.json`` in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / STATE_FILENAME
        self.stages: dict[str, StageRecord] = {}
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self.stages = {name: StageRecord(**rec) for name, rec in data["stages"].items()}
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(
                    f"{self.path}: damaged flywheel state ({exc!r}); delete it to re-run every stage"
                ) from None

    def completed(self, stage: str, fingerprint: str) -> StageRecord | None:
        """The stage's record if it can be reused: same fingerprint, output present and unchanged."""
        rec = self.stages.get(stage)
        if rec is None or rec.fingerprint != fingerprint:
            return None
        output = self.folder / rec.path
        if not output.is_file() or sha256_file(output) != rec.sha256:
            return None
        return rec

    def record(self, stage: str, fingerprint: str, output: Path, counts: dict[str, Any]) -> StageRecord:
        """Mark ``stage`` complete with ``output`` (already written) and save the ledger."""
        rec = StageRecord(
            fingerprint=fingerprint,
            path=output.relative_to(self.folder).as_posix(),
            sha256=sha256_file(output),
            completed_at=utc_now(),
            counts=dict(counts),
        )
        self.stages[stage] = rec
        atomic_write_json(
            self.path,
            {
                "schema_version": STATE_SCHEMA_VERSION,
                "stages": {k: asdict(v) for k, v in self.stages.items()},
            },
        )
        return rec
