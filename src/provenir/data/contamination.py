"""Eval contamination: which evaluation rows the training data already holds.

Every eval row is compared with every training row by up to four checks, each reported on its own
(row numbers and counts, never text):

``exact``
    The eval row's normalised text equals a training row's: the words of all compared fields, in
    the order below, joined by single spaces. Rows of any length.
``prompt``
    The eval row's prompt equals a training row's prompt (normalised), whatever the responses. The
    prompt is the ``prompt`` column, or for chat rows every turn before the final assistant turn.
``ngram``
    The eval row shares a word n-gram (default 13, the size GPT-3's decontamination used) with a
    training row; n-grams never span two fields or two rows. A row with no field of at least ``n``
    words is compared whole: its whole word sequence is its one "gram", matched against training
    rows that are short in the same way. Every eval row with a word in it is checked.
``near_dup`` (optional, ``near_dup=threshold``)
    The Jaccard similarity of the two rows' sets of normalised words is at least the threshold:
    MinHash LSH candidates verified exactly (:mod:`provenir.data.near_dup`, needs ``datasketch``).

Normalisation, the same for every check and both sides (the lm-eval decontamination and SQuAD answer
normalisers, without SQuAD's removal of a/an/the): Unicode NFKC, then lower-case, then delete every
punctuation or symbol character (Unicode categories P* and S*, which include all of ASCII
``string.punctuation``: "don't" becomes "dont", "2+2" becomes "22"), then split at whitespace. See
:func:`normalize_words`.

Fields compared: by default every text column of a row (and the ``content`` of chat ``messages``),
the prompt first, then the other columns in the row's own order; ``fields`` picks and orders them.
An eval row is matched against the same fields of the training rows, whatever their column names.

It scales linearly: the (small) eval set's hashes are sorted once; the training rows are then streamed
in chunks, each chunk normalised in one pass over its joined text (a byte-table translate when the
chunk is ASCII), its n-gram and row hashes computed with vectorised numpy and looked up by binary
search. Memory holds one chunk plus the eval index::

    from provenir.data.contamination import find_contamination

    report = find_contamination(train_rows, eval_rows, n=13, near_dup=0.8)
    print(report.summary())
    for item in report.items:
        print(item.eval_row, item.methods, item.first_train_row)

Hashes of distinct n-grams or texts collide with probability about 2^-64 per pair, far below any
count this check reports.
"""

from __future__ import annotations

import string
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

from provenir.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np

    from provenir.data.near_dup import NearDuplicateFinder, WordRows

DEFAULT_NGRAM = 13
ContaminationMode = Literal["off", "warn", "refuse"]
Method = Literal["exact", "prompt", "ngram", "near_dup"]
METHODS: tuple[Method, ...] = ("exact", "prompt", "ngram", "near_dup")
NORMALIZATION = "nfkc, lowercase, delete unicode punctuation and symbols (P*, S*), split at whitespace"

# Separator tokens between fields (\x00), after the prompt (\x02) and between rows (\x01), surrounded by
# spaces so they split off as tokens of their own; n-gram windows are cut at all three.
_FIELD, _PROMPT_END, _ROW = "\x00", "\x02", "\x01"
_FIELD_SEP, _PROMPT_SEP, _ROW_SEP = f" {_FIELD} ", f" {_PROMPT_END} ", f" {_ROW} "
_ASCII_PUNCT = string.punctuation.encode()
# str.split treats \x1c-\x1f as whitespace and bytes.split does not: map them to spaces so the
# ASCII fast path and the Unicode path agree.
_ASCII_TABLE = bytes.maketrans(b"\x1c\x1d\x1e\x1f", b"    ")
# Deleted from a row's normalised text for its whole-text key: whitespace and the field/prompt markers.
_NOT_TEXT = b" \t\n\r\x0b\x0c\x00\x02"
# Rows per chunk: large enough to amortise numpy's per-call cost, small enough to stay in cache.
_CHUNK_ROWS = 8192
# An odd 64-bit multiplier (2^64 / golden ratio) for the polynomial hashes.
_MULTIPLIER = 0x9E3779B97F4A7C15
_NONE = 2**63 - 1  # "no training row yet" in the first-row arrays


