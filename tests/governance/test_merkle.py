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


# -- the RFC 6962 test vectors ------------------------------------------------------------------
# The leaves, roots and proofs of the Certificate Transparency reference tests (kept in
# transparency-dev/merkle's testonly/constants.go and proof/verify_test.go, and in every RFC 6962
# implementation's tests): answers computed by other code, pinned here as published.

CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657")] + [
    bytes.fromhex("606162636465666768696a6b6c6d6e6f")
]
CT_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # the empty tree
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
CT_LEAF_HASHES = [merkle.leaf_hash(leaf) for leaf in CT_LEAVES]


def _hx(*hashes: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in hashes]


#: (leaf index, tree size, path)
CT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        _hx(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        5,
        8,
        _hx(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (2, 3, _hx("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        1,
        5,
        _hx(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
]
#: (old size, new size, path)
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        _hx(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        6,
        8,
        _hx(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (
        2,
        5,
        _hx(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
]
SOME_HASH = _h(b"some other tree")


def test_roots_are_the_rfc_6962_test_vectors_including_the_empty_tree() -> None:
    source = merkle.LeafList(CT_LEAF_HASHES)
    assert CT_ROOTS[0] == merkle.EMPTY_ROOT
    for size, expected in enumerate(CT_ROOTS):
        assert merkle.root_of(CT_LEAF_HASHES[:size]) == expected, size
        assert merkle.range_hash(source, 0, size) == expected, size
        assert merkle.Frontier.of(source, size).root() == expected, size
    # An empty range anywhere is the empty tree, not a node of the tree around it.
    assert merkle.range_hash(source, 5, 5) == CT_ROOTS[0]


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_inclusion_proofs_are_the_rfc_6962_test_vectors(index: int, size: int, expected: list[bytes]) -> None:
    source = merkle.LeafList(CT_LEAF_HASHES)
    assert merkle.inclusion_path(source, index, size) == expected
    assert merkle.verify_inclusion(CT_LEAF_HASHES[index], index, size, expected, CT_ROOTS[size]) is True


@pytest.mark.parametrize(("old", "new", "expected"), CT_CONSISTENCY)
def test_consistency_proofs_are_the_rfc_6962_test_vectors(old: int, new: int, expected: list[bytes]) -> None:
    source = merkle.LeafList(CT_LEAF_HASHES)
    assert merkle.consistency_path(source, old, new) == expected
    assert merkle.verify_consistency(old, new, CT_ROOTS[old], CT_ROOTS[new], expected) is True


def _corrupt_inclusion(index: int, size: int, path: list[bytes], root: bytes, leaf: bytes):
    """Variations of a valid inclusion proof that must all fail: the probes of the CT reference tests
    (wrong position, wrong size, wrong leaf or root, garbage before or after, a flipped bit, a
    node removed or inserted)."""
    yield "index - 1", (leaf, index - 1, size, path, root)
    yield "index + 1", (leaf, index + 1, size, path, root)
    yield "index ^ 2", (leaf, index ^ 2, size, path, root)
    yield "size * 2", (leaf, index, size * 2, path, root)
    yield "size // 2", (leaf, index, size // 2, path, root)
    yield "wrong leaf", (b"WrongLeaf", index, size, path, root)
    yield "empty root", (leaf, index, size, path, merkle.EMPTY_ROOT)
    yield "another root", (leaf, index, size, path, SOME_HASH)
    yield "trailing garbage", (leaf, index, size, [*path, b""], root)
    yield "trailing root", (leaf, index, size, [*path, root], root)
    yield "preceding garbage", (leaf, index, size, [b"", *path], root)
    yield "preceding root", (leaf, index, size, [root, *path], root)
    for i in range(len(path)):
        flipped = bytes([path[i][0] ^ 8]) + path[i][1:]
        yield f"bit 3 of node {i}", (leaf, index, size, [*path[:i], flipped, *path[i + 1 :]], root)
    if path:
        yield "node removed", (leaf, index, size, path[:-1], root)
    if len(path) > 1:
        yield "node inserted", (leaf, index, size, [path[0], SOME_HASH, *path[1:]], root)


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_every_corrupted_inclusion_proof_is_refused_with_false(
    index: int, size: int, path: list[bytes]
) -> None:
    for what, args in _corrupt_inclusion(index, size, path, CT_ROOTS[size], CT_LEAF_HASHES[index]):
        # Exactly False: callers serialise the answer ("verified": false), and None is not a verdict.
        assert merkle.verify_inclusion(*args) is False, what


def _corrupt_consistency(old: int, new: int, path: list[bytes], old_root: bytes, new_root: bytes):
    """The CT reference tests' probes for consistency proofs (the same kinds as for inclusion)."""
    yield "old - 1", (old - 1, new, old_root, new_root, path)
    yield "old + 1", (old + 1, new, old_root, new_root, path)
    yield "old ^ 2", (old ^ 2, new, old_root, new_root, path)
    yield "new * 2", (old, new * 2, old_root, new_root, path)
    yield "new // 2", (old, new // 2, old_root, new_root, path)
    yield "wrong old root", (old, new, b"WrongRoot", new_root, path)
    yield "wrong new root", (old, new, old_root, b"WrongRoot", path)
    yield "swapped roots", (old, new, new_root, old_root, path)
    yield "empty proof", (old, new, old_root, new_root, [])
    yield "trailing garbage", (old, new, old_root, new_root, [*path, b""])
    yield "trailing old root", (old, new, old_root, new_root, [*path, old_root])
    yield "trailing new root", (old, new, old_root, new_root, [*path, new_root])
    yield "preceding garbage", (old, new, old_root, new_root, [b"", *path])
    yield "preceding old root", (old, new, old_root, new_root, [old_root, *path])
    yield "preceding new root", (old, new, old_root, new_root, [new_root, *path])
    yield "preceding first node", (old, new, old_root, new_root, [path[0], *path])
    yield "node removed", (old, new, old_root, new_root, path[:-1])
    for i in range(len(path)):
        flipped = bytes([path[i][0] ^ 8]) + path[i][1:]
        yield f"bit 3 of node {i}", (old, new, old_root, new_root, [*path[:i], flipped, *path[i + 1 :]])


@pytest.mark.parametrize(("old", "new", "path"), [v for v in CT_CONSISTENCY if v[0] < v[1]])
def test_every_corrupted_consistency_proof_is_refused_with_false(
    old: int, new: int, path: list[bytes]
) -> None:
    for what, args in _corrupt_consistency(old, new, path, CT_ROOTS[old], CT_ROOTS[new]):
        assert merkle.verify_consistency(*args) is False, what


def test_consistency_between_equal_or_empty_trees_needs_an_empty_proof() -> None:
    root = CT_ROOTS[8]
    # A tree is consistent with itself only with an empty proof and the same root (RFC 9162 2.1.4.2).
    assert merkle.verify_consistency(8, 8, root, root, []) is True
    assert merkle.verify_consistency(8, 8, root, CT_ROOTS[7], []) is False
    assert merkle.verify_consistency(8, 8, root, root, [root]) is False
    # Every tree extends the empty one, and its proof is empty too.
    source = merkle.LeafList(CT_LEAF_HASHES)
    assert merkle.consistency_path(source, 0, 5) == []
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, CT_ROOTS[5], []) is True
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, CT_ROOTS[5], [CT_ROOTS[5]]) is False
    # A shrinking tree, or a negative size, is never consistent.
    assert merkle.verify_consistency(5, 4, CT_ROOTS[5], CT_ROOTS[4], []) is False
    assert merkle.verify_consistency(-1, 4, CT_ROOTS[0], CT_ROOTS[4], []) is False


def test_proofs_are_refused_for_leaves_and_sizes_outside_the_tree() -> None:
    source = merkle.LeafList(CT_LEAF_HASHES)
    for index, size in ((8, 8), (0, 0), (-1, 8)):
        with pytest.raises(ValueError, match=f"leaf {index} is not in a tree of {size}"):
            merkle.inclusion_path(source, index, size)
        assert merkle.verify_inclusion(CT_LEAF_HASHES[0], index, size, [], CT_ROOTS[0]) is False
    for old, new in ((5, 4), (-1, 4)):
        with pytest.raises(ValueError, match=f"no consistency proof from size {old} to size {new}"):
            merkle.consistency_path(source, old, new)


def test_a_frontier_with_the_wrong_number_of_nodes_is_refused() -> None:
    # A tree of 5 leaves is two perfect subtrees (4 + 1): one node or three do not describe it.
    with pytest.raises(ValueError, match="a tree of 5 leaves has 2 frontier nodes, not 1"):
        merkle.Frontier(5, [CT_ROOTS[4]])
    with pytest.raises(ValueError, match="not 3"):
        merkle.Frontier(5, [CT_ROOTS[4], CT_LEAF_HASHES[4], CT_LEAF_HASHES[4]])
    tree = merkle.Frontier(4, [CT_ROOTS[4]])
    tree.append(CT_LEAF_HASHES[4])
    assert tree.root() == CT_ROOTS[5]


def test_a_proof_verifies_for_its_own_leaf_position_and_tree_only() -> None:
    """Against a brute-force recomputation of every tree of up to 12 leaves: a proof verifies for
    its leaf, position and tree (size and that size's root) and for no other leaf, position or tree.
    (A root names its size only through the tree head that signs both, so each size is paired
    with its own root here.)"""
    leaves = LEAVES[:12]
    source = merkle.LeafList(leaves)
    roots = [rfc_mth(ENTRIES[:n]) for n in range(13)]
    for size in range(1, 13):
        for index in range(size):
            path = merkle.inclusion_path(source, index, size)
            for other_index in range(-1, 13):
                for other_size in range(13):
                    got = merkle.verify_inclusion(
                        leaves[index], other_index, other_size, path, roots[other_size]
                    )
                    assert got is ((other_index, other_size) == (index, size)), (
                        index,
                        size,
                        other_index,
                        other_size,
                    )
                    if other_size != size:
                        assert (
                            merkle.verify_inclusion(leaves[index], index, size, path, roots[other_size])
                            is False
                        )
            other_leaf = leaves[(index + 1) % 12]
            assert merkle.verify_inclusion(other_leaf, index, size, path, roots[size]) is False
