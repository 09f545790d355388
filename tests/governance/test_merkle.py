"""RFC 9162 Merkle trees: roots and proofs checked by verifiers that share no code with ours.

Two independent references: ``pymerkle`` (its ``InmemoryTree`` hashes leaves and nodes with the
0x00/0x01 prefixes of RFC 9162 and splits at the largest power of two below the size), and the
verification algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2, transcribed below from the
RFC text step by step (``rfc_verify_inclusion``, ``rfc_verify_consistency``).
"""

from __future__ import annotations

import hashlib

import pymerkle
import pytest

from provenir.governance import merkle


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rfc_verify_inclusion(
    leaf_index: int, tree_size: int, leaf: bytes, inclusion_path: list[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2, verbatim."""
    # 1. Compare leaf_index from the inclusion_proof against tree_size. If leaf_index is greater
    #    than or equal to tree_size, then fail the proof verification.
    if leaf_index >= tree_size:
        return False
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn, sn = leaf_index, tree_size - 1
    # 3. Set r to hash.
    r = leaf
    # 4. For each value p in the inclusion_path array:
    for p in inclusion_path:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = _h(b"\x01" + p + r)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            #     LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        # Otherwise: i. Set r to HASH(0x01 || r || p).
        else:
            r = _h(b"\x01" + r + p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. Compare sn to 0. Compare r against the root_hash. If sn is equal to 0 and r and the
    #    root_hash are equal, then the log has proven the inclusion of hash.
    return sn == 0 and r == root_hash


def rfc_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, consistency_path: list[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2, verbatim (for 0 < first < second)."""
    path = list(consistency_path)
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not path:
        return False
    # 2. If first is an exact power of 2, then prepend first_hash to the consistency_path array.
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = first - 1, second - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            fr = _h(b"\x01" + c + fr)  # i.
            sr = _h(b"\x01" + c + sr)  # ii.
            # iii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            #      LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        # Otherwise: i. Set sr to HASH(0x01 || sr || c).
        else:
            sr = _h(b"\x01" + sr + c)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. Verify that fr equals first_hash, sr equals second_hash, and sn is 0.
    return fr == first_hash and sr == second_hash and sn == 0


def rfc_mth(entries: list[bytes]) -> bytes:
    """MTH of RFC 9162 section 2.1.1, recursively, for cross-checking small trees."""
    n = len(entries)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + entries[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return _h(b"\x01" + rfc_mth(entries[:k]) + rfc_mth(entries[k:]))


ENTRIES = [f'{{"seq":{i},"event":"e{i % 7}"}}'.encode() for i in range(1, 71)]
LEAVES = [merkle.leaf_hash(e) for e in ENTRIES]


@pytest.fixture(scope="module")
def reference() -> pymerkle.InmemoryTree:
    tree = pymerkle.InmemoryTree(algorithm="sha256")
    for entry in ENTRIES:
        tree.append_entry(entry)
    return tree


def test_roots_match_the_rfc_definition_and_pymerkle_at_every_size(reference: pymerkle.InmemoryTree) -> None:
    source = merkle.LeafList(LEAVES)
    tree = merkle.Frontier()
    assert tree.root() == merkle.EMPTY_ROOT == _h(b"")
    for n in range(1, len(ENTRIES) + 1):
        tree.append(LEAVES[n - 1])
        expected = rfc_mth(ENTRIES[:n])
        assert tree.root() == expected == merkle.range_hash(source, 0, n), n
        assert reference.get_root(n) == expected, n  # pymerkle is RFC 9162-compatible


def test_inclusion_proofs_verify_with_the_rfc_algorithm_and_match_pymerkle(
    reference: pymerkle.InmemoryTree,
) -> None:
    source = merkle.LeafList(LEAVES)
    for size in range(1, len(ENTRIES) + 1):
        root = rfc_mth(ENTRIES[:size])
        for index in range(size):
            path = merkle.inclusion_path(source, index, size)
            assert rfc_verify_inclusion(index, size, LEAVES[index], path, root), (index, size)
            assert merkle.verify_inclusion(LEAVES[index], index, size, path, root)
            # pymerkle's path is the leaf followed by the same siblings (1-based index).
            theirs = reference.prove_inclusion(index + 1, size)
            assert theirs.path == [LEAVES[index], *path], (index, size)
            pymerkle.verify_inclusion(LEAVES[index], root, theirs)


def test_consistency_proofs_verify_with_the_rfc_algorithm(reference: pymerkle.InmemoryTree) -> None:
    source = merkle.LeafList(LEAVES)
    for second in range(1, len(ENTRIES) + 1):
        second_hash = rfc_mth(ENTRIES[:second])
        for first in range(1, second):
            first_hash = rfc_mth(ENTRIES[:first])
            path = merkle.consistency_path(source, first, second)
            assert rfc_verify_consistency(first, second, first_hash, second_hash, path), (first, second)
            assert merkle.verify_consistency(first, second, first_hash, second_hash, path)
            # pymerkle's proofs have their own layout; they prove the same two roots.
            pymerkle.verify_consistency(first_hash, second_hash, reference.prove_consistency(first, second))
        assert merkle.consistency_path(source, second, second) == []
        assert merkle.verify_consistency(0, second, merkle.EMPTY_ROOT, second_hash, [])


def test_wrong_proofs_fail_every_verifier() -> None:
    source = merkle.LeafList(LEAVES)
    root = rfc_mth(ENTRIES[:50])
    path = merkle.inclusion_path(source, 17, 50)
    bad = [*path[:2], _h(b"x"), *path[3:]]
    for verify in (rfc_verify_inclusion, _ours_inclusion):
        assert not verify(17, 50, LEAVES[17], bad, root)
        assert not verify(18, 50, LEAVES[17], path, root)  # another position
        assert not verify(17, 50, LEAVES[18], path, root)  # another record
        assert not verify(17, 50, LEAVES[17], path[:-1], root)  # a truncated path
    cpath = merkle.consistency_path(source, 20, 50)
    old, new = rfc_mth(ENTRIES[:20]), rfc_mth(ENTRIES[:50])
    assert not merkle.verify_consistency(20, 50, old, _h(b"forged"), cpath)
    assert not rfc_verify_consistency(20, 50, _h(b"forged"), new, cpath)
    assert not merkle.verify_consistency(21, 50, old, new, cpath)


def _ours_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    return merkle.verify_inclusion(leaf, index, size, path, root)


def test_frontier_appends_report_every_completed_subtree() -> None:
    tree = merkle.Frontier()
    created = {}
    for leaf in LEAVES[:16]:
        for level, index, digest in tree.append(leaf):
            created[(level, index)] = digest
    source = merkle.LeafList(LEAVES)
    assert created[(4, 0)] == rfc_mth(ENTRIES[:16])
    assert all(source.perfect(level, index) == digest for (level, index), digest in created.items())
    assert len(created) == 31  # 16 leaves + 8 + 4 + 2 + 1 inner nodes
    rebuilt = merkle.Frontier.of(source, 13)
    assert rebuilt.root() == rfc_mth(ENTRIES[:13]) and merkle.frontier_positions(13) == [
        (3, 0),
        (2, 2),
        (0, 12),
    ]
