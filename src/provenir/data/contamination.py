"""Eval contamination: which evaluation items share word n-grams with the training data.

An eval item is contaminated when at least one of its word n-grams (default 13 words, the size
GPT-3's decontamination used) also occurs in a training row. Text is lower-cased and split into
words at whitespace and ASCII punctuation, so case, punctuation and spacing differences do not hide
a copy (non-ASCII characters count as letters); n-grams never span two fields or two rows.

It scales linearly: the (small) eval set's n-grams are hashed to 64-bit integers and sorted once;
the training rows are then streamed in chunks, each chunk tokenised by one byte-table translate and
split, its n-gram hashes computed with vectorised rolling hashes and looked up by binary search.
Nothing is quadratic and memory holds one chunk plus the eval index::

    from provenir.data.contamination import find_contamination

    report = find_contamination(train_rows, eval_rows, n=13)
    print(report.summary())
    for item in report.items:
        print(item.eval_row, item.overlap, item.total, item.first_train_row)

Hashes of distinct n-grams collide with probability about 2^-64 per pair, which is far below any
count this check reports.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal

from provenir.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_NGRAM = 13
ContaminationMode = Literal["off", "warn", "refuse"]

# Separator tokens between fields (\x00) and rows (\x01), surrounded by spaces so they split off
# as tokens of their own and the n-gram windows can be cut at them.
_FIELD_SEP, _ROW_SEP = "\x00", "\x01"
_WORD_BYTES = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_\x00\x01"
) | frozenset(range(128, 256))
# bytes.translate + bytes.split tokenise several times faster than a regex over str; every byte
# outside _WORD_BYTES (whitespace, ASCII punctuation) becomes a space.
_TO_SPACE = bytes(b if b in _WORD_BYTES else 0x20 for b in range(256))
# Rows per chunk: large enough to amortise numpy's per-call cost, small enough to stay in cache.
_CHUNK_ROWS = 8192
# An odd 64-bit multiplier (2^64 / golden ratio) for the polynomial rolling hash.
_MULTIPLIER = 0x9E3779B97F4A7C15


class ContaminationError(DataError):
    """Training was refused because evaluation items overlap the training data."""


class ContaminationWarning(UserWarning):
    """Evaluation items overlap the training data (``contamination_check: warn``)."""


@dataclass(frozen=True)
class ContaminatedItem:
    """One eval row that shares n-grams with the training data (row numbers are 1-based)."""

    eval_row: int
    overlap: int
    total: int
    first_train_row: int

    @property
    def fraction(self) -> float:
        """Share of this item's distinct n-grams that occur in the training data."""
        return self.overlap / self.total


