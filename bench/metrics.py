"""Benchmark: Provenir's metric suite vs calling sacrebleu and rouge-score directly, on 10k pairs.

The baseline is what a user would otherwise write: ``sacrebleu.corpus_bleu`` plus
``sacrebleu.sentence_bleu`` per item plus ``RougeScorer(["rougeL"]).score`` per item. Provenir's
side is the full public path, ``MultiMetricEvaluator().evaluate(dataset, predictions)``: exact
match, token F1, BLEU (sentence and corpus), ROUGE-L, plus a Wilson interval and three 1000-resample
bootstrap intervals. The script checks that both sides produce the same numbers, then prints
both times and the ratio (goal: <= 1.0x).

    python bench/metrics.py [--pairs 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any


def make_pairs(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[str]]:
    """Deterministic (reference, prediction) pairs of 5-30 words with partial overlap."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(400)] + ["the", "a", "of", "is", ",", ".", "Running", "runs", "café"]
    dataset, predictions = [], []
    for i in range(n):
        ref = [rng.choice(vocab) for _ in range(rng.randint(5, 30))]
        pred = [w if rng.random() < 0.6 else rng.choice(vocab) for w in ref]
        if rng.random() < 0.3:
            pred = pred[: rng.randint(1, len(pred))]
        dataset.append({"prompt": f"q{i}", "response": " ".join(ref)})
        predictions.append(" ".join(pred))
    return dataset, predictions


def baseline(dataset: list[dict[str, Any]], predictions: list[str]) -> dict[str, Any]:
    """sacrebleu + rouge-score called directly, per item and per corpus."""
    import sacrebleu
    from rouge_score import rouge_scorer

    refs = [r["response"] for r in dataset]
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    return {
        "corpus_bleu": sacrebleu.corpus_bleu(predictions, [refs]).score / 100,
        "sentence_bleu": [
            sacrebleu.sentence_bleu(p, [r]).score / 100 for p, r in zip(predictions, refs, strict=True)
        ],
        "rouge_l": [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, refs, strict=True)],
    }


def provenir_suite(dataset: list[dict[str, Any]], predictions: list[str]) -> Any:
    """The whole Provenir suite with confidence intervals."""
    from provenir.eval.harness import MultiMetricEvaluator

    return MultiMetricEvaluator().evaluate(dataset, predictions)


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    from provenir.eval.metrics import normalize_answer

    # Start cold every time: the SQuAD normalisation cache would otherwise carry over from the
    # previous repeat (sacrebleu's tokeniser cache is per BLEU object, so both sides start cold).
    normalize_answer.cache_clear()
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    dataset, predictions = make_pairs(args.pairs)
    # Warm imports and caches on a few pairs so neither side pays one-off import costs in the timing.
    baseline(dataset[:5], predictions[:5])
    provenir_suite(dataset[:5], predictions[:5])

    # Interleaved, best of N each: load from other processes hits both sides alike.
    base_times, our_times = [], []
    for _ in range(args.repeats):
        t, ref = timed(baseline, dataset, predictions)
        base_times.append(t)
        t, res = timed(provenir_suite, dataset, predictions)
        our_times.append(t)
    t_base, t_ours = min(base_times), min(our_times)

    bleu, rouge = res.metrics["bleu4"], res.metrics["rouge_l"]
    worst_sentence = max(abs(a - b) for a, b in zip(bleu.scores, ref["sentence_bleu"], strict=True))
    worst_rouge = max(abs(a - b) for a, b in zip(rouge.scores, ref["rouge_l"], strict=True))
    corpus_diff = abs(bleu.corpus - ref["corpus_bleu"])
    assert worst_sentence <= 1e-6 and worst_rouge <= 1e-6 and corpus_diff <= 1e-6, "numbers differ"

    print(f"pairs: {args.pairs}   best of {args.repeats}")
    print(f"sacrebleu (corpus + sentence) + rouge-score, direct: {t_base:8.3f} s")
    print(f"provenir suite (EM, F1, BLEU, ROUGE-L + 4 CIs):     {t_ours:8.3f} s")
    print(f"ratio provenir / direct: {t_ours / t_base:.3f}x")
    print(
        f"same numbers: corpus BLEU {bleu.corpus:.6f} (diff {corpus_diff:.1e}), "
        f"max |sentence BLEU diff| {worst_sentence:.1e}, max |ROUGE-L diff| {worst_rouge:.1e}"
    )


if __name__ == "__main__":
    main()