class ContaminationError(DataError):
    """Training was refused because evaluation items overlap the training data."""


class ContaminationWarning(UserWarning):
    """Evaluation items overlap the training data (``contamination_check: warn``)."""


@dataclass(frozen=True)
class ContaminatedItem:
    """One eval row found in the training data (row numbers are 1-based).

    Each ``*_train_row`` is the first training row that check matched, or None when that check
    found nothing. ``overlap``/``total`` count the row's distinct n-grams (its one whole-row gram
    when it is shorter than n) that occur in the training data / that it has; ``similarity`` is
    the word-set Jaccard similarity with ``near_dup_train_row``.
    """

    eval_row: int
    overlap: int
    total: int
    ngram_train_row: int | None = None
    exact_train_row: int | None = None
    prompt_train_row: int | None = None
    near_dup_train_row: int | None = None
    similarity: float | None = None

    @property
    def methods(self) -> tuple[Method, ...]:
        """The checks that found this row, in :data:`METHODS` order."""
        return tuple(m for m in METHODS if getattr(self, f"{m}_train_row") is not None)

    @property
    def first_train_row(self) -> int:
        """The earliest training row any check matched."""
        return min(getattr(self, f"{m}_train_row") for m in self.methods)

    @property
    def fraction(self) -> float:
        """Share of this item's distinct n-grams that occur in the training data."""
        return self.overlap / self.total if self.total else 0.0


