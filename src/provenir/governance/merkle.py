"""Merkle trees as RFC 9162 (Certificate Transparency v2, section 2.1) defines them.

::

    from provenir.governance.merkle import Frontier, leaf_hash, verify_inclusion

    tree = Frontier()
    for line in lines:                 # the stored bytes of each record
        tree.append(leaf_hash(line))
    root = tree.root()

Hashes are SHA-256: a leaf is ``SHA-256(0x00 || data)``, an inner node
``SHA-256(0x01 || left || right)`` and the tree of ``n`` leaves splits at the largest power of
two smaller than ``n`` (section 2.1.1), so any RFC 9162 (or RFC 6962) verifier checks the proofs
made here. The empty tree's hash is ``SHA-256()``.

Proofs are built from a :class:`NodeSource`: anything that returns the hash of the perfect
subtree ``level``/``index`` (leaves ``index * 2**level`` up to ``(index + 1) * 2**level``). A
proof needs O(log n) such hashes (plus O(log n) each for the ragged right edge), so a stored
tree answers in microseconds whatever its size. :class:`Frontier` is the compact form of a
growing tree: the roots of its perfect subtrees, one per 1-bit of the size, so appending costs
O(log n) and the root is known at every size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
#: MTH({}) = SHA-256 of the empty string (RFC 9162 section 2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` > 1): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


class NodeSource(Protocol):
    """Where proofs get subtree hashes: the hash of perfect subtree ``index`` at ``level``."""

    def perfect(self, level: int, index: int) -> bytes:
        """Root of leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 is a leaf hash."""
        ...


class LeafList:
    """A :class:`NodeSource` over leaf hashes held in memory (tests, small trees)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = list(leaves)
        self._memo: dict[tuple[int, int], bytes] = {}

    def perfect(self, level: int, index: int) -> bytes:
        """Computed from the leaves (memoised)."""
        if level == 0:
            return self.leaves[index]
        key = (level, index)
        if key not in self._memo:
            self._memo[key] = node_hash(
                self.perfect(level - 1, 2 * index), self.perfect(level - 1, 2 * index + 1)
            )
        return self._memo[key]


def range_hash(source: NodeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range that is a node of the RFC 9162 tree (or ``start == 0``)."""
    n = end - start
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return source.perfect(level, start >> level)
    k = split_point(n)
    return node_hash(range_hash(source, start, start + k), range_hash(source, start + k, end))


def inclusion_path(source: NodeSource, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 section 2.1.3.1, deepest sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index - start < k:
            path.append(range_hash(source, start + k, end))
            end = start + k
        else:
            path.append(range_hash(source, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_path(source: NodeSource, old: int, new: int) -> list[bytes]:
    """PROOF(old, D[new]) of RFC 9162 section 2.1.4.1 (empty when ``old`` is 0 or ``new``)."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    if old in (0, new):
        return []
    path: list[bytes] = []
    start, end, m, complete = 0, new, old, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                path.append(range_hash(source, start, end))
            break
        k = split_point(n)
        if m <= k:
            path.append(range_hash(source, start + k, end))
            end = start + k
        else:
            path.append(range_hash(source, start, start + k))
            start, m, complete = start + k, m - k, False
    path.reverse()
    return path


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does ``leaf`` sit at ``index`` of the tree of ``size`` with ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # "If LSB(fn) is not set, right-shift until it is or fn is 0": the loop's own test
            # is that condition, so it needs no guard.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: is the tree of ``new`` an append-only extension of ``old``?"""
    if not 0 <= old <= new:
        return False
    if old == new:
        return not path and old_root == new_root
    if old == 0:
        return not path  # every tree extends the empty one
    if not path:
        return False
    nodes = list(path)
    if old & (old - 1) == 0:
        nodes.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:  # as in verify_inclusion
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class Frontier:
    """A growing tree kept as its perfect-subtree roots (largest first): O(log n) per append.

    >>> tree = Frontier()
    >>> _ = tree.append(leaf_hash(b"a")); _ = tree.append(leaf_hash(b"b"))
    >>> tree.root() == node_hash(leaf_hash(b"a"), leaf_hash(b"b"))
    True
    """

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != bin(size).count("1"):
            raise ValueError(
                f"a tree of {size} leaves has {bin(size).count('1')} frontier nodes, not {len(nodes)}"
            )
        self.size = size
        self.nodes = list(nodes)

    @classmethod
    def of(cls, source: NodeSource, size: int) -> Frontier:
        """The frontier of the first ``size`` leaves of ``source``."""
        return cls(size, [source.perfect(level, index) for level, index in frontier_positions(size)])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the perfect subtrees it completes as ``(level, index, hash)``."""
        created = [(0, self.size, leaf)]
        carry, index, level = leaf, self.size, 0
        while index & 1:
            carry = node_hash(self.nodes.pop(), carry)
            index >>= 1
            level += 1
            created.append((level, index, carry))
        self.nodes.append(carry)
        self.size += 1
        return created

    def root(self) -> bytes:
        """MTH of the leaves so far."""
        if not self.nodes:
            return EMPTY_ROOT
        r = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            r = node_hash(node, r)
        return r


def frontier_positions(size: int) -> list[tuple[int, int]]:
    """``(level, index)`` of the perfect subtrees that make up a tree of ``size``, largest first."""
    out = []
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, (size >> level) - 1))
    return out


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (a convenience for small trees)."""
    tree = Frontier()
    for leaf in leaves:
        tree.append(leaf)
    return tree.root()
