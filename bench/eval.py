"""Benchmark: the paired regression gate over 10k items and 4 metrics.

Times ``RegressionGate.compare`` on two evaluations of the same 10k items with two binary
metrics (exact match: McNemar) and two continuous ones (paired bootstrap, 1000 resamples),
everything the decision now includes: Holm correction, minimum detectable effects, verdicts.
As the reference, the same four paired bootstraps called alone (what the gate cannot avoid
doing) are timed too; the ratio says what the rest of the decision costs on top.

    python bench/eval.py [--items 10000] [--repeats 3]

lm-evaluation-harness timing (per-item scoring through Provenir vs lm-eval alone) plugs in
through :func:`lm_eval_timing` when that side exists; it is left out here.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

METRICS = ("exact_match", "accuracy", "token_f1", "rouge_l")


def make_results(n: int, seed: int = 0) -> tuple[Any, Any]:
    """(new, baseline) evaluations of the same ``n`` items: 2 binary and 2 continuous metrics."""
    from provenir.eval.harness import EvalResult, MetricResult

    rng = random.Random(seed)

    def metric(name: str, scores: list[float], binary: bool) -> MetricResult:
        mean = sum(scores) / len(scores)
        return MetricResult(
            name,
            mean,
            mean,
            mean,
            len(scores),
            "wilson" if binary else "bootstrap",
            binary=binary,
            scores=scores,
        )

    new, base = {}, {}
    for name in METRICS:
        binary = name in ("exact_match", "accuracy")
        if binary:
            b = [float(rng.random() < 0.7) for _ in range(n)]
            a = [x if rng.random() < 0.9 else 1.0 - x for x in b]
        else:
            b = [rng.random() for _ in range(n)]
            a = [min(1.0, max(0.0, x + rng.gauss(-0.005, 0.05))) for x in b]
        new[name], base[name] = metric(name, a, binary), metric(name, b, binary)
    keys = [f"k{i}" for i in range(n)]
    return EvalResult(new, n, item_keys=keys), EvalResult(base, n, item_keys=keys)


def bootstrap_alone(new: Any, base: Any) -> None:
    """The reference: the four paired bootstraps the gate runs, and nothing else."""
    from provenir.eval.bootstrap import paired_bootstrap

    for name in METRICS:
        paired_bootstrap(new.metrics[name].scores, base.metrics[name].scores, confidence=0.95, seed=0)


def lm_eval_timing() -> dict[str, float] | None:
    """Hook for the lm-evaluation-harness comparison (Provenir's per-item scoring vs lm-eval alone)."""
    return None


def best_of(repeats: int, fn: Any, *args: Any) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from provenir.eval.regression import RegressionGate

    new, base = make_results(args.items)
    gate = RegressionGate(0.02)
    best_of(1, gate.compare, new, base)  # warm-up: imports (scipy, statsmodels) are not the gate's cost
    gate_s, decision = best_of(args.repeats, gate.compare, new, base)
    boot_s, _ = best_of(args.repeats, bootstrap_alone, new, base)
    print(
        f"items {args.items}, metrics {len(METRICS)}, correction {decision.correction}, best of {args.repeats}"
    )
    print(f"RegressionGate.compare      {gate_s * 1000:8.1f} ms")
    print(f"paired bootstraps alone     {boot_s * 1000:8.1f} ms")
    print(f"ratio                       {gate_s / boot_s:8.2f}x")
    for name, c in decision.comparisons.items():
        print(
            f"  {name:<12} {c.test:<17} p={c.p_value:.3g} adj={c.p_adjusted:.3g} {c.verdict}; {c.detectable}"
        )
    extra = lm_eval_timing()
    if extra is not None:
        print(extra)


if __name__ == "__main__":
    main()
