"""The audit log's full check: chain, record hashes, Merkle root, and every sealed tree head.

One streamed pass over ``audit.jsonl`` (:meth:`provenir.governance.audit.AuditLogger.check`)
recomputes each record's hash and link, the RFC 9162 root at every size a tree head names, and
compares it with those heads: the ones in ``checkpoints.jsonl`` and the ones sealed in the
store's manifests (``audit_checkpoint``; older manifests anchored ``extra.audit_head``, a
``{seq, hash}`` of the chain, which is checked too). A head whose tree is larger than the log
means records were removed; a root that differs means the log was rewritten, even when every
chain hash was recomputed. The SQLite index is a third witness: it may lag the log, never
exceed or contradict it.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provenir.core.errors import GovernanceError
from provenir.core.hashing import canonical_json
from provenir.core.tree_head import TreeHead
from provenir.governance import merkle
from provenir.governance.audit_index import IndexUnreadable, refuse_link

if TYPE_CHECKING:
    from provenir.governance.audit import AuditLogger, AuditVerification


@dataclass(frozen=True)
class SealedHead:
    """A tree head found somewhere, with a label naming where (for problems)."""

    label: str
    head: TreeHead


@dataclass(frozen=True)
class ChainAnchor:
    """A ``(seq, hash)`` of the chain recorded elsewhere (the pre-Merkle ``extra.audit_head``)."""

    label: str
    seq: int
    hash: str


def manifest_heads(manifests_dir: Path) -> tuple[list[SealedHead], list[ChainAnchor], list[str]]:
    """Tree heads and chain anchors sealed in the manifests of a store, and unreadable ones."""
    heads: list[SealedHead] = []
    anchors: list[ChainAnchor] = []
    problems: list[str] = []
    if not manifests_dir.is_dir():
        return heads, anchors, problems
    for path in sorted(manifests_dir.glob("*.json")):
        label = f"run {path.stem}'s manifest"
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue  # an unreadable manifest is `provenir manifest verify`'s finding, not the log's
        if not isinstance(data, dict):
            continue
        sealed = data.get("audit_checkpoint")
        if sealed is not None:
            try:
                heads.append(SealedHead(label, TreeHead.model_validate(sealed)))
            except ValueError:
                problems.append(f"{label}: audit_checkpoint is not a tree head (edited)")
        anchor = (data.get("extra") or {}).get("audit_head") if isinstance(data.get("extra"), dict) else None
        if (
            isinstance(anchor, dict)
            and isinstance(anchor.get("seq"), int)
            and isinstance(anchor.get("hash"), str)
        ):
            anchors.append(ChainAnchor(label, anchor["seq"], anchor["hash"]))
    return heads, anchors, problems


def check_log(
    logger: AuditLogger,
    *,
    expected_head: tuple[int, str] | None,
    manifests_dir: Path | None,
    max_problems: int,
) -> AuditVerification:
    """See :meth:`provenir.governance.audit.AuditLogger.check`."""
    from provenir.governance.audit import (
        GENESIS_HASH,
        LOG_NAME,
        AuditRecord,
        AuditVerification,
        _record_hash,
        _repair_command,
    )

    refuse_link(logger.directory, "audit folder")
    problems: list[str] = []
    overflow = 0

    def problem(msg: str) -> None:
        nonlocal overflow
        if len(problems) < max_problems:
            problems.append(msg)
        else:
            overflow += 1

    recorded, head_problems = logger.checkpoints()
    heads = [SealedHead(r.label, r.head) for r in recorded]
    anchors: list[ChainAnchor] = []
    for msg in head_problems:
        problem(msg)
    if manifests_dir is not None:
        found, anchors, manifest_problems = manifest_heads(manifests_dir)
        heads += found
        for msg in manifest_problems:
            problem(msg)
    wanted = {h.head.size for h in heads}
    roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
    anchored: dict[int, list[ChainAnchor]] = {}
    for anchor in anchors:
        anchored.setdefault(anchor.seq, []).append(anchor)
    seen_anchors: set[ChainAnchor] = set()

    tree = merkle.Frontier()
    prev_seq, prev_hash, count, torn = 0, GENESIS_HASH, 0, False
    expected_found = False
    index_leaves, index_mismatch = _index_witness(logger), False
    if logger.path.is_file() or logger.path.is_symlink():
        fd = logger._open(LOG_NAME, os.O_RDONLY)
        with os.fdopen(fd, "rb") as fh:
            lineno = 0
            for raw in fh:
                lineno += 1
                if not raw.endswith(b"\n"):
                    torn = True
                    problem(
                        f"line {lineno}: torn last line ({len(raw)} bytes, no newline): "
                        f"run `{_repair_command(logger.directory)}`"
                    )
                    break
                body = raw[:-1]
                leaf = merkle.leaf_hash(body)
                tree.append(leaf)
                count += 1
                if count in wanted:
                    roots[count] = tree.root()
                if index_leaves is not None:
                    indexed = next(index_leaves, None)
                    if indexed is None:
                        index_leaves = None  # the index lags the log: allowed
                    elif indexed != leaf:
                        index_mismatch = True
                try:
                    data = json.loads(body)
                    record = AuditRecord.from_dict(data)
                except (ValueError, GovernanceError):
                    problem(f"line {lineno}: not a valid audit record (edited or corrupted)")
                    prev_seq += 1
                    prev_hash = "?"
                    continue
                if record.hash != _record_hash(data):
                    problem(f"line {lineno} (seq {record.seq}): content does not match its hash (edited)")
                elif canonical_json(data) != body:
                    problem(
                        f"line {lineno} (seq {record.seq}): bytes differ from the canonical form (edited)"
                    )
                if record.seq != prev_seq + 1:
                    problem(
                        f"line {lineno}: seq {record.seq} follows seq {prev_seq} "
                        "(deleted or reordered records)"
                    )
                if prev_hash != "?" and record.prev_hash != prev_hash:
                    problem(
                        f"line {lineno} (seq {record.seq}): prev_hash does not link to the previous record"
                    )
                for anchor in anchored.get(record.seq, ()):
                    seen_anchors.add(anchor)
                    if anchor.hash != record.hash:
                        problem(
                            f"record {record.seq} is not the one {anchor.label} anchored: the log was rewritten"
                        )
                if expected_head is not None and record.seq == expected_head[0]:
                    expected_found = record.hash == expected_head[1]
                prev_seq, prev_hash = record.seq, record.hash
    # The index is written after each record, so after a crash it can only be shorter; a
    # longer one means records were removed from the end of the log (or the log replaced).
    extra_rows = sum(1 for _ in index_leaves) if index_leaves is not None else 0
    if extra_rows:
        problem(f"the index lists {count + extra_rows} records but the log has {count}: records were deleted")
    elif index_mismatch:
        problem("the index disagrees with the log's record hashes: records were rewritten")
    for sealed in sorted(heads, key=lambda h: h.head.size):
        _check_head(sealed, count, roots, problem)
    for anchor in anchors:
        if anchor not in seen_anchors:
            problem(
                f"the log has {count} records but {anchor.label} anchored record {anchor.seq}: "
                "records were removed"
            )
    if expected_head is not None:
        seq, digest = expected_head
        if count < seq:
            problem(
                f"expected at least {seq} records (anchored head) but the log has {count}: "
                "records were deleted"
            )
        elif not expected_found:
            problem(f"anchored head seq {seq} hash {digest[:12]}... is not in the chain")
    if overflow:
        problems.append(f"... and {overflow} more problems")
    return AuditVerification(
        count,
        prev_seq,
        prev_hash,
        torn,
        problems,
        tree_root=tree.root().hex(),
        tree_heads_checked=len(heads),
    )


def _check_head(
    sealed: SealedHead, count: int, roots: dict[int, bytes], problem: Callable[[str], None]
) -> None:
    head, label = sealed.head, sealed.label
    if head.signature_state() == "invalid":
        problem(f"{label}: the tree head's signature does not verify (forged or edited)")
    if head.size > count:
        problem(f"the log has {count} records but {label} sealed a tree of {head.size}: records were removed")
    elif roots[head.size].hex() != head.root:
        problem(f"records 1..{head.size} do not hash to the root sealed by {label}: the log was rewritten")


def _index_witness(logger: AuditLogger) -> Iterator[bytes] | None:
    """The index's leaves, streamed (None when there is no readable index: nothing to compare)."""
    if not logger.index.exists():
        return None
    try:
        leaves = logger.index.leaves()
        first = next(leaves, None)
    except (IndexUnreadable, sqlite3.Error):
        return None
    return itertools.chain([first], leaves) if first is not None else iter(())