@dataclass
class ContaminationReport:
    """The result of :func:`find_contamination`."""

    n: int
    train_rows: int
    eval_rows: int
    eval_checked: int
    train_rows_with_overlap: int
    items: list[ContaminatedItem] = field(default_factory=list)
    near_dup: float | None = None
    near_dup_num_perm: int | None = None

    @property
    def contaminated(self) -> int:
        """Number of eval rows found by any check."""
        return len(self.items)

    @property
    def eval_unchecked(self) -> int:
        """Eval rows with no word in any compared field: nothing to compare."""
        return self.eval_rows - self.eval_checked

    @property
    def contaminated_fraction(self) -> float:
        """Contaminated share of the eval rows that could be checked."""
        return self.contaminated / self.eval_checked if self.eval_checked else 0.0

    @property
    def methods(self) -> tuple[Method, ...]:
        """The checks that ran."""
        return METHODS if self.near_dup is not None else METHODS[:3]

    def rows_by_method(self) -> dict[Method, list[int]]:
        """For each check that ran, the eval rows it found (1-based, ascending)."""
        return {m: [i.eval_row for i in self.items if m in i.methods] for m in self.methods}

    def summary(self) -> str:
        """One line for logs and errors."""
        found = {m: len(rows) for m, rows in self.rows_by_method().items()}
        text = (
            f"{self.contaminated} of {self.eval_checked} checked eval rows "
            f"({self.contaminated_fraction:.1%}) occur in the training data ({self.train_rows} rows): "
            f"{found['exact']} exact copies, {found['prompt']} with a training prompt, "
            f"{found['ngram']} share a {self.n}-gram ({self.train_rows_with_overlap} training rows overlap)"
        )
        if self.near_dup is not None:
            text += f", {found['near_dup']} near-duplicates (Jaccard >= {self.near_dup:g})"
        if self.items:
            shown = ", ".join(str(i.eval_row) for i in self.items[:5])
            text += f"; eval rows {shown}{', ...' if len(self.items) > 5 else ''}"
        if self.eval_unchecked:
            text += f"; {self.eval_unchecked} eval rows have no words and were not checked"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``--json``), every item with the checks that found it."""
        out = asdict(self)
        for item, row in zip(self.items, out["items"], strict=True):
            row["methods"] = list(item.methods)
        out["contaminated"] = self.contaminated
        out["contaminated_fraction"] = self.contaminated_fraction
        out["normalization"] = NORMALIZATION
        return out

    def manifest_summary(self, limit: int = 50) -> dict[str, Any]:
        """Counts and row numbers for a run manifest (no text): each check's count and its first
        ``limit`` eval rows, and the union of them all."""
        return {
            "n": self.n,
            "normalization": NORMALIZATION,
            "near_dup_threshold": self.near_dup,
            "near_dup_num_perm": self.near_dup_num_perm,
            "train_rows": self.train_rows,
            "eval_rows_total": self.eval_rows,
            "eval_checked": self.eval_checked,
            "contaminated": self.contaminated,
            "contaminated_fraction": self.contaminated_fraction,
            "train_rows_with_overlap": self.train_rows_with_overlap,
            "eval_rows": [item.eval_row for item in self.items[:limit]],
            "methods": {
                m: {"count": len(rows), "eval_rows": rows[:limit]}
                for m, rows in self.rows_by_method().items()
            },
            "rows_listed": limit,
        }


def normalize_words(text: str) -> list[str]:
    """The words every check compares: NFKC, lower-case, punctuation and symbols deleted, split at
    whitespace. ``normalize_words("Don't  STOP-now!") == ["dont", "stopnow"]``."""
    return [w.decode("utf-8", "surrogatepass") for w in _normalize(text).split()]


def find_contamination(
    train_rows: Iterable[Mapping[str, Any]],
    eval_rows: Iterable[Mapping[str, Any]],
    *,
    n: int = DEFAULT_NGRAM,
    fields: Sequence[str] | None = None,
    near_dup: float | None = None,
    prompt_field: str | None = "prompt",
) -> ContaminationReport:
    """Eval rows whose text (exactly, by prompt, by word n-grams, or nearly) occurs in the training rows.

    ``fields`` limits which columns are compared (default: every text column, including the
    ``content`` of chat ``messages``). ``near_dup`` turns on MinHash near-duplicate detection at
    that Jaccard threshold (needs ``datasketch``). ``prompt_field`` names the column the prompt
    check compares (None: no prompt check). ``train_rows`` is consumed once, so a generator works.
    """
    index = _EvalIndex(list(eval_rows), n, fields, near_dup, prompt_field)
    part = index.scan(train_rows, 0)
    if part.train_rows == 0:
        raise DataError("contamination check: the training set has no rows")
    return index.report([part])


@dataclass
class TrainShardMatches:
    """What one slice of the training rows shares with the eval set, free of process-salted hashes.

    Eval n-grams are named by their position in the eval set's n-gram sequence (the same in every
    process), so slices checked by different processes merge exactly (see :func:`merge_shard_matches`).
    Train row numbers are 0-based and global; ``_NONE`` means no match.
    """

    train_rows: int
    overlapping_rows: int
    gram_ids: list[int]
    gram_first: list[int]
    exact_first: list[int]
    prompt_first: list[int]
    near: dict[int, tuple[int, float]]


def check_train_shard(
    train_rows: Sequence[Mapping[str, Any]],
    first_row: int,
    eval_rows: Sequence[Mapping[str, Any]],
    *,
    n: int = DEFAULT_NGRAM,
    fields: Sequence[str] | None = None,
    near_dup: float | None = None,
    prompt_field: str | None = "prompt",
) -> TrainShardMatches:
    """The matches of training rows ``first_row, first_row + 1, ...`` (one shard) against ``eval_rows``."""
    return _EvalIndex(list(eval_rows), n, fields, near_dup, prompt_field).scan(train_rows, first_row)


def merge_shard_matches(
    parts: Sequence[TrainShardMatches],
    eval_rows: Sequence[Mapping[str, Any]],
    *,
    n: int = DEFAULT_NGRAM,
    fields: Sequence[str] | None = None,
    near_dup: float | None = None,
    prompt_field: str | None = "prompt",
) -> ContaminationReport:
    """The report :func:`find_contamination` gives for all the shards' training rows, in shard order."""
    if sum(p.train_rows for p in parts) == 0:
        raise DataError("contamination check: the training set has no rows")
    return _EvalIndex(list(eval_rows), n, fields, near_dup, prompt_field, build_lookups=False).report(parts)


