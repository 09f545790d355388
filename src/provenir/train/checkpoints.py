"""Complete checkpoints only: a completion marker written last, and a resume that trusts nothing else.

Trainer writes ``checkpoint-N`` file by file; a process killed half way leaves a folder that
looks like a checkpoint (``transformers.trainer_utils.get_last_checkpoint`` picks it) but holds a
truncated file or lacks its RNG and trainer state. :class:`CheckpointMarkerCallback` writes
``provenir-complete.json`` into the folder after everything else is on disk: the SHA-256 of every
other file and their :func:`~provenir.core.inputs.file_set_digest`. :func:`find_resume_checkpoint`
resumes from the newest checkpoint that has one, skips the unfinished ones newer than it, and
refuses (rather than skips) a finished one whose files changed since, so a run is never
continued from weights nobody trained.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from provenir.core.atomic import atomic_write_json
from provenir.core.errors import ReproducibilityError
from provenir.core.hashing import sha256_file
from provenir.core.inputs import CheckpointPin, file_set_digest

#: The completion marker's file name inside ``checkpoint-N``.
MARKER_NAME = "provenir-complete.json"
MARKER_FORMAT = "provenir-checkpoint/1"
#: Where :func:`set_aside` moves unfinished checkpoints, under the run folder.
INCOMPLETE_DIR = "checkpoints-incomplete"

_CHECKPOINT_RE = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def checkpoint_files(folder: Path) -> dict[str, str]:
    """Relative POSIX path -> SHA-256 of every file under ``folder`` except the marker."""
    files: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if rel != MARKER_NAME:
                files[rel] = sha256_file(path)
    return dict(sorted(files.items()))


def write_marker(folder: Path) -> CheckpointPin:
    """Hash ``folder`` and write its completion marker atomically; call only once the folder is final."""
    files = checkpoint_files(folder)
    pin = CheckpointPin(name=folder.name, files=files, digest=file_set_digest(files))
    step = _step(folder.name)
    atomic_write_json(
        folder / MARKER_NAME,
        {"format": MARKER_FORMAT, "global_step": step, **pin.model_dump(mode="json")},
    )
    return pin


class CheckpointMarkerCallback(TrainerCallback):
    """Marks each ``checkpoint-N`` complete once Trainer has written all of it.

    Trainer calls ``on_save`` after ``_save_checkpoint`` returned: model, optimizer, scheduler,
    scaler, RNG state and ``trainer_state.json`` are written and ``save_total_limit`` rotation
    has run, so the marker is the folder's last file. Register it before any callback that may
    stop the process in ``on_save``.
    """

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Under DDP/FSDP/DeepSpeed every rank writes its own files (rng_state_<rank>.pth, optimizer
        # shards); rank 0 must not hash the folder before the others have finished.
        _wait_for_every_rank()
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if folder.is_dir():  # absent when Trainer saved elsewhere (hyper-parameter search trials)
            write_marker(folder)


@dataclass(frozen=True)
class ResumePoint:
    """Where a run continues from.

    ``checkpoint``/``pin``: the newest complete checkpoint (``None``: start from step 0).
    ``skipped``: unfinished checkpoints newer than it, newest first, and ``messages`` one line
    per skipped checkpoint for the user.
    """

    checkpoint: Path | None = None
    pin: CheckpointPin | None = None
    skipped: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def find_resume_checkpoint(run_dir: Path) -> ResumePoint:
    """The newest complete, unaltered checkpoint under ``run_dir/checkpoints``.

    Checkpoints without a readable marker are skipped (one message each). A checkpoint whose
    marker no longer matches its files (a file changed, missing or added) raises
    :class:`ReproducibilityError` naming the checkpoint and the file.
    """
    folder = run_dir / "checkpoints"
    candidates = sorted(
        ((step, p) for p in _children(folder) if (step := _step(p.name)) is not None),
        reverse=True,
    )
    skipped: list[Path] = []
    messages: list[str] = []
    for _, path in candidates:
        if not path.is_dir():
            continue
        marker, problem = _read_marker(path)
        if marker is None:
            skipped.append(path)
            messages.append(f"skipping {path.name}: incomplete ({problem})")
            continue
        return ResumePoint(path, verify_checkpoint(path, marker), skipped, messages)
    return ResumePoint(None, None, skipped, messages)


def marked_checkpoints(run_dir: Path) -> list[tuple[int, Path, CheckpointPin]]:
    """``(step, folder, marker)`` of every checkpoint under ``run_dir/checkpoints`` with a readable
    completion marker, oldest first. The markers are read, not yet verified: call
    :func:`verify_checkpoint` before loading anything from one."""
    found = []
    for path in _children(run_dir / "checkpoints"):
        step = _step(path.name)
        if step is None or not path.is_dir():
            continue
        marker, _ = _read_marker(path)
        if marker is not None:
            found.append((step, path, marker))
    return sorted(found, key=lambda item: item[0])


def verify_checkpoint(path: Path, marker: CheckpointPin) -> CheckpointPin:
    """``marker`` when the files of ``path`` are exactly the ones it lists, else ReproducibilityError."""
    refuse = "refusing to resume from it"
    if marker.name != path.name:
        raise ReproducibilityError(
            f"{path.name}: its completion marker was written for {marker.name}; {refuse}"
        )
    if file_set_digest(marker.files) != marker.digest:
        raise ReproducibilityError(
            f"{path.name}: its completion marker's digest does not match its file list "
            f"(the marker was edited); {refuse}"
        )
    actual = checkpoint_files(path)
    for rel, expected in marker.files.items():
        if rel not in actual:
            raise ReproducibilityError(f"{path.name}: {rel} was deleted since it was saved; {refuse}")
        if actual[rel] != expected:
            raise ReproducibilityError(
                f"{path.name}: {rel} changed since it was saved "
                f"(sha256 {expected[:12]}… -> {actual[rel][:12]}…); {refuse}"
            )
    extra = sorted(set(actual) - set(marker.files))
    if extra:
        raise ReproducibilityError(
            f"{path.name}: {extra[0]} was added since it was saved"
            f"{f' (and {len(extra) - 1} more)' if len(extra) > 1 else ''}; {refuse}"
        )
    return marker


def set_aside(run_dir: Path, checkpoints: list[Path]) -> list[Path]:
    """Move unfinished checkpoints to ``run_dir/checkpoints-incomplete``; returns where each went.

    Left in place, Trainer would save into the half-written folder when the resumed run reaches
    that step (stale files included), and ``save_total_limit`` rotation, which sorts by step when
    modification times are close, would keep the stale folder as "most recent" and delete the
    checkpoint just saved.
    """
    target = run_dir / INCOMPLETE_DIR
    moved = []
    for path in checkpoints:
        target.mkdir(parents=True, exist_ok=True)
        dest = target / path.name
        n = 1
        while dest.exists():
            dest, n = target / f"{path.name}.{n}", n + 1
        path.rename(dest)
        moved.append(dest)
    return moved


def _read_marker(path: Path) -> tuple[CheckpointPin | None, str]:
    marker = path / MARKER_NAME
    try:
        raw = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no completion marker; the process was probably stopped while saving it"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"unreadable completion marker: {type(exc).__name__}"
    if not isinstance(raw, dict) or raw.get("format") != MARKER_FORMAT:
        return None, "unreadable completion marker: not a provenir checkpoint marker"
    try:
        return CheckpointPin.model_validate({k: raw.get(k) for k in ("name", "files", "digest")}), ""
    except ValueError:
        return None, "unreadable completion marker: malformed"


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _step(name: str) -> int | None:
    match = _CHECKPOINT_RE.match(name)
    return int(match.group(1)) if match else None


def _wait_for_every_rank() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
