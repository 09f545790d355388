"""Throughput of the contamination check: a generated 1M-row train set vs a 10k-row eval set.

    python bench/contamination.py                    # 1,000,000 train rows, 10,000 eval rows, 13-grams
    python bench/contamination.py --near-dup 0.8     # then again with MinHash near-duplicates on
    python bench/contamination.py --train-rows 100000

Rows are assembled from pools of pre-generated sentences so that generating the data takes a
small fraction of the time the check does. The eval set is drawn from a disjoint vocabulary, with
``--planted`` rows copied from the training set (after changing case and punctuation) and
``--paraphrased`` rows copied with one response word replaced. The exact check must find exactly
the copies, the prompt check exactly the copies and the paraphrases; the n-gram check and the
near-duplicates every copy and nothing outside the planted rows (the bench prints how many
paraphrases they found).
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from provenir.data.contamination import ContaminationReport, find_contamination


def sentences(rng: random.Random, vocab: list[str], count: int, lo: int, hi: int) -> list[str]:
    """``count`` random sentences of ``lo..hi`` words."""
    return [" ".join(rng.choices(vocab, k=rng.randint(lo, hi))) for _ in range(count)]


def timed(
    train: list[dict[str, str]], eval_rows: list[dict[str, str]], **kwargs: Any
) -> tuple[ContaminationReport, float, float]:
    """The report, wall seconds and CPU seconds of one check."""
    t, c = time.perf_counter(), time.process_time()
    report = find_contamination(train, eval_rows, **kwargs)
    return report, time.perf_counter() - t, time.process_time() - c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=1_000_000)
    parser.add_argument("--eval-rows", type=int, default=10_000)
    parser.add_argument("--planted", type=int, default=100, help="eval rows copied from the train set")
    parser.add_argument(
        "--paraphrased", type=int, default=100, help="eval rows copied with one word replaced"
    )
    parser.add_argument("--n", type=int, default=13)
    parser.add_argument("--near-dup", type=float, default=None, help="also time MinHash near-duplicates")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    rng = random.Random(args.seed)
    train_vocab = [f"w{i}" for i in range(20_000)]
    eval_vocab = [f"e{i}" for i in range(20_000)]  # disjoint: only planted rows can overlap
    prompts = sentences(rng, train_vocab, 50_000, 10, 30)
    responses = sentences(rng, train_vocab, 50_000, 15, 45)
    train = [
        {"prompt": prompts[rng.randrange(len(prompts))], "response": responses[rng.randrange(len(responses))]}
        for _ in range(args.train_rows)
    ]
    eval_rows = [
        {"prompt": p, "response": r}
        for p, r in zip(
            sentences(rng, eval_vocab, args.eval_rows, 10, 30),
            sentences(rng, eval_vocab, args.eval_rows, 15, 45),
            strict=True,
        )
    ]
    chosen = rng.sample(range(args.eval_rows), args.planted + args.paraphrased)
    planted, paraphrased = sorted(chosen[: args.planted]), sorted(chosen[args.planted :])
    for i in planted:  # an exact copy once case and punctuation are normalised
        row = train[rng.randrange(args.train_rows)]
        eval_rows[i] = {
            "prompt": row["prompt"].upper() + "?",
            "response": row["response"].replace(" ", ",  "),
        }
    for i in paraphrased:  # one response word replaced by a word the training set never uses
        row = train[rng.randrange(args.train_rows)]
        words = row["response"].split()
        words[rng.randrange(len(words))] = rng.choice(eval_vocab)
        eval_rows[i] = {"prompt": row["prompt"], "response": " ".join(words)}
    gen_s = time.perf_counter() - t0

    report, check_s, check_cpu_s = timed(train, eval_rows, n=args.n)
    found = report.rows_by_method()
    copies = [i + 1 for i in planted]
    both = sorted(copies + [i + 1 for i in paraphrased])
    assert found["exact"] == copies, f"exact: expected {copies[:5]}..., found {found['exact'][:5]}..."
    assert found["prompt"] == both, f"prompt: expected {both[:5]}..., found {found['prompt'][:5]}..."
    # A paraphrase keeps its n-grams unless the replaced word sits in every window of its fields.
    assert set(copies) <= set(found["ngram"]) <= set(both), "n-gram: found rows outside the planted ones"
    print(f"train rows        {args.train_rows:,}")
    print(
        f"eval rows         {args.eval_rows:,}  (planted copies: {args.planted}, paraphrases: {args.paraphrased})"
    )
    print(f"n-gram            {args.n}")
    print(f"data generation   {gen_s:.2f} s")
    print(f"check             {check_s:.2f} s wall, {check_cpu_s:.2f} s CPU (single-threaded)")
    print(f"throughput        {args.train_rows / check_s:,.0f} train rows/s (wall)")
    # CPU time is the figure to compare across runs on a shared machine.
    print(f"                  {args.train_rows / check_cpu_s:,.0f} train rows/s (CPU)")
    print(f"report            {report.summary()}")
    print(f"n-gram            found {len(found['ngram']) - len(copies)} of {len(paraphrased)} paraphrases")
    if args.near_dup is None:
        return

    report, near_s, near_cpu_s = timed(train, eval_rows, n=args.n, near_dup=args.near_dup)
    near = report.rows_by_method()["near_dup"]
    assert set(near) <= set(both), (
        f"near-duplicates outside the planted rows: {sorted(set(near) - set(both))[:5]}"
    )
    assert set(near) >= set(copies), "an exact copy was missed as a near-duplicate"
    print(f"with near-dup     {near_s:.2f} s wall, {near_cpu_s:.2f} s CPU (threshold {args.near_dup:g})")
    print(
        f"                  {args.train_rows / near_cpu_s:,.0f} train rows/s (CPU); MinHash adds {near_cpu_s - check_cpu_s:.2f} s CPU"
    )
    print(
        f"near-duplicates   {len(near)} found of {len(both)} planted rows (copies and one-word paraphrases)"
    )


if __name__ == "__main__":
    main()