class _EvalIndex:
    """The eval set analysed once: its distinct (row, n-gram) pairs and the lookups training rows hit."""

    def __init__(
        self,
        eval_list: list[Mapping[str, Any]],
        n: int,
        fields: Sequence[str] | None,
        near_dup: float | None,
        prompt_field: str | None,
        *,
        build_lookups: bool = True,
    ) -> None:
        if not isinstance(n, int) or n < 1:
            raise DataError(f"n-gram size must be a positive integer, got {n!r}")
        np = self.np = _numpy()
        if not eval_list:
            raise DataError("contamination check: the eval set has no rows")
        self.n, self.fields, self.prompt_field, self.near_dup = n, fields, prompt_field, near_dup
        self.size = len(eval_list)
        ev = self.ev = _analyse(eval_list, n, fields, prompt_field, np)
        # Distinct (eval row, gram) pairs: a gram repeated inside one row counts once. The stable
        # sort keeps each pair's first position in ev.grams, its process-independent name.
        order = np.lexsort((ev.grams, ev.gram_owner))
        grams_sorted, owner_sorted = ev.grams[order], ev.gram_owner[order]
        keep = np.ones(len(grams_sorted), dtype=bool)
        keep[1:] = (grams_sorted[1:] != grams_sorted[:-1]) | (owner_sorted[1:] != owner_sorted[:-1])
        self.eval_grams, self.eval_owner = grams_sorted[keep], owner_sorted[keep]
        self.gram_ids = order[keep]
        self.finder: NearDuplicateFinder | None = None
        if build_lookups:
            if near_dup is not None:
                from provenir.data.near_dup import NearDuplicateFinder

                self.finder = NearDuplicateFinder(near_dup, ev.word_rows())
            self.grams = _Lookup(self.eval_grams, np)
            self.exact = _Lookup(ev.row_keys[ev.row_lens > 0], np)
            self.prompts = _Lookup(ev.prompt_keys[ev.prompt_lens > 0], np)

    def scan(self, train_rows: Iterable[Mapping[str, Any]], first_row: int) -> TrainShardMatches:
        """Stream training rows (numbered from ``first_row``) through the lookups."""
        np, ev = self.np, self.ev
        train_count = first_row
        overlapping_rows = 0
        for chunk in _chunks(train_rows, _CHUNK_ROWS):
            tr = _analyse(chunk, self.n, self.fields, self.prompt_field, np)
            hit_rows = self.grams.record(tr.grams, tr.gram_owner + train_count, prefilter=True)
            overlapping_rows += len(np.unique(hit_rows))
            rows = np.arange(train_count, train_count + len(chunk), dtype=np.int64)
            self.exact.record(tr.row_keys[tr.row_lens > 0], rows[tr.row_lens > 0])
            self.prompts.record(tr.prompt_keys[tr.prompt_lens > 0], rows[tr.prompt_lens > 0])
            if self.finder is not None:
                self.finder.scan(tr.word_rows(), train_count)
            train_count += len(chunk)
        gram_first = self.grams.first(self.eval_grams)
        matched = gram_first != _NONE
        return TrainShardMatches(
            train_rows=train_count - first_row,
            overlapping_rows=overlapping_rows,
            gram_ids=self.gram_ids[matched].tolist(),
            gram_first=gram_first[matched].tolist(),
            exact_first=np.where(ev.row_lens > 0, self.exact.first(ev.row_keys), _NONE).tolist(),
            prompt_first=np.where(ev.prompt_lens > 0, self.prompts.first(ev.prompt_keys), _NONE).tolist(),
            near=dict(self.finder.found) if self.finder is not None else {},
        )

    def report(self, parts: Sequence[TrainShardMatches]) -> ContaminationReport:
        """Merge shards' matches (earliest training row wins) into the report."""
        np, size = self.np, self.size
        position = {int(g): i for i, g in enumerate(self.gram_ids.tolist())}
        gram_first = np.full(len(self.gram_ids), _NONE, dtype=np.int64)
        exact_first = np.full(size, _NONE, dtype=np.int64)
        prompt_first = np.full(size, _NONE, dtype=np.int64)
        near: dict[int, tuple[int, float]] = {}
        for part in parts:
            at = np.array([position[g] for g in part.gram_ids], dtype=np.int64)
            if len(at):
                np.minimum.at(gram_first, at, np.array(part.gram_first, dtype=np.int64))
            exact_first = np.minimum(exact_first, np.array(part.exact_first, dtype=np.int64))
            prompt_first = np.minimum(prompt_first, np.array(part.prompt_first, dtype=np.int64))
            for i, (train_row, similarity) in part.near.items():
                if i not in near or train_row < near[i][0]:
                    near[i] = (train_row, similarity)
        eval_owner = self.eval_owner
        matched = gram_first != _NONE
        totals = np.bincount(eval_owner, minlength=size)
        overlaps = np.bincount(eval_owner[matched], minlength=size)
        ngram_first = np.full(size, _NONE, dtype=np.int64)
        np.minimum.at(ngram_first, eval_owner[matched], gram_first[matched])

        def row(value: int) -> int | None:
            return None if value == _NONE else value + 1

        found = (ngram_first != _NONE) | (exact_first != _NONE) | (prompt_first != _NONE)
        found[list(near)] = True
        items = [
            ContaminatedItem(
                eval_row=i + 1,
                overlap=int(overlaps[i]),
                total=int(totals[i]),
                ngram_train_row=row(int(ngram_first[i])),
                exact_train_row=row(int(exact_first[i])),
                prompt_train_row=row(int(prompt_first[i])),
                near_dup_train_row=near[i][0] + 1 if i in near else None,
                similarity=near[i][1] if i in near else None,
            )
            for i in np.flatnonzero(found).tolist()
        ]
        num_perm = None
        if self.near_dup is not None:
            from provenir.data.near_dup import NUM_PERM

            num_perm = NUM_PERM
        return ContaminationReport(
            n=self.n,
            train_rows=sum(p.train_rows for p in parts),
            eval_rows=size,
            eval_checked=int(np.count_nonzero(self.ev.row_lens)),
            train_rows_with_overlap=sum(p.overlapping_rows for p in parts),
            items=items,
            near_dup=self.near_dup,
            near_dup_num_perm=num_perm,
        )


