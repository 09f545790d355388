"""Near-duplicate eval rows: MinHash LSH over word sets, verified by exact Jaccard similarity.

An eval row is a near-duplicate of a training row when the Jaccard similarity of their sets of
normalised words (all compared fields together) is at least the threshold. Candidates come from a
``datasketch`` :class:`~datasketch.MinHashLSH` index of the eval rows; each candidate is then
checked against the exact word sets, so the report holds no false positives. A pair at or above
the threshold can still be missed when no LSH band of the two signatures agrees; the bands are
chosen (by datasketch) with false negatives weighted 9:1 over false positives, since a false
positive only costs one set comparison: a pair at Jaccard 0.9 with threshold 0.8 is found with
probability 0.999.

Results are deterministic: words are hashed with CRC-32 (not Python's per-process ``hash``), the
``NUM_PERM`` permutations come from the fixed ``SEED``, and the set comparison is exact.

Training-side signatures are computed with numpy, one permutation at a time over a whole chunk of
rows (datasketch's per-row ``MinHash`` costs about 50 µs a row, too slow for millions of rows).
They equal ``datasketch.MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=zlib.crc32,
scheme="affine32")`` signatures, which the tests check; a vectorised band filter discards rows that
share no band with any eval row before the datasketch index is queried::

    finder = NearDuplicateFinder(0.8, eval_words)
    for first_row, chunk in train_chunks:
        finder.scan(chunk, first_row)
    finder.found  # {eval row: (first training row, Jaccard similarity)}, both 0-based
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provenir.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np

NUM_PERM = 128
SEED = 1
# datasketch's band optimiser weights (false positives, false negatives): candidates are verified
# exactly, so a miss costs more than a spare comparison.
_LSH_WEIGHTS = (0.1, 0.9)
_SCHEME = "affine32"
EXTRA_HINT = "pip install 'provenir[dedup]'"


@dataclass
class WordRows:
    """Rows as one flat token list: row ``r``'s words are ``tokens[index[starts[r] : starts[r] + lens[r]]]``.

    ``tokens`` may hold other tokens (separators) that ``index`` skips; ``hashes`` is the CRC-32 of
    every token of ``tokens``, filled by :meth:`crc32` on first use.
    """

    tokens: list[bytes]
    index: np.ndarray
    starts: np.ndarray
    lens: np.ndarray
    hashes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.lens)

    def word_set(self, row: int) -> frozenset[bytes]:
        """The distinct words of one row."""
        start = int(self.starts[row])
        return frozenset(self.tokens[i] for i in self.index[start : start + int(self.lens[row])].tolist())

    def crc32(self, np: Any) -> np.ndarray:
        """CRC-32 of each word, in row order (uint32)."""
        if self.hashes is None:
            every = np.fromiter(map(zlib.crc32, self.tokens), dtype=np.uint32, count=len(self.tokens))
            self.hashes = every[self.index]
        return self.hashes


def _datasketch() -> Any:
    try:
        import datasketch
    except ModuleNotFoundError:
        raise DataError(
            f"near-duplicate detection (data.contamination_near_dup, --near-dup) needs datasketch: {EXTRA_HINT}"
        ) from None
    return datasketch


def _fmix32(h: np.ndarray, np: Any) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser, the pre-mix datasketch's affine32 scheme applies to each hash."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signatures(rows: WordRows, permutations: np.ndarray, np: Any) -> np.ndarray:
    """MinHash signatures, shape ``(num_perm, rows)`` uint32; a row without words gets all-ones.

    ``permutations`` is datasketch's ``MinHash.permutations`` (``[a, b]``, uint32): the permuted
    hash of a word is ``a * fmix32(crc32(word)) + b`` modulo 2**32.
    """
    a, b = permutations
    out = np.full((len(a), len(rows)), np.iinfo(np.uint32).max, dtype=np.uint32)
    filled = np.flatnonzero(rows.lens)
    if not len(filled):
        return out
    mixed = _fmix32(rows.crc32(np), np)
    starts = rows.starts[filled]
    col = np.empty_like(mixed)
    # Permutation-major: each pass is two vector ops over the chunk's words and one reduceat,
    # about 20x faster than gathering a (words x permutations) matrix.
    for k in range(len(a)):
        np.multiply(mixed, a[k], out=col)
        col += b[k]
        out[k, filled] = np.minimum.reduceat(col, starts)
    return out


class NearDuplicateFinder:
    """Eval rows whose word set has Jaccard similarity >= ``threshold`` with some training row."""

    def __init__(self, threshold: float, eval_rows: WordRows) -> None:
        if not 0.0 < threshold < 1.0:  # 1.0 is an identical word set, which datasketch cannot band
            raise DataError(
                f"near-duplicate threshold must be between 0 and 1 (exclusive), got {threshold!r}"
            )
        ds = _datasketch()
        import numpy as np  # a dependency of datasketch

        self._np = np
        self.threshold = threshold
        self.num_perm = NUM_PERM
        self.seed = SEED
        self._lean = ds.LeanMinHash
        self._perms = ds.MinHash(num_perm=NUM_PERM, seed=SEED, scheme=_SCHEME).permutations
        self.lsh = ds.MinHashLSH(threshold=threshold, num_perm=NUM_PERM, weights=_LSH_WEIGHTS)
        self.bands, self.rows_per_band = self.lsh.b, self.lsh.r
        # Odd 64-bit multipliers that fold a band's uint32 values into one key for the prefilter.
        rng = np.random.RandomState(SEED)
        self._fold = rng.randint(0, 1 << 62, size=NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)

        self._eval_sets: dict[int, frozenset[bytes]] = {}
        sig = signatures(eval_rows, self._perms, np)
        for row in np.flatnonzero(eval_rows.lens).tolist():
            self._eval_sets[row] = eval_rows.word_set(row)
            self.lsh.insert(row, self._minhash(sig[:, row]), check_duplication=False)
        self._band_index = np.unique(self._band_keys(sig[:, np.flatnonzero(eval_rows.lens)]))
        # A byte-per-slot table on the top key bits (~32 slots per eval key) rules out most training
        # keys with one gather before the cache-missing binary search.
        bits = int(min(28, max(16, (32 * max(len(self._band_index), 1) - 1).bit_length())))
        self._shift = np.uint64(64 - bits)
        self._present = np.zeros(1 << bits, dtype=bool)
        self._present[self._band_index >> self._shift] = True
        self.found: dict[int, tuple[int, float]] = {}

    def _minhash(self, hashvalues: np.ndarray) -> Any:
        return self._lean(seed=self.seed, hashvalues=hashvalues, scheme=_SCHEME)

    def _band_keys(self, sig: np.ndarray) -> np.ndarray:
        """One uint64 key per (band, row), shape ``(bands, rows)``; equal bands give equal keys."""
        np = self._np
        r = self.rows_per_band
        keys = np.zeros((self.bands, sig.shape[1]), dtype=np.uint64)
        for band in range(self.bands):
            for k in range(band * r, (band + 1) * r):
                keys[band] += sig[k].astype(np.uint64) * self._fold[k]
        return keys

    def scan(self, rows: WordRows, first_row: int) -> None:
        """Compare one chunk of training rows (``first_row``: the 0-based number of its first row)."""
        np = self._np
        if len(self.found) == len(self._eval_sets) or not len(self._band_index):
            return  # every eval row already has its first match
        sig = signatures(rows, self._perms, np)
        keys = self._band_keys(sig)
        maybe = np.flatnonzero(self._present[keys >> self._shift].any(axis=0) & (rows.lens > 0))
        keys = keys[:, maybe]
        pos = np.minimum(np.searchsorted(self._band_index, keys), len(self._band_index) - 1)
        candidates = maybe[(self._band_index[pos] == keys).any(axis=0)]
        for row in candidates.tolist():
            words: frozenset[bytes] | None = None
            for key in sorted(self.lsh.query(self._minhash(sig[:, row]))):
                if key in self.found:
                    continue
                words = rows.word_set(row) if words is None else words
                target = self._eval_sets[key]
                shared = len(words & target)
                similarity = shared / (len(words) + len(target) - shared)
                if similarity >= self.threshold:
                    self.found[key] = (first_row + row, similarity)
