"""Metrics equal the reference implementations: SQuAD v1.1 script, sacrebleu, rouge-score."""

from __future__ import annotations

import random
import re
import string
from collections import Counter

import pytest

from provenir.core.errors import EvaluationError
from provenir.eval.metrics import BLEU4, ROUGE_L, ExactMatch, MetricFn, TokenF1, lcs_length
from provenir.plugins.registry import PluginRegistry

# -- the official SQuAD v1.1 evaluation functions, verbatim (evaluate-v1.1.py) -------------------


def squad_normalize_answer(s):  # type: ignore[no-untyped-def]
    def remove_articles(text):  # type: ignore[no-untyped-def]
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):  # type: ignore[no-untyped-def]
        return " ".join(text.split())

    def remove_punc(text):  # type: ignore[no-untyped-def]
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):  # type: ignore[no-untyped-def]
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def squad_f1_score(prediction, ground_truth):  # type: ignore[no-untyped-def]
    prediction_tokens = squad_normalize_answer(prediction).split()
    ground_truth_tokens = squad_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def squad_exact_match_score(prediction, ground_truth):  # type: ignore[no-untyped-def]
    return squad_normalize_answer(prediction) == squad_normalize_answer(ground_truth)


def squad_metric_max_over_ground_truths(metric_fn, prediction, ground_truths):  # type: ignore[no-untyped-def]
    return max(metric_fn(prediction, gt) for gt in ground_truths)


# -- varied cases: punctuation, articles, case, unicode, empty, several references --------------

CASES: list[tuple[str, list[str]]] = [
    ("The Eiffel Tower", ["Eiffel tower"]),
    ("the cat sat on the mat.", ["The cat sat on a mat!"]),
    ("An apple a day", ["apple day", "an apple every day"]),
    ("", ["something"]),
    ("something", [""]),
    ("", [""]),
    ("  Paris,   France  ", ["paris france", "Paris"]),
    ("Café au lait", ["cafe au lait", "Café au lait!"]),
    ("北京是中国的首都。", ["北京是中国的首都", "首都"]),
    ("naïve résumé — “quoted” text", ["naive resume quoted text", "naïve résumé “quoted” text"]),
    ("ＦＵＬＬＷＩＤＴＨ letters", ["fullwidth letters"]),
    ("emoji 🎉 party", ["emoji party 🎉"]),
    ("It's 3.14, isn't it?", ["its 314 isnt it", "It is 3.14"]),
    ("theatre of the absurd", ["the theatre", "absurd theatre"]),
    ("a an the", ["the"]),
    ("New York-based company", ["new yorkbased company", "New York based company"]),
    ("the the the cat", ["cat cat the"]),
    ("Σίσυφος ΟΔΥΣΣΕΥΣ", ["σίσυφος οδυσσευς"]),
    ("tabs\tand\nnewlines", ["tabs and newlines"]),
    (
        "The quick brown fox jumps over the lazy dog",
        ["A quick brown dog jumps over the lazy fox", "quick fox"],
    ),
    ("Running runners ran quickly", ["run runner running quick", "runs"]),
    ("1,000,000 dollars", ["1000000 dollars", "one million dollars"]),
]


def _random_cases(n: int, seed: int) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    vocab = [
        "the",
        "a",
        "cat",
        "dog",
        "Sat",
        "on",
        "mat",
        ",",
        ".",
        "!",
        "é",
        "running",
        "ran",
        "an",
        "42",
        "über",
        "x",
    ]

    def sent() -> str:
        return " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 14)))

    return [(sent(), [sent() for _ in range(rng.randint(1, 3))]) for _ in range(n)]


ALL_CASES = CASES + _random_cases(150, seed=7)
PREDS = [p for p, _ in ALL_CASES]
REFS = [r for _, r in ALL_CASES]


def test_exact_match_equals_official_squad_v11() -> None:
    scores = ExactMatch().compute(PREDS, REFS).scores
    expected = [
        float(squad_metric_max_over_ground_truths(squad_exact_match_score, p, r)) for p, r in ALL_CASES
    ]
    assert scores == pytest.approx(expected, abs=1e-9)
    assert set(scores) == {0.0, 1.0}  # the cases exercise both outcomes