def enforce_contamination_policy(report: ContaminationReport, mode: ContaminationMode) -> None:
    """Apply ``data.contamination_check``: ``warn`` emits a :class:`ContaminationWarning`,
    ``refuse`` raises :class:`ContaminationError`; a clean report or ``off`` does nothing.
    Every check counts, near-duplicates included."""
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


class _Lookup:
    """A sorted set of eval hashes and, for each, the first training row seen with it."""

    def __init__(self, keys: np.ndarray, np: Any) -> None:
        self.np = np
        self.index = np.unique(keys)
        self.first_seen = np.full(len(self.index), _NONE, dtype=np.int64)
        # A byte-per-slot prefilter on the top hash bits, ~32 slots per eval hash: one cache-friendly
        # gather discards ~97% of training n-grams before the (cache-missing) binary search.
        bits = int(min(28, max(16, (32 * max(len(self.index), 1) - 1).bit_length())))
        self.shift = np.uint64(64 - bits)
        self.present = np.zeros(1 << bits, dtype=bool)
        self.present[self.index >> self.shift] = True

    def record(self, keys: np.ndarray, rows: np.ndarray, *, prefilter: bool = False) -> np.ndarray:
        """Note the training ``rows`` whose ``keys`` are eval hashes; returns those rows."""
        np = self.np
        if not len(self.index) or not len(keys):
            return rows[:0]
        if prefilter:
            candidates = np.flatnonzero(self.present[keys >> self.shift])
            keys, rows = keys[candidates], rows[candidates]
        pos = np.minimum(np.searchsorted(self.index, keys), len(self.index) - 1)
        hit = self.index[pos] == keys
        if hit.any():
            np.minimum.at(self.first_seen, pos[hit], rows[hit])
        return rows[hit]

    def first(self, keys: np.ndarray) -> np.ndarray:
        """First training row (0-based) per key, ``_NONE`` where none had it."""
        np = self.np
        if not len(self.index):
            return np.full(len(keys), _NONE, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.index, keys), len(self.index) - 1)
        return np.where(self.index[pos] == keys, self.first_seen[pos], _NONE)


