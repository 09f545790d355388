"""Judge throughput: 1000 pairwise judgments against a fake LLM API with 50 ms latency.

Runs the real SDK client (``anthropic`` by default, ``--provider openai``) against
:mod:`provenir.testing.llm_server` started in a separate process (a real API is remote: its
work must not compete with the client for this process's GIL), and prints:

1. sequential: one pair at a time (each pair's two presentation orders still go in parallel);
2. concurrent: ``score_pairwise_batch`` with ``--concurrency`` pairs in flight, through a cold
   :class:`CachedJudge` (so disk writes are included). Goal: <= 3 s;
   For comparison, the same with position-bias control off (one HTTP call per pair);
3. cached: the same 1000 judgments again from a new CachedJudge on the same folder. Must make
   zero HTTP calls (the exit status is 1 otherwise).

Usage::

    python bench/judges.py                      # full run (the sequential leg takes ~1 min)
    python bench/judges.py --sequential-n 100   # time 100 sequential pairs, extrapolate to 1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from provenir.eval.judge import AnthropicJudge, CachedJudge, OpenAIJudge, RetryPolicy, agreement_rate


@contextmanager
def fake_server(latency: float) -> Iterator[str]:
    """Start the fake server in a child process; yield its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "provenir.testing.llm_server", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        proc.terminate()
        proc.wait(10)


def http_calls(url: str) -> int:
    """Requests the fake server has answered so far."""
    with urllib.request.urlopen(f"{url}/_fake/stats", timeout=5) as resp:
        return int(json.load(resp)["requests"])


def make_items(n: int) -> list[tuple[str, str, str]]:
    """Deterministic pairs whose better answer is sometimes first, sometimes second."""
    items = []
    for i in range(n):
        long = f"Answer {i}: " + "a detailed and careful explanation " * (1 + i % 4)
        short = f"Answer {i}: brief."
        items.append((f"Question {i}?", long, short) if i % 2 else (f"Question {i}?", short, long))
    return items


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="pairwise judgments (default 1000)")
    parser.add_argument("--latency", type=float, default=0.05, help="fake API latency in seconds")
    parser.add_argument("--concurrency", type=int, default=64, help="pairs in flight in the concurrent run")
    parser.add_argument(
        "--sequential-n",
        type=int,
        default=None,
        help="pairs to time sequentially (default: all --n); fewer are extrapolated",
    )
    parser.add_argument("--provider", choices=["anthropic", "openai"], default="anthropic")
    parser.add_argument("--progress", action="store_true", help="show the progress bars")
    args = parser.parse_args()

    # The fake server accepts any key; a real one never enters this script.
    os.environ.setdefault("ANTHROPIC_API_KEY", "sk-bench-not-a-real-key")
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    items = make_items(args.n)
    seq_n = min(args.sequential_n or args.n, args.n)
    retry = RetryPolicy(timeout=10)

    with fake_server(args.latency) as url, tempfile.TemporaryDirectory(prefix="judge-bench-") as cache_dir:

        def judge() -> AnthropicJudge | OpenAIJudge:
            if args.provider == "anthropic":
                return AnthropicJudge(model="claude-haiku-4-5-20251001", base_url=url, retry=retry)
            return OpenAIJudge(model="gpt-4o", base_url=f"{url}/v1", retry=retry)

        judge().score_pairwise("warm-up", "a", "b")  # SDK import and first connection, not timed

        plain = judge()
        calls0 = http_calls(url)
        t0 = time.perf_counter()
        seq = plain.score_pairwise_batch(items[:seq_n], max_concurrency=1, progress=args.progress)
        t_seq = time.perf_counter() - t0
        seq_calls = http_calls(url) - calls0
        t_seq_full = t_seq * args.n / seq_n

        cold = CachedJudge(judge(), cache_dir=cache_dir)
        calls0 = http_calls(url)
        t0 = time.perf_counter()
        conc = cold.score_pairwise_batch(items, max_concurrency=args.concurrency, progress=args.progress)
        t_conc = time.perf_counter() - t0
        conc_calls = http_calls(url) - calls0

        single = judge()
        single.position_swap = False  # for comparison: one HTTP call per pair, no bias control
        calls0 = http_calls(url)
        t0 = time.perf_counter()
        single.score_pairwise_batch(items, max_concurrency=args.concurrency, progress=args.progress)
        t_single = time.perf_counter() - t0
        single_calls = http_calls(url) - calls0

        warm = CachedJudge(judge(), cache_dir=cache_dir)
        calls0 = http_calls(url)
        t0 = time.perf_counter()
        cached = warm.score_pairwise_batch(items, max_concurrency=args.concurrency, progress=args.progress)
        t_cached = time.perf_counter() - t0
        cached_calls = http_calls(url) - calls0

    expected = ["a" if i % 2 else "b" for i in range(args.n)]
    correct = (
        [p.preferred for p in conc] == expected
        and cached == conc
        and [p.preferred for p in seq] == expected[:seq_n]
    )
    extrapolated = f" (extrapolated from {seq_n})" if seq_n < args.n else ""
    print(
        f"judge: {args.provider} SDK -> fake server in a child process, "
        f"latency {args.latency * 1000:.0f} ms, position-bias control on (2 HTTP calls per pair)"
    )
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        "(timings are CPU-bound in the SDK client; a loaded machine inflates them)"
    )
    rows = [
        ("sequential (1 pair in flight)", seq_n, seq_calls, t_seq),
        (f"concurrent ({args.concurrency} pairs in flight)", args.n, conc_calls, t_conc),
        ("concurrent, bias control off", args.n, single_calls, t_single),
        ("cached re-run", args.n, cached_calls, t_cached),
    ]
    print(f"{'run':<34}{'pairs':>7}{'HTTP calls':>12}{'seconds':>10}{'pairs/s':>10}")
    for name, pairs, calls, seconds in rows:
        print(f"{name:<34}{pairs:>7}{calls:>12}{seconds:>10.2f}{pairs / seconds:>10.1f}")
    print(
        f"sequential time for {args.n} pairs: {t_seq_full:.1f} s{extrapolated}; "
        f"speed-up concurrent vs sequential: {t_seq_full / t_conc:.1f}x"
    )
    print(
        f"goal concurrent <= 3 s: {'met' if t_conc <= 3 else 'MISSED'} ({t_conc:.2f} s); "
        f"cached re-run HTTP calls: {cached_calls} (must be 0); verdicts correct: {correct}; "
        f"agreement rate: {agreement_rate(conc):.3f}"
    )
    return 0 if cached_calls == 0 and correct else 1


if __name__ == "__main__":
    sys.exit(main())
