"""Text metrics equal to the field's reference tools, registered as ``metric`` plugins.

=============  ===============  ==========================================================
Name           Class            Reference implementation it equals
=============  ===============  ==========================================================
exact_match    :class:`ExactMatch`  official SQuAD v1.1 ``evaluate-v1.1.py`` (``exact_match_score``)
token_f1       :class:`TokenF1`     official SQuAD v1.1 ``evaluate-v1.1.py`` (``f1_score``)
bleu4          :class:`BLEU4`       ``sacrebleu`` corpus BLEU and ``sentence_bleu`` (defaults, 13a)
rouge_l        :class:`ROUGE_L`     ``rouge_score.rouge_scorer.RougeScorer(["rougeL"])`` F-measure
=============  ===============  ==========================================================

Every score is on the 0..1 scale (sacrebleu prints 0..100: divide by 100 to compare), so one
regression tolerance means the same thing for every metric. With several references per item
the item's score is the best one over its references (the SQuAD and rouge-score convention);
BLEU uses all references jointly, as sacrebleu does.

A metric is any object with ``name``, ``binary`` and ``compute(predictions, references)``
(:class:`MetricFn`). The built-ins are declared as ``provenir.metrics`` entry points;
register your own with ``@PluginRegistry.register("my_metric", kind="metric")``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, TypeVar, runtime_checkable

from provenir.core.answers import normalize_answer
from provenir.core.errors import EvaluationError

__all__ = [
    "BLEU4",
    "ROUGE_L",
    "DEFAULT_METRICS",
    "ExactMatch",
    "ItemScores",
    "MetricFn",
    "TokenF1",
    "lcs_length",
    "normalize_answer",
]

#: Metrics :class:`~provenir.eval.harness.MultiMetricEvaluator` computes when given none.
DEFAULT_METRICS: tuple[str, ...] = ("exact_match", "token_f1", "bleu4", "rouge_l")


@dataclass
class ItemScores:
    """What a metric returns: one score per item, plus an optional corpus-level score.

    ``corpus_stats``/``corpus_fn`` let the evaluator bootstrap a corpus-level score (BLEU is
    not the mean of sentence BLEUs): ``corpus_fn(sum of corpus_stats rows) == corpus``.
    """

    scores: list[float]
    binary: bool
    corpus: float | None = None
    corpus_stats: Any | None = field(default=None, repr=False)  # numpy (n, k) array of additive stats
    corpus_fn: Callable[[Sequence[float]], float] | None = field(default=None, repr=False)


@runtime_checkable
class MetricFn(Protocol):
    """The metric protocol: structural, no base class to inherit.

    ``references[i]`` is the non-empty list of reference strings of item ``i``. ``binary``
    says every item score is 0 or 1, which selects the Wilson interval instead of the
    bootstrap.
    """

    name: str
    binary: bool

    def compute(self, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> ItemScores: ...


_T = TypeVar("_T")


def _check_inputs(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(predictions) != len(references):
        raise EvaluationError(
            f"{len(predictions)} predictions but {len(references)} references: they must pair up one to one"
        )
    if not predictions:
        raise EvaluationError("nothing to evaluate: no predictions were given")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not refs:
            raise EvaluationError(f"item {i}: references must be a non-empty list of strings")


def _best_over_references(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    prepare: Callable[[str], _T],
    score: Callable[[_T, _T], float],
) -> list[float]:
    """Per item, the best ``score(prepare(prediction), prepare(reference))`` over its references.

    The inputs are checked (:func:`_check_inputs`) by the caller, before it loads anything.
    """
    scores = []
    for pred, refs in zip(predictions, references, strict=True):
        p = prepare(pred)
        scores.append(max(score(p, prepare(r)) for r in refs))
    return scores


# -- SQuAD v1.1 --------------------------------------------------------------------------------


def _f1_tokens(pred_tokens: list[str], ref_tokens: list[str]) -> float:
    common = Counter(pred_tokens) & Counter(ref_tokens)
    num_same = sum(common.values())
    if num_same == 0:  # also covers an empty prediction or reference (v1.1 scores it 0)
        return 0.0
    precision = 1.0 * num_same / len(pred_tokens)
    recall = 1.0 * num_same / len(ref_tokens)
    return (2 * precision * recall) / (precision + recall)


class ExactMatch:
    """1.0 when the SQuAD-normalised prediction equals a normalised reference, else 0.0.

    Example::

        ExactMatch().compute(["The Cat."], [["cat"]]).scores  # [1.0]
    """

    name = "exact_match"
    binary = True

    def compute(self, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> ItemScores:
        """Per-item exact match (max over references)."""
        _check_inputs(predictions, references)
        scores = _best_over_references(
            predictions, references, normalize_answer, lambda p, r: 1.0 if p == r else 0.0
        )
        return ItemScores(scores=scores, binary=True)


class TokenF1:
    """SQuAD v1.1 token F1: bag-of-tokens overlap of the normalised texts, max over references.

    An empty prediction or reference scores 0.0, as in the v1.1 script (v2.0 would give 1.0
    when both are empty).
    """

    name = "token_f1"
    binary = False

    def compute(self, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> ItemScores:
        """Per-item token F1 (max over references)."""
        _check_inputs(predictions, references)
        scores = _best_over_references(
            predictions, references, lambda text: normalize_answer(text).split(), _f1_tokens
        )
        return ItemScores(scores=scores, binary=False)


# -- BLEU ----------------------------------------------------------------------------------------


class BLEU4:
    """BLEU-4 exactly as sacrebleu computes it, on the 0..1 scale.

    * per item: ``sacrebleu.sentence_bleu(pred, refs).score / 100`` (exp smoothing, effective
      order: sacrebleu's sentence-level defaults);
    * ``corpus``: ``sacrebleu.corpus_bleu(preds, ref_streams).score / 100`` (its corpus
      defaults), with items that have fewer references padded with ``None`` as sacrebleu allows.

    Both come from one pass over sacrebleu's own tokeniser output and its n-gram statistics
    (``BLEU.compute_bleu`` turns them into scores), so the suite does not tokenise twice.
    """

    name = "bleu4"
    binary = False

    def __init__(self, tokenize: str = "13a", lowercase: bool = False) -> None:
        """``tokenize``: a sacrebleu tokeniser name (default 13a); ``lowercase``: case-insensitive BLEU."""
        self.tokenize = tokenize
        self.lowercase = lowercase

    def compute(self, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> ItemScores:
        """Sentence BLEU per item and corpus BLEU, with the additive statistics for bootstrapping."""
        import numpy as np
        from sacrebleu.metrics import BLEU

        _check_inputs(predictions, references)
        tokenizer = BLEU(tokenize=self.tokenize, lowercase=self.lowercase).tokenizer
        lowercase = self.lowercase

        def preprocess(text: str) -> str:
            # sacrebleu's BLEU._preprocess_segment: optional lowercasing, tokenise the rstripped text.
            return tokenizer((text.lower() if lowercase else text).rstrip())

        # The per-segment statistics sacrebleu's corpus_score and sentence_score both compute
        # (sentence BLEU is corpus BLEU of a one-item corpus), made once for both scores.
        stats = [
            _segment_stats(preprocess(p).split(), [preprocess(r).split() for r in refs])
            for p, refs in zip(predictions, references, strict=True)
        ]
        # Sentence BLEU as sacrebleu's sentence_score computes it: effective order on.
        scores = [_bleu_from_stats(s, effective_order=True) for s in stats]
        stats_arr = np.asarray(stats, dtype=np.int64)
        return ItemScores(
            scores=scores,
            binary=False,
            corpus=_corpus_bleu(stats_arr.sum(axis=0)),
            corpus_stats=stats_arr,
            corpus_fn=_corpus_bleu,
        )


_ORDER = 4


def _ngram_counts(tokens: list[str]) -> list[Counter[Any]]:
    # One counter per order; unigrams are plain strings, higher orders tuples.
    # zip of shifted copies stops at the shortest: exactly the n-grams (not strict on purpose).
    shifted = [zip(*(tokens[i:] for i in range(n))) for n in range(2, _ORDER + 1)]  # noqa: B905
    return [Counter(tokens)] + [Counter(grams) for grams in shifted]


def _segment_stats(hyp: list[str], refs: list[list[str]]) -> list[int]:
    """``[hyp_len, ref_len, correct_1..4, total_1..4]`` exactly as sacrebleu's BLEU computes them."""
    ref_counts = _ngram_counts(refs[0])
    for ref in refs[1:]:  # several references: the max count of each n-gram over them
        for merged, counts in zip(ref_counts, _ngram_counts(ref), strict=True):
            for gram, c in counts.items():
                if c > merged[gram]:
                    merged[gram] = c
    hyp_len = len(hyp)
    # Closest reference length; ties go to the shorter reference (sacrebleu _get_closest_ref_len).
    ref_len = min((len(r) for r in refs), key=lambda r: (abs(hyp_len - r), r))
    correct, total = [], []
    for hyp_n, ref_n in zip(_ngram_counts(hyp), ref_counts, strict=True):
        total.append(sum(hyp_n.values()))
        correct.append(sum(min(c, ref_n[g]) for g, c in hyp_n.items() if g in ref_n))
    return [hyp_len, ref_len, *correct, *total]


def _bleu_from_stats(stats: Sequence[float], *, effective_order: bool) -> float:
    """sacrebleu's BLEU (exp smoothing) on the 0-1 scale from [sys_len, ref_len, correct x4, total x4]."""
    from sacrebleu.metrics import BLEU

    s = [int(x) for x in stats]
    bleu = BLEU.compute_bleu(
        correct=s[2:6],
        total=s[6:10],
        sys_len=s[0],
        ref_len=s[1],
        smooth_method="exp",
        smooth_value=None,
        effective_order=effective_order,
        max_ngram_order=_ORDER,
    )
    return bleu.score / 100.0


def _corpus_bleu(summed: Sequence[float]) -> float:
    """sacrebleu corpus BLEU (its defaults: exp smoothing, no effective order) from summed statistics."""
    return _bleu_from_stats(summed, effective_order=False)


# -- ROUGE-L -------------------------------------------------------------------------------------


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists.

    Bit-parallel (Allison-Dix / Hyyrö): one big-integer update per token of the shorter list
    instead of rouge-score's O(len(a)·len(b)) Python table; the length is the same by
    construction and the tests check it against rouge-score's table.
    """
    if len(a) < len(b):
        a, b = b, a
    masks: dict[str, int] = {}
    bit = 1
    for tok in a:
        masks[tok] = masks.get(tok, 0) | bit
        bit <<= 1
    full = bit - 1
    v = full
    for tok in b:
        m = masks.get(tok)
        if m:  # a token absent from `a` leaves v unchanged
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


class _CachedStemmer:
    """Porter stemmer (rouge-score's own choice) memoised per word: text repeats words a lot."""

    def __init__(self) -> None:
        from nltk.stem import porter

        self.stem = lru_cache(maxsize=1 << 16)(porter.PorterStemmer().stem)


class ROUGE_L:  # noqa: N801 - the seed's public name
    """ROUGE-L F-measure exactly as ``rouge_score`` computes it (``RougeScorer(["rougeL"])``).

    Uses rouge-score's own tokeniser (lowercase, non ``[a-z0-9]`` characters become spaces,
    so non-ASCII letters are dropped exactly as there); ``use_stemmer=True`` applies its Porter
    stemming to tokens longer than 3 characters. Several references: the best F-measure, as
    ``RougeScorer.score_multi``.
    """

    name = "rouge_l"
    binary = False

    def __init__(self, use_stemmer: bool = False) -> None:
        """``use_stemmer``: Porter-stem tokens as ``RougeScorer(use_stemmer=True)`` does."""
        self.use_stemmer = use_stemmer

    def compute(self, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> ItemScores:
        """Per-item ROUGE-L F-measure (max over references)."""
        from rouge_score.tokenize import tokenize

        _check_inputs(predictions, references)
        stemmer = _CachedStemmer() if self.use_stemmer else None
        scores = _best_over_references(
            predictions, references, lambda text: tokenize(text, stemmer), lambda p, r: _rouge_l_f(r, p)
        )
        return ItemScores(scores=scores, binary=False)


def _rouge_l_f(target: list[str], prediction: list[str]) -> float:
    # The same float operations as rouge_score.rouge_scorer._score_lcs and scoring.fmeasure.
    if not target or not prediction:
        return 0.0
    lcs = lcs_length(target, prediction)
    precision = lcs / len(prediction)
    recall = lcs / len(target)
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0
