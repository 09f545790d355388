"""The stage ledger of a resumable pipeline (RLAIF, the flywheel): which stages finished, into what.

A ledger is one JSON file. Each completed stage has a record (a mapping); a record that names an
output file also holds that file's SHA-256, and may hold a *fingerprint* (the hash of the stage's
parameters and inputs). A record is reused only while its fingerprint is unchanged and its output
file still hashes the same (:meth:`StageLedger.completed`); otherwise the stage runs again. The
file is rewritten atomically after each stage, so an interruption loses at most the stage in
progress.

::

    ledger = StageLedger(folder / "state.json", {"schema_version": 1, "stages": {}})
    rec = ledger.completed("mine", "stages", fingerprint=fp)
    if rec is None:
        rec = ledger.record("mine", {"fingerprint": fp, **ledger.output(path)}, "stages")
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provenir.core.atomic import atomic_write_json
from provenir.core.errors import DataError
from provenir.core.hashing import sha256_file

__all__ = ["StageLedger"]


class StageLedger:
    """Reads and writes one pipeline's ledger file.

    Args:
        path: the ledger file; read when it exists, else the ledger starts as ``initial``.
        initial: the document of a fresh ledger (its other keys are the pipeline's own).
        output_key: the record key naming a stage's output file.
        relative_outputs: output paths are stored relative to the ledger's folder (else as given).

    Records live in nested mappings of the document named by a *scope*: ``("stages",)`` holds
    the flywheel's, ``("iterations", "2")`` the second RLAIF iteration's.
    """

    def __init__(
        self,
        path: Path,
        initial: Mapping[str, Any],
        *,
        output_key: str = "path",
        relative_outputs: bool = True,
    ) -> None:
        self.path = path
        self.output_key = output_key
        self.relative_outputs = relative_outputs
        self.data: dict[str, Any] = copy.deepcopy(dict(initial))
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise self._damaged(exc) from None
            if not isinstance(data, dict):
                raise self._damaged(f"a JSON {type(data).__name__}, expected an object")
            self.data = data

    def _damaged(self, why: object) -> DataError:
        return DataError(f"{self.path}: damaged stage ledger ({why!r}); delete it to re-run every stage")

    def stages(self, *scope: str, create: bool = False) -> dict[str, dict[str, Any]]:
        """The records under ``scope``: empty when absent (and then added to the ledger with ``create``)."""
        node: Any = self.data
        for key in scope:
            if not isinstance(node, dict):
                break
            node = node.setdefault(key, {}) if create else node.get(key, {})
        if not isinstance(node, dict) or not all(isinstance(r, dict) for r in node.values()):
            raise self._damaged(f"{'.'.join(scope)} is not a mapping of stage records")
        return node

    def output_path(self, rec: Mapping[str, Any]) -> Path:
        """Where the record's output file is."""
        stored = Path(rec[self.output_key])
        return self.path.parent / stored if self.relative_outputs else stored

    def output(self, path: Path) -> dict[str, str]:
        """``{output_key: path, "sha256": ...}`` for a written output, as a record stores it."""
        stored = path.relative_to(self.path.parent).as_posix() if self.relative_outputs else str(path)
        return {self.output_key: stored, "sha256": sha256_file(path)}

    def completed(self, stage: str, *scope: str, fingerprint: str | None = None) -> dict[str, Any] | None:
        """The stage's record if it can be reused: same fingerprint, output present and unchanged."""
        rec = self.stages(*scope).get(stage)
        if rec is None or (fingerprint is not None and rec.get("fingerprint") != fingerprint):
            return None
        if self.output_key in rec:
            output = self.output_path(rec)
            if not output.is_file() or sha256_file(output) != rec.get("sha256"):
                return None
        return rec

    def record(self, stage: str, rec: Mapping[str, Any], *scope: str) -> dict[str, Any]:
        """Mark ``stage`` complete with ``rec`` and save the ledger; returns the stored record."""
        stored = dict(rec)
        self.stages(*scope, create=True)[stage] = stored
        self.save()
        return stored

    def save(self) -> None:
        """Write the ledger atomically (after changing :attr:`data` directly)."""
        atomic_write_json(self.path, self.data)