def test_token_f1_equals_official_squad_v11() -> None:
    scores = TokenF1().compute(PREDS, REFS).scores
    expected = [float(squad_metric_max_over_ground_truths(squad_f1_score, p, r)) for p, r in ALL_CASES]
    assert scores == pytest.approx(expected, abs=1e-9)
    assert any(0 < s < 1 for s in scores)


def test_bleu_equals_sacrebleu_sentence_and_corpus() -> None:
    import sacrebleu

    result = BLEU4().compute(PREDS, REFS)
    expected = [sacrebleu.sentence_bleu(p, r).score / 100 for p, r in ALL_CASES]
    assert result.scores == pytest.approx(expected, abs=1e-6)
    width = max(len(r) for r in REFS)
    streams = [[r[k] if k < len(r) else None for r in REFS] for k in range(width)]
    assert result.corpus == pytest.approx(sacrebleu.corpus_bleu(PREDS, streams).score / 100, abs=1e-6)
    assert result.corpus_fn is not None and result.corpus_stats is not None
    assert result.corpus_fn(result.corpus_stats.sum(axis=0)) == result.corpus


def test_bleu_single_reference_corpus_equals_sacrebleu() -> None:
    import sacrebleu

    preds = ["the cat is on the mat", "there is a dog", "hello world", "completely different"]
    refs = ["the cat sat on the mat", "there is a cat", "hello there world", "nothing alike here at all"]
    result = BLEU4().compute(preds, [[r] for r in refs])
    assert result.corpus == pytest.approx(sacrebleu.corpus_bleu(preds, [refs]).score / 100, abs=1e-6)
    assert 0 < result.corpus < 1


@pytest.mark.parametrize("use_stemmer", [False, True])
def test_rouge_l_equals_rouge_score(use_stemmer: bool) -> None:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)
    scores = ROUGE_L(use_stemmer=use_stemmer).compute(PREDS, REFS).scores
    expected = [scorer.score_multi(r, p)["rougeL"].fmeasure for p, r in ALL_CASES]
    assert scores == pytest.approx(expected, abs=1e-6)


def test_rouge_stemming_changes_scores_where_it_should() -> None:
    plain = ROUGE_L().compute(["Running runners"], [["run runner"]]).scores[0]
    stemmed = ROUGE_L(use_stemmer=True).compute(["Running runners"], [["run runner"]]).scores[0]
    assert plain == 0.0 and stemmed == 1.0


def test_bit_parallel_lcs_equals_rouge_score_table() -> None:
    from rouge_score.rouge_scorer import _lcs_table

    rng = random.Random(0)
    for _ in range(300):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 90))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 90))]
        expected = _lcs_table(a, b)[-1][-1] if a and b else 0
        assert lcs_length(a, b) == expected


def test_metrics_are_registered_and_follow_the_protocol() -> None:
    for name, cls in [
        ("exact_match", ExactMatch),
        ("token_f1", TokenF1),
        ("bleu4", BLEU4),
        ("rouge_l", ROUGE_L),
    ]:
        assert PluginRegistry.get("metric", name) is cls
        metric = PluginRegistry.create("metric", name)
        assert isinstance(metric, MetricFn) and metric.name == name
        # The registry infers kinds from these names; a metric must not look like a reward/judge/backend.
        assert not any(hasattr(metric, m) for m in ("score", "fit", "score_pairwise"))


@pytest.mark.parametrize("metric", [ExactMatch(), TokenF1(), BLEU4(), ROUGE_L()])
def test_bad_inputs_give_clear_errors(metric: MetricFn) -> None:
    with pytest.raises(EvaluationError, match="no predictions"):
        metric.compute([], [])
    with pytest.raises(EvaluationError, match="pair up"):
        metric.compute(["a", "b"], [["a"]])
    with pytest.raises(EvaluationError, match="non-empty list"):
        metric.compute(["a"], [[]])