@dataclass
class _Analysed:
    """One chunk of rows, normalised and hashed (row numbers 0-based within the chunk)."""

    tokens: list[bytes]
    word_index: np.ndarray  # positions in ``tokens`` of the words (not separators), row by row
    word_starts: np.ndarray  # per row: where its words begin in ``word_index``
    grams: np.ndarray  # n-gram hashes, plus the whole-row hash of rows with no n-gram
    gram_owner: np.ndarray
    row_keys: np.ndarray  # hash of the row's whole word sequence (valid where row_lens > 0)
    row_lens: np.ndarray
    prompt_keys: np.ndarray
    prompt_lens: np.ndarray

    def word_rows(self) -> WordRows:
        from provenir.data.near_dup import WordRows

        return WordRows(self.tokens, self.word_index, self.word_starts, self.row_lens)


def _chunks(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


@cache
def _unicode_deletions() -> dict[int, None]:
    import sys

    return {c: None for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c))[0] in "PS"}


def _normalize(text: str) -> bytes:
    """``text`` normalised, as UTF-8 bytes whose whitespace-separated tokens are the words (and separators)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).lower()
        if not text.isascii():
            text = " ".join(text.translate(_unicode_deletions()).split())
            return text.encode("utf-8", "surrogatepass")
    # bytes.translate tokenises several times faster than the str methods or a regex.
    return text.encode("ascii").lower().translate(_ASCII_TABLE, _ASCII_PUNCT)


def _texts(value: Any) -> Iterator[str]:
    """Every string inside a cell: text itself, or the ``content`` of chat messages."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        yield from _texts(value.get("content"))
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _texts(v)


def _is_chat(value: Any) -> TypeGuard[list[Mapping[str, Any]]]:
    return (
        isinstance(value, list)
        and len(value) > 1
        and all(isinstance(m, Mapping) for m in value)
        and value[-1].get("role") == "assistant"
    )


def _row_parts(
    row: Mapping[str, Any], fields: Sequence[str] | None, prompt_field: str | None
) -> tuple[list[str], list[str]]:
    """(prompt texts, other texts) of one row, in comparison order."""
    if not isinstance(row, Mapping):
        raise DataError(f"contamination check: rows must be mappings, got {type(row).__name__}")
    keys = list(row) if fields is None else list(fields)
    if prompt_field is not None and prompt_field in keys and prompt_field in row:
        return list(_texts(row[prompt_field])), [
            t for k in keys if k != prompt_field for t in _texts(row.get(k))
        ]
    for k in keys:
        value = row.get(k)
        if _is_chat(value):  # the prompt is every turn before the final assistant turn
            others = [t for o in keys if o != k for t in _texts(row.get(o))]
            return list(_texts(value[:-1])), [*_texts(value[-1]), *others]
    return [], [t for k in keys for t in _texts(row.get(k))]


def _row_text(row: Mapping[str, Any], fields: Sequence[str] | None, prompt_field: str | None) -> str:
    if fields is None and type(row) is dict:
        # Fast path for the usual all-text row (a TypeError means some cell is not text).
        try:
            prompt = row.get(prompt_field) if prompt_field is not None else None
            if prompt is None:
                return _PROMPT_SEP + _FIELD_SEP.join(row.values())
            rest = _FIELD_SEP.join([v for k, v in row.items() if k != prompt_field])
            return prompt + _PROMPT_SEP + rest
        except TypeError:
            pass
    prompt_parts, others = _row_parts(row, fields, prompt_field)
    return _FIELD_SEP.join(prompt_parts) + _PROMPT_SEP + _FIELD_SEP.join(others)


