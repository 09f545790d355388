"""Find a run by id (or manifest path) and read what it left behind, without trusting it blindly.

A report must still render when a manifest was tampered with (that is exactly when someone needs
to look), so :func:`load_run` records the verification outcome instead of raising on it; only a
missing or unparseable manifest is an error.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenir.core.errors import EvaluationError, ManifestError
from provenir.core.manifest import ManifestVerification, RunManifest, manifests_dir, run_dir
from provenir.eval.harness import EVAL_FILENAME, EvalResult

#: Characters a run id (or a prefix of one) may contain; anything else is treated as a path.
_ID_CHARS = re.compile(r"^[0-9a-f-]{4,36}$")
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
    def run_dir(self) -> Path:
        """``<output_dir>/runs/<run_id>``."""
        return run_dir(self.output_dir, self.manifest.run_id)


def resolve_manifest_file(
    ref: str | os.PathLike[str], output_dir: str | os.PathLike[str], *, allow_path: bool = True
) -> Path:
    """The manifest file for ``ref``: a manifest path, a run id, or a unique run-id prefix.

    ``allow_path=False`` accepts run ids only: use it whenever ``ref`` comes from someone other
    than the local user (a web request), so it can never name a file outside ``output_dir``.
    Raises :class:`ManifestError` naming the folder searched when nothing (or more than one run)
    matches.
    """
    text = os.fspath(ref)
    candidate = Path(text)
    if allow_path and (text.endswith(".json") or candidate.is_file()):
        if not candidate.is_file():
            raise ManifestError(f"manifest not found: {candidate}")
        return candidate
    folder = manifests_dir(output_dir)
    # Only id characters reach the glob, so a ref cannot walk out of the manifests folder.
    if not _ID_CHARS.match(text):
        raise ManifestError(
            f"{text!r} is neither a manifest file nor a run id (a UUID such as "
            "123e4567-e89b-42d3-a456-426614174000, or a unique prefix of one)"
        )
    matches = sorted(folder.glob(f"{text}*.json")) if folder.is_dir() else []
    if not matches:
        raise ManifestError(
            f"no run {text!r} in {folder} (use --output-dir to point at another artifacts folder)"
        )
    if len(matches) > 1:
        shown = ", ".join(p.stem for p in matches[:5])
        raise ManifestError(f"run id prefix {text!r} is ambiguous in {folder}: {shown}")
    return matches[0]


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
    output_dir: str | os.PathLike[str] = "artifacts",
    *,
    trusted_public_key: str | None = None,
    allow_path: bool = True,
) -> RunArtifacts:
    """Load a run's manifest, verify it (recording, not raising), and read its log and eval.

    ``output_dir`` is only used to resolve a run id; a manifest path brings its own artifacts
    root (``<output_dir>/manifests/<run_id>.json``). ``allow_path``: see :func:`resolve_manifest_file`.
    """
    mfile = resolve_manifest_file(ref, output_dir, allow_path=allow_path)
    manifest, raw = RunManifest.load_with_text(mfile)
    root = mfile.resolve().parent.parent
    rdir = run_dir(root, manifest.run_id)
    verification = manifest.check(
        raw=raw, trusted_public_key=trusted_public_key, run_directory=rdir if rdir.is_dir() else None
    )
    if not rdir.is_dir():
        verification.problems.append(f"run folder {rdir} is missing: outputs not checked")
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
    return RunArtifacts(manifest, mfile, root, verification, log, eval_result, notes)
