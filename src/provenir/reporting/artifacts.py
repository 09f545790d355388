"""Find a run by id (or manifest path) and read what it left behind, without trusting it blindly.

A report must still render when a manifest was tampered with (that is exactly when someone needs
to look), so :func:`load_run` records the verification outcome instead of raising on it; only a
missing or unparseable manifest is an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenir.core.errors import EvaluationError, ManifestTamperedError
from provenir.core.manifest import ManifestVerification, RunManifest
from provenir.core.signers import SignerPolicy
from provenir.core.store import RunStore
from provenir.eval.harness import EVAL_FILENAME, EvalResult

TRAIN_LOG_FILENAME = "train_log.jsonl"


@dataclass
class RunArtifacts:
    """A run's manifest plus the files of its run folder that the readers use."""

    manifest: RunManifest
    manifest_file: Path
    output_dir: Path
    verification: ManifestVerification
    train_log: list[dict[str, Any]] = field(default_factory=list)
    eval_result: EvalResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def store(self) -> RunStore:
        """The store the run was found in."""
        return RunStore(self.output_dir)

    @property
    def run_dir(self) -> Path:
        """``<output_dir>/runs/<run_id>``."""
        return self.store.run_dir(self.manifest.run_id)


def read_train_log(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Entries of ``train_log.jsonl`` and notes about lines that could not be read."""
    if not path.is_file():
        return [], [f"no {path.name} in the run folder"]
    entries: list[dict[str, Any]] = []
    notes: list[str] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            notes.append(f"{path.name} line {lineno} is not valid JSON; skipped")
            continue
        if isinstance(value, dict):
            entries.append(value)
    return entries, notes


def load_run(
    ref: str | os.PathLike[str],
    output_dir: str | os.PathLike[str] | None = None,
    *,
    policy: SignerPolicy | None = None,
    allow_path: bool = True,
) -> RunArtifacts:
    """Load a run's manifest, verify it (recording, not raising), and read its log and eval.

    ``output_dir`` (default: :func:`~provenir.core.store.default_output_dir`) is only used to
    resolve a run id; a manifest path brings its own artifacts root. The verification is
    :meth:`RunStore.verify`'s under ``policy`` (the signer policy), so a report says what
    ``provenir manifest verify`` and the API say.
    ``allow_path``: see :meth:`RunStore.resolve`. A manifest that is not readable JSON raises
    :class:`ManifestTamperedError` (there is nothing to report on).
    """
    stored = RunStore(output_dir).open(ref, policy=policy, allow_path=allow_path)
    manifest, rdir = stored.manifest, stored.run_dir
    if manifest is None or rdir is None:
        raise ManifestTamperedError(f"{stored.manifest_file}: " + "; ".join(stored.verification.problems))
    log, notes = read_train_log(rdir / TRAIN_LOG_FILENAME)
    eval_result: EvalResult | None = None
    eval_file = rdir / EVAL_FILENAME
    try:
        if eval_file.is_file():
            eval_result = EvalResult.load(eval_file)
        elif manifest.eval is not None:
            # The manifest keeps a summary (no per-item scores): enough for the table, not for paired tests.
            eval_result = EvalResult.from_dict(manifest.eval)
    except EvaluationError as exc:
        notes.append(f"evaluation result unreadable: {exc}")
    return RunArtifacts(
        manifest, stored.manifest_file, stored.store.root, stored.verification, log, eval_result, notes
    )