def _chunk_text(
    rows: Sequence[Mapping[str, Any]], fields: Sequence[str] | None, prompt_field: str | None
) -> str:
    """Rows joined for one tokenising pass: ``prompt \\x02 field \\x00 field \\x01 next row ...``."""
    text = _ROW_SEP.join([_row_text(r, fields, prompt_field) for r in rows])
    if text.count(_ROW) == len(rows) - 1 and text.count(_PROMPT_END) == len(rows):
        return text
    # The data itself holds a separator character (real text never needs them): blank them out.
    clean = str.maketrans({_ROW: " ", _PROMPT_END: " "})
    texts = []
    for r in rows:
        prompt_parts, others = _row_parts(r, fields, prompt_field)
        texts.append(
            _FIELD_SEP.join(t.translate(clean) for t in prompt_parts)
            + _PROMPT_SEP
            + _FIELD_SEP.join(t.translate(clean) for t in others)
        )
    return _ROW_SEP.join(texts)


def _analyse(
    rows: Sequence[Mapping[str, Any]], n: int, fields: Sequence[str] | None, prompt_field: str | None, np: Any
) -> _Analysed:
    """Normalise, tokenise and hash a chunk of rows in one pass, then vectorised hashing."""
    text = _normalize(_chunk_text(rows, fields, prompt_field))
    tokens = text.split()
    # Python's bytes hash: C speed, well mixed, and stable within the process that compares both sets.
    words = np.fromiter(map(hash, tokens), dtype=np.int64, count=len(tokens)).view(np.uint64)
    row_break = words == np.int64(hash(_ROW.encode())).view(np.uint64)
    prompt_end = words == np.int64(hash(_PROMPT_END.encode())).view(np.uint64)
    is_break = row_break | prompt_end | (words == np.int64(hash(_FIELD.encode())).view(np.uint64))
    owner = np.cumsum(row_break, dtype=np.int64)
    count = len(rows)

    word_index = np.flatnonzero(~is_break)
    word_owner = owner[word_index]
    row_lens = np.bincount(word_owner, minlength=count)
    # Each row has exactly one prompt marker; its prompt is the words before it.
    prompt_at = np.full(count, -1, dtype=np.int64)
    marks = np.flatnonzero(prompt_end)
    prompt_at[owner[marks]] = marks
    prompt_lens = np.bincount(word_owner[word_index < prompt_at[word_owner]], minlength=count)
    # Whole-text keys ignore whitespace altogether, so "2+2" (normalised "22") matches "2 + 2".
    per_row = text.split(_ROW.encode())
    row_keys = np.fromiter(
        (hash(r.translate(None, _NOT_TEXT)) for r in per_row), dtype=np.int64, count=count
    ).view(np.uint64)
    prompt_keys = np.fromiter(
        (hash(r.partition(_PROMPT_END.encode())[0].translate(None, _NOT_TEXT)) for r in per_row),
        dtype=np.int64,
        count=count,
    ).view(np.uint64)

    size = len(tokens) - n + 1
    if size > 0:
        grams = words[:size].copy()
        mult = np.uint64(_MULTIPLIER)
        for j in range(1, n):
            grams *= mult  # uint64 arithmetic wraps modulo 2^64, which is what a rolling hash wants
            grams += words[j : j + size]
        breaks = np.concatenate(([0], np.cumsum(is_break, dtype=np.int64)))
        valid = breaks[n : n + size] == breaks[:size]  # no separator inside the window
        grams, gram_owner = grams[valid], owner[:size][valid]
    else:
        grams, gram_owner = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    # Rows with no n-gram (no field of n words) are compared whole: their text key is their one gram.
    has_gram = np.zeros(count, dtype=bool)
    has_gram[gram_owner] = True
    short = np.flatnonzero(~has_gram & (row_lens > 0))
    if len(short):
        grams = np.concatenate((grams, row_keys[short]))
        gram_owner = np.concatenate((gram_owner, short))
    return _Analysed(
        tokens=tokens,
        word_index=word_index,
        word_starts=np.cumsum(row_lens) - row_lens,
        grams=grams,
        gram_owner=gram_owner,
        row_keys=row_keys,
        row_lens=row_lens,
        prompt_keys=prompt_keys,
        prompt_lens=prompt_lens,
    )
