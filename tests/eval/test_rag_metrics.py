"""RAG metrics: the seed snippet and the documented definitions."""

from __future__ import annotations

import pytest

from provenir.core.errors import EvaluationError
from provenir.eval.rag_metrics import RAGEvaluator, content_tokens, coverage


def test_seed_snippet_and_definitions() -> None:
    results = RAGEvaluator().evaluate(
        [
            {
                "question": "What is the capital of France?",
                "answer": "Paris is the capital of France.",
                "context": "France is a country in Western Europe. Its capital is Paris.",
            }
        ]
    )
    item = results.per_item()[0]
    # answer content tokens {paris, capital, france} all occur in the context
    assert item["faithfulness"] == 1.0
    # context content tokens: france country western europe capital paris; 2 of 6 are in the question
    assert item["context_precision"] == pytest.approx(2 / 6)
    # question content tokens capital, france are both covered by the answer
    assert item["answer_relevance"] == 1.0
    assert results.metrics["context_precision"].mean == pytest.approx(2 / 6)


def test_partial_grounding_empty_answer_and_passage_lists() -> None:
    results = RAGEvaluator(n_bootstrap=200).evaluate(
        [
            {
                "question": "Who wrote Hamlet?",
                "answer": "Hamlet was written by Marlowe in London.",
                "context": ["Hamlet is a tragedy.", "It was written by William Shakespeare."],
            },
            {"question": "Who wrote Hamlet?", "answer": "", "context": "Shakespeare wrote Hamlet."},
        ]
    )
    first, second = results.per_item()
    # content tokens of the answer: hamlet written marlowe london -> 2 of 4 grounded
    assert first["faithfulness"] == pytest.approx(0.5)
    assert first["answer_relevance"] == pytest.approx(
        1 / 2
    )  # question: wrote, hamlet; answer has hamlet only
    assert second["faithfulness"] == 0.0 and second["answer_relevance"] == 0.0
    assert results.metrics["faithfulness"].mean == pytest.approx(0.25)
    assert results.metrics["faithfulness"].interval == "bootstrap"


def test_tokenisation_drops_stop_words_punctuation_and_articles() -> None:
    assert content_tokens("What is THE capital, of France?!") == ["capital", "france"]
    assert coverage([], ["x"]) == 0.0
    assert coverage(["a", "b", "b"], ["b"]) == pytest.approx(2 / 3)


def test_embedding_variants_use_the_given_embedder() -> None:
    import numpy as np

    vocab = ["paris", "capital", "france", "berlin", "germany", "country"]

    def embed(texts: list[str]) -> np.ndarray:
        return np.array([[float(w in content_tokens(t)) for w in vocab] for t in texts])

    item = (
        RAGEvaluator(embedder=embed)
        .evaluate(
            [
                {
                    "question": "capital of France",
                    "answer": "Paris. Berlin.",
                    "context": "Paris is the capital of France.",
                }
            ]
        )
        .per_item()[0]
    )
    # cos(question={capital,france}, answer={paris,berlin}) = 0
    assert item["answer_relevance_embedding"] == pytest.approx(0.0)
    # cos(question, context={paris,capital,france}) = 2 / (sqrt2 * sqrt3)
    assert item["context_precision_embedding"] == pytest.approx(2 / (2**0.5 * 3**0.5))
    # sentences "Paris." -> 1/sqrt3 and "Berlin." -> 0 against the single context sentence
    assert item["faithfulness_embedding"] == pytest.approx((1 / 3**0.5) / 2)


def test_errors() -> None:
    with pytest.raises(EvaluationError, match="no RAG items"):
        RAGEvaluator().evaluate([])
    with pytest.raises(EvaluationError, match="'answer'"):
        RAGEvaluator().evaluate([{"question": "q", "context": "c"}])