@dataclass
class ContaminationReport:
    """The result of :func:`find_contamination`."""

    n: int
    train_rows: int
    eval_rows: int
    eval_checked: int
    train_rows_with_overlap: int
    items: list[ContaminatedItem] = field(default_factory=list)

    @property
    def contaminated(self) -> int:
        """Number of contaminated eval rows."""
        return len(self.items)

    @property
    def eval_too_short(self) -> int:
        """Eval rows with fewer than ``n`` words in every field: they cannot be checked."""
        return self.eval_rows - self.eval_checked

    @property
    def contaminated_fraction(self) -> float:
        """Contaminated share of the eval rows that could be checked."""
        return self.contaminated / self.eval_checked if self.eval_checked else 0.0

    def summary(self) -> str:
        """One line for logs and errors."""
        text = (
            f"{self.contaminated} of {self.eval_checked} checkable eval rows "
            f"({self.contaminated_fraction:.1%}) share a {self.n}-gram with the training data "
            f"({self.train_rows} rows, {self.train_rows_with_overlap} overlapping)"
        )
        if self.items:
            shown = ", ".join(str(i.eval_row) for i in self.items[:5])
            text += f"; eval rows {shown}{', ...' if len(self.items) > 5 else ''}"
        if self.eval_too_short:
            text += f"; {self.eval_too_short} eval rows have fewer than {self.n} words and were not checked"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``--json`` and for recording in run artifacts)."""
        out = asdict(self)
        out["contaminated"] = self.contaminated
        out["contaminated_fraction"] = self.contaminated_fraction
        return out


def find_contamination(
    train_rows: Iterable[Mapping[str, Any]],
    eval_rows: Iterable[Mapping[str, Any]],
    *,
    n: int = DEFAULT_NGRAM,
    fields: Sequence[str] | None = None,
) -> ContaminationReport:
    """Eval rows whose word n-grams occur in any training row.

    ``fields`` limits which columns are compared (default: every text column, including the
    ``content`` of chat ``messages``). ``train_rows`` is consumed once, so a generator works.
    """
    if not isinstance(n, int) or n < 1:
        raise DataError(f"n-gram size must be a positive integer, got {n!r}")
    np = _numpy()
    eval_list = list(eval_rows)
    if not eval_list:
        raise DataError("contamination check: the eval set has no rows")

    eval_grams, eval_owner = _ngrams(eval_list, n, fields, np)
    # Distinct (eval row, n-gram) pairs: an n-gram repeated inside one item counts once.
    order = np.lexsort((eval_grams, eval_owner))
    eval_grams, eval_owner = eval_grams[order], eval_owner[order]
    keep = np.ones(len(eval_grams), dtype=bool)
    keep[1:] = (eval_grams[1:] != eval_grams[:-1]) | (eval_owner[1:] != eval_owner[:-1])
    eval_grams, eval_owner = eval_grams[keep], eval_owner[keep]
    index = np.unique(eval_grams)  # sorted: the lookup table for the training stream
    # A byte-per-slot prefilter on the top hash bits, sized ~32 slots per eval n-gram: one cache-friendly
    # gather discards ~97% of training n-grams before the (cache-missing) binary search.
    bits = int(min(28, max(16, (32 * max(len(index), 1) - 1).bit_length())))
    shift = np.uint64(64 - bits)
    present = np.zeros(1 << bits, dtype=bool)
    present[index >> shift] = True
    # For each distinct eval n-gram, the first training row it appears in (-1: never).
    first_seen = np.full(len(index), -1, dtype=np.int64)

    train_count = 0
    overlapping_rows = 0
    for chunk in _chunks(train_rows, _CHUNK_ROWS):
        grams, owner = _ngrams(chunk, n, fields, np)
        candidates = np.flatnonzero(present[grams >> shift]) if len(index) and len(grams) else []
        if len(candidates):
            grams, owner = grams[candidates], owner[candidates]
            pos = np.searchsorted(index, grams)
            np.minimum(pos, len(index) - 1, out=pos)
            hit = index[pos] == grams
            if hit.any():
                hit_pos, hit_rows = pos[hit], owner[hit] + train_count
                overlapping_rows += len(np.unique(hit_rows))
                # hit_rows ascend within a chunk, so return_index picks each n-gram's first row.
                uniq, first = np.unique(hit_pos, return_index=True)
                new = first_seen[uniq] < 0
                first_seen[uniq[new]] = hit_rows[first[new]]
        train_count += len(chunk)
    if train_count == 0:
        raise DataError("contamination check: the training set has no rows")

    gram_idx = np.searchsorted(index, eval_grams)
    matched = first_seen[gram_idx] >= 0 if len(index) else np.zeros(0, dtype=bool)
    totals = np.bincount(eval_owner, minlength=len(eval_list))
    overlaps = np.bincount(eval_owner[matched], minlength=len(eval_list))
    first_train = np.full(len(eval_list), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_train, eval_owner[matched], first_seen[gram_idx[matched]])

    items = [
        ContaminatedItem(
            eval_row=int(i) + 1,
            overlap=int(overlaps[i]),
            total=int(totals[i]),
            first_train_row=int(first_train[i]) + 1,
        )
        for i in np.flatnonzero(overlaps)
    ]
    return ContaminationReport(
        n=n,
        train_rows=train_count,
        eval_rows=len(eval_list),
        eval_checked=int(np.count_nonzero(totals)),
        train_rows_with_overlap=overlapping_rows,
        items=items,
    )


def enforce_contamination_policy(report: ContaminationReport, mode: ContaminationMode) -> None:
    """Apply ``data.contamination_check``: ``warn`` emits a :class:`ContaminationWarning`,
    ``refuse`` raises :class:`ContaminationError`; a clean report or ``off`` does nothing."""
    if mode not in ("off", "warn", "refuse"):
        raise DataError(f"contamination_check must be off, warn or refuse; got {mode!r}")
    if mode == "off" or not report.items:
        return
    if mode == "refuse":
        raise ContaminationError(
            f"eval data is contaminated: {report.summary()}; "
            "remove those rows or set data.contamination_check=warn"
        )
    warnings.warn(f"eval data is contaminated: {report.summary()}", ContaminationWarning, stacklevel=2)


# -- internals ----------------------------------------------------------------------------------


def _numpy() -> Any:
    try:
        import numpy
    except ModuleNotFoundError:  # pragma: no cover - numpy ships with datasets/torch
        raise DataError("the contamination check needs numpy (pip install 'provenir[train]')") from None
    return numpy


def _chunks(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _texts(value: Any) -> Iterator[str]:
    """Every string inside a cell: text itself, or the ``content`` of chat messages."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        yield from _texts(value.get("content"))
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _texts(v)


