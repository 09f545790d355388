"""Throughput of the n-gram contamination check: a generated 1M-row train set vs a 10k-row eval set.

    python bench/contamination.py                # 1,000,000 train rows, 10,000 eval rows, 13-grams
    python bench/contamination.py --train-rows 100000

Rows are assembled from pools of pre-generated sentences so that generating the data takes a
small fraction of the time the check does. The eval set is drawn from a disjoint vocabulary, with
``--planted`` rows copied from the training set, so the report must find exactly those.
"""

from __future__ import annotations

import argparse
import random
import time

from provenir.data.contamination import find_contamination


def sentences(rng: random.Random, vocab: list[str], count: int, lo: int, hi: int) -> list[str]:
    """``count`` random sentences of ``lo..hi`` words."""
    return [" ".join(rng.choices(vocab, k=rng.randint(lo, hi))) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=1_000_000)
    parser.add_argument("--eval-rows", type=int, default=10_000)
    parser.add_argument("--planted", type=int, default=100, help="eval rows copied from the train set")
    parser.add_argument("--n", type=int, default=13)
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
    planted = sorted(rng.sample(range(args.eval_rows), args.planted))
    for i in planted:
        eval_rows[i] = dict(train[rng.randrange(args.train_rows)])
    gen_s = time.perf_counter() - t0

    t1, c1 = time.perf_counter(), time.process_time()
    report = find_contamination(train, eval_rows, n=args.n)
    check_s, check_cpu_s = time.perf_counter() - t1, time.process_time() - c1

    found = [item.eval_row - 1 for item in report.items]
    assert found == planted, f"expected eval rows {planted[:5]}..., found {found[:5]}..."
    print(f"train rows        {args.train_rows:,}")
    print(f"eval rows         {args.eval_rows:,}  (planted copies: {args.planted})")
    print(f"n-gram            {args.n}")
    print(f"data generation   {gen_s:.2f} s")
    print(f"check             {check_s:.2f} s wall, {check_cpu_s:.2f} s CPU (single-threaded)")
    print(f"throughput        {args.train_rows / check_s:,.0f} train rows/s (wall)")
    # CPU time is the figure to compare across runs on a shared machine.
    print(f"                  {args.train_rows / check_cpu_s:,.0f} train rows/s (CPU)")
    print(f"report            {report.summary()}")


if __name__ == "__main__":
    main()
