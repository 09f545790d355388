"""The audit folder of an artifacts store, and what is done to it as a whole.

``provenir audit ...`` names a store (``--output-dir``), not a log file: these functions find
that store's audit folder (refusing one that holds no log, so an empty answer never reads as a
verified history), check it against the store's manifests, and read its latest tree head::

    from provenir.governance.audit_folder import check_audit_folder, find_audit_folder

    folder = find_audit_folder("artifacts")   # artifacts/audit, which must hold audit.jsonl
    result = check_audit_folder(folder)       # result.ok, result.problems, result.tree_root
"""

from __future__ import annotations

import os
from pathlib import Path

from provenir.core.errors import GovernanceError
from provenir.core.store import RunStore
from provenir.governance.audit import LOG_NAME, AuditLogger, AuditVerification, RecordedHead


def find_audit_folder(
    output_dir: str | os.PathLike[str] | None = None, legacy_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The audit folder of the store at ``output_dir`` (or ``legacy_dir``, the folder itself).

    Raises :class:`GovernanceError` when both are given, or when the folder holds no log.
    """
    if legacy_dir is not None and output_dir is not None:
        raise GovernanceError("give --output-dir (the artifacts root) or the deprecated --dir, not both")
    folder = Path(legacy_dir) if legacy_dir is not None else RunStore(output_dir).audit_dir
    if not (folder / LOG_NAME).is_file():
        # An empty answer ("ok: 0 records") would read as a verified history; say there is none.
        raise GovernanceError(
            f"no audit log in {folder} ({LOG_NAME} not found): nothing was recorded there; point "
            "--output-dir (or $PROVENIR_OUTPUT_DIR) at the artifacts folder that holds your runs"
        )
    return folder


def parse_anchored_head(text: str) -> tuple[int, str]:
    """``SEQ:SHA256`` (as ``provenir audit verify`` prints a head) as ``(seq, hash)``."""
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise GovernanceError(f"invalid --head {text!r}: expected SEQ:SHA256 as printed by `audit verify`")
    return int(seq), digest


def check_audit_folder(
    folder: str | os.PathLike[str], *, expected_head: tuple[int, str] | None = None
) -> AuditVerification:
    """:meth:`AuditLogger.check` of ``folder``, against every tree head sealed in its store's manifests.

    The store is the folder's parent (``<root>/audit`` belongs to ``<root>``).
    """
    folder = Path(folder)
    manifests = RunStore(folder.parent).manifests_dir
    return AuditLogger(folder).check(expected_head=expected_head, manifests_dir=manifests)


def latest_tree_head(
    folder: str | os.PathLike[str], *, write: bool = False, key: str | os.PathLike[str] | None = None
) -> RecordedHead:
    """The newest tree head recorded in ``folder``; with ``write``, one over the whole log first.

    ``key`` signs a written head (default ``$PROVENIR_SIGNING_KEY``). Raises
    :class:`GovernanceError` when the folder holds no tree head.
    """
    logger = AuditLogger(folder)
    if write:
        logger.checkpoint(key)
    latest = logger.latest_checkpoint()
    if latest is None:
        raise GovernanceError(
            f"no tree head in {logger.checkpoints_path}: one is written at the end of every run, "
            "or run `provenir audit checkpoint --write`"
        )
    return latest
