"""Lexical RAG metrics: faithfulness, context precision and answer relevance.

::

    from provenir.eval.rag_metrics import RAGEvaluator

    results = RAGEvaluator().evaluate([{
        "question": "What is the capital of France?",
        "answer": "Paris is the capital of France.",
        "context": "France is a country in Western Europe. Its capital is Paris.",
    }])
    results.metrics["faithfulness"].mean      # averaged, with a bootstrap CI
    results.per_item()[0]["answer_relevance"]  # per item

Definitions. Every text is tokenised the same way: the SQuAD v1.1 normalisation (lowercase,
ASCII punctuation removed, articles a/an/the removed, split on white space), then the English
stop words in :data:`STOP_WORDS` are removed so that "is", "of", "what" do not count as
overlap. With ``coverage(X, Y)`` = the fraction of the tokens of X (counted with repetition)
whose word occurs anywhere in Y:

* ``faithfulness = coverage(answer, context)``: how much of the answer is grounded in context;
* ``context_precision = coverage(context, question)``: how much of the context bears on the
  question (a list of passages is joined into one context);
* ``answer_relevance = coverage(question, answer)``: how much of the question the answer covers.

A side with no content tokens scores 0.0 (an empty answer is neither faithful nor relevant).
Every value is in [0, 1].

Embedding variants: pass ``embedder`` (any callable mapping a list of strings to a 2-D array of
vectors, e.g. a local sentence-transformers model's ``encode``) and each item also gets
``answer_relevance_embedding = cos(question, answer)``,
``context_precision_embedding = cos(question, context)`` and
``faithfulness_embedding`` = the mean over answer sentences of their best cosine similarity
with a context sentence. No model is downloaded: you bring the embedder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from provenir.core.errors import EvaluationError
from provenir.eval.bootstrap import DEFAULT_RESAMPLES
from provenir.eval.harness import EvalResult, metric_result_from_scores
from provenir.eval.metrics import normalize_answer

__all__ = ["RAG_METRICS", "RAGEvaluator", "STOP_WORDS", "content_tokens", "coverage"]

RAG_METRICS: tuple[str, ...] = ("faithfulness", "context_precision", "answer_relevance")

#: English function words ignored by the lexical RAG metrics (NLTK's English list, without
#: the contractions' fragments); punctuation is already gone when this list is applied.
STOP_WORDS: frozenset[str] = frozenset(
    [
        "i",
        "me",
        "my",
        "myself",
        "we",
        "our",
        "ours",
        "ourselves",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "he",
        "him",
        "his",
        "himself",
        "she",
        "her",
        "hers",
        "herself",
        "it",
        "its",
        "itself",
        "they",
        "them",
        "their",
        "theirs",
        "themselves",
        "what",
        "which",
        "who",
        "whom",
        "this",
        "that",
        "these",
        "those",
        "am",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "having",
        "do",
        "does",
        "did",
        "doing",
        "a",
        "an",
        "the",
        "and",
        "but",
        "if",
        "or",
        "because",
        "as",
        "until",
        "while",
        "of",
        "at",
        "by",
        "for",
        "with",
        "about",
        "against",
        "between",
        "into",
        "through",
        "during",
        "before",
        "after",
        "above",
        "below",
        "to",
        "from",
        "up",
        "down",
        "in",
        "out",
        "on",
        "off",
        "over",
        "under",
        "again",
        "further",
        "then",
        "once",
        "here",
        "there",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "nor",
        "not",
        "only",
        "own",
        "same",
        "so",
        "than",
        "too",
        "very",
        "s",
        "t",
        "can",
        "will",
        "just",
        "don",
        "should",
        "now",
        "d",
        "ll",
        "m",
        "o",
        "re",
        "ve",
        "y",
        "ain",
        "aren",
        "couldn",
        "didn",
        "doesn",
        "hadn",
        "hasn",
        "haven",
        "isn",
        "ma",
        "mightn",
        "mustn",
        "needn",
        "shan",
        "shouldn",
        "wasn",
        "weren",
        "won",
        "wouldn",
    ]
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def content_tokens(text: str) -> list[str]:
    """SQuAD-normalised tokens of ``text`` without stop words (see the module doc)."""
    return [t for t in normalize_answer(text).split() if t not in STOP_WORDS]


def coverage(tokens: Sequence[str], other: Iterable[str]) -> float:
    """Fraction of ``tokens`` (with repetition) that occur in ``other``; 0.0 when ``tokens`` is empty."""
    if not tokens:
        return 0.0
    vocab = set(other)
    return sum(1 for t in tokens if t in vocab) / len(tokens)


def _text_field(row: Mapping[str, Any], key: str, i: int) -> str:
    value = row.get(key)
    if key == "context" and isinstance(value, Sequence) and not isinstance(value, str):
        if not all(isinstance(v, str) for v in value):
            raise EvaluationError(f"item {i}: every context passage must be a string")
        return "\n".join(value)
    if not isinstance(value, str):
        raise EvaluationError(f"item {i}: field {key!r} must be a string, got {type(value).__name__}")
    return value


class RAGEvaluator:
    """Score question/answer/context triples with the lexical RAG metrics (and embedding ones).

    Args:
        embedder: optional ``Callable[[list[str]], array (n, d)]`` enabling the embedding variants.
        confidence, n_bootstrap, seed: settings of the bootstrap intervals of the averages.
    """

    def __init__(
        self,
        embedder: Callable[[list[str]], Any] | None = None,
        *,
        confidence: float = 0.95,
        n_bootstrap: int = DEFAULT_RESAMPLES,
        seed: int = 0,
    ) -> None:
        self.embedder = embedder
        self.confidence = confidence
        self.n_bootstrap = n_bootstrap
        self.seed = seed

    def score_item(self, question: str, answer: str, context: str) -> dict[str, float]:
        """The three lexical metrics of one item."""
        q, a, c = content_tokens(question), content_tokens(answer), content_tokens(context)
        return {
            "faithfulness": coverage(a, c),
            "context_precision": coverage(c, q),
            "answer_relevance": coverage(q, a),
        }

    def evaluate(self, items: Iterable[Mapping[str, Any]]) -> EvalResult:
        """Per-item scores (``result.per_item()``) and averages with bootstrap CIs (``result.metrics``).

        Each item needs ``question``, ``answer`` and ``context`` (a string or a list of passages).
        """
        rows = list(items)
        if not rows:
            raise EvaluationError("nothing to evaluate: no RAG items were given")
        triples = [
            (_text_field(r, "question", i), _text_field(r, "answer", i), _text_field(r, "context", i))
            for i, r in enumerate(rows)
        ]
        per_item = [self.score_item(q, a, c) for q, a, c in triples]
        if self.embedder is not None:
            for scores, extra in zip(per_item, self._embedding_scores(triples), strict=True):
                scores.update(extra)
        names = list(per_item[0])
        metrics = {
            name: metric_result_from_scores(
                name,
                [s[name] for s in per_item],
                binary=False,
                confidence=self.confidence,
                n_bootstrap=self.n_bootstrap,
                seed=self.seed,
            )
            for name in names
        }
        return EvalResult(
            metrics=metrics,
            n=len(rows),
            confidence=self.confidence,
            n_bootstrap=self.n_bootstrap,
            seed=self.seed,
        )

    def _embedding_scores(self, triples: list[tuple[str, str, str]]) -> list[dict[str, float]]:
        import numpy as np

        embedder = self.embedder
        assert embedder is not None

        def embed(texts: list[str]) -> Any:
            vecs = np.asarray(embedder(texts), dtype=np.float64)
            if vecs.ndim != 2 or vecs.shape[0] != len(texts):
                raise EvaluationError(f"embedder must return one vector per text, got shape {vecs.shape}")
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            # A zero vector has no direction: its cosine with anything is 0, not NaN.
            return np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)

        out = []
        for q, a, c in triples:
            a_sents = [s for s in _SENTENCE_END.split(a.strip()) if s] or [a]
            c_sents = [s for s in _SENTENCE_END.split(c.strip()) if s] or [c]
            vq, va, vc = embed([q, a, c])
            sims = embed(a_sents) @ embed(c_sents).T
            out.append(
                {
                    "faithfulness_embedding": float(np.clip(sims.max(axis=1).mean(), -1.0, 1.0)),
                    "context_precision_embedding": float(np.clip(vq @ vc, -1.0, 1.0)),
                    "answer_relevance_embedding": float(np.clip(vq @ va, -1.0, 1.0)),
                }
            )
        return out