def _row_text(row: Mapping[str, Any], fields: Sequence[str] | None) -> str:
    if not isinstance(row, Mapping):
        raise DataError(f"contamination check: rows must be mappings, got {type(row).__name__}")
    sep = f" {_FIELD_SEP} "
    if fields is None:
        try:
            # Fast path for the usual all-text row; field order does not matter since n-grams stop at fields.
            text = sep.join(row.values())
        except TypeError:
            text = sep.join(t for v in row.values() for t in _texts(v))
    else:
        text = sep.join(t for k in fields for t in _texts(row.get(k)))
    # A separator character inside the data would shift row numbers; real text never needs them.
    if _ROW_SEP in text:
        text = text.replace(_ROW_SEP, " ")
    return text


def _ngrams(
    rows: Sequence[Mapping[str, Any]], n: int, fields: Sequence[str] | None, np: Any
) -> tuple[np.ndarray, np.ndarray]:
    """(n-gram hashes, 0-based row of each) for ``rows``: one tokenising pass, then vectorised hashing."""
    text = f" {_ROW_SEP} ".join(_row_text(r, fields) for r in rows).lower()
    tokens = text.encode("utf-8", "surrogatepass").translate(_TO_SPACE).split()
    size = len(tokens) - n + 1
    if size <= 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    # Python's bytes hash: C speed, well mixed, and stable within the process that compares both sets.
    words = np.fromiter(map(hash, tokens), dtype=np.int64, count=len(tokens)).view(np.uint64)
    row_break = words == np.int64(hash(_ROW_SEP.encode())).view(np.uint64)
    is_break = row_break | (words == np.int64(hash(_FIELD_SEP.encode())).view(np.uint64))
    grams = words[:size].copy()
    mult = np.uint64(_MULTIPLIER)
    for j in range(1, n):
        grams *= mult  # uint64 arithmetic wraps modulo 2^64, which is what a rolling hash wants
        grams += words[j : j + size]
    breaks = np.concatenate(([0], np.cumsum(is_break, dtype=np.int64)))
    valid = breaks[n : n + size] == breaks[:size]  # no separator inside the window
    owner = np.cumsum(row_break, dtype=np.int64)[:size]
    return grams[valid], owner[valid]
