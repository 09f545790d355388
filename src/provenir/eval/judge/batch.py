"""Judge many pairs at once: bounded concurrency, a progress bar, fail-fast or collect errors.

Works for any :class:`LLMJudge` by calling ``score_pairwise`` from a thread pool: judge calls
spend their time waiting on the network, which threads overlap well, and the official SDK
clients are thread-safe. Retries, ``retry-after`` and back-off happen inside each call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any, TypeVar

from provenir.core.errors import JudgeError
from provenir.core.progress import ProgressBar
from provenir.eval.judge.verdict import Preference

T = TypeVar("T")
PairwiseItem = tuple[str, str, str]

DEFAULT_MAX_CONCURRENCY = 16


def normalize_items(items: Iterable[Sequence[str] | Mapping[str, str]]) -> list[PairwiseItem]:
    """Accept ``(prompt, a, b)`` tuples or ``{"prompt", "a", "b"}`` mappings; reject anything else."""
    out: list[PairwiseItem] = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            try:
                triple = (item["prompt"], item["a"], item["b"])
            except KeyError as exc:
                raise JudgeError(f"batch item {i} lacks key {exc.args[0]!r} (needs prompt, a, b)") from None
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 3:
            triple = (item[0], item[1], item[2])
        else:
            raise JudgeError(f"batch item {i} must be (prompt, a, b) or a mapping with those keys")
        if not all(isinstance(x, str) for x in triple):
            raise JudgeError(f"batch item {i}: prompt, a and b must be strings")
        out.append(triple)
    return out


def map_concurrent(
    fn: Callable[..., T],
    args: Sequence[tuple[Any, ...]],
    *,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    progress: bool | None = None,
    description: str = "judging",
    return_exceptions: bool = False,
) -> list[T | JudgeError]:
    """``[fn(*a) for a in args]`` with at most ``max_concurrency`` calls in flight, results in order.

    A :class:`JudgeError` either stops the batch (calls not yet started are cancelled, and a
    JudgeError naming the failed count is raised) or, with ``return_exceptions=True``, takes
    the failed item's place in the result. Any other exception is a bug and propagates.
    """
    if max_concurrency < 1:
        raise JudgeError(f"max_concurrency must be >= 1, got {max_concurrency}")
    n = len(args)
    results: list[Any] = [None] * n
    if n == 0:
        return results
    bar = ProgressBar(description, n, show=progress)
    failures: list[tuple[int, JudgeError]] = []
    try:
        with ThreadPoolExecutor(max_workers=min(max_concurrency, n), thread_name_prefix="judge") as pool:
            futures: dict[Future[T], int] = {pool.submit(fn, *a): i for i, a in enumerate(args)}
            try:
                # as_completed registers one waiter for all futures (wait() in a loop would be O(n^2)).
                for fut in as_completed(futures):
                    i = futures[fut]
                    exc = fut.exception()
                    if exc is None:
                        results[i] = fut.result()
                    elif isinstance(exc, JudgeError):
                        failures.append((i, exc))
                        results[i] = exc
                    else:
                        raise exc
                    bar.advance()
                    if failures and not return_exceptions:
                        break
            finally:
                # Calls not yet started are dropped; running ones finish (threads cannot be interrupted).
                for fut in futures:
                    fut.cancel()
    finally:
        bar.close()
    if failures and not return_exceptions:
        first_index, first = min(failures, key=lambda f: f[0])
        raise JudgeError(
            f"{len(failures)} of {n} judgments failed (batch stopped); first, item {first_index}: {first}"
        ) from first
    return results


def score_pairwise_batch(
    judge: Any,
    items: Iterable[Sequence[str] | Mapping[str, str]],
    *,
    max_concurrency: int | None = None,
    progress: bool | None = None,
    return_exceptions: bool = False,
) -> list[Preference | JudgeError]:
    """Run ``judge.score_pairwise`` over ``items`` concurrently; results keep the input order.

    Args:
        judge: any :class:`LLMJudge`.
        items: ``(prompt, a, b)`` tuples or mappings with ``prompt``, ``a``, ``b``.
        max_concurrency: pairs judged at once (a position-bias-controlled remote judge makes
            two HTTP calls per pair, in parallel); default the judge's own ``max_concurrency``
            (or its inner judge's, for a cache), else 16.
        progress: show a rich progress bar; ``None`` shows it when stderr is a terminal.
        return_exceptions: put a failed pair's :class:`JudgeError` in its slot instead of
            stopping the batch.

    Example (RLAIF)::

        prefs = score_pairwise_batch(judge, [(p, r1, r2) for p, r1, r2 in candidates])
        pairs = [(p, r1, r2) if x.preferred == "a" else (p, r2, r1)
                 for (p, r1, r2), x in zip(candidates, prefs) if x.preferred != "tie"]
    """
    triples = normalize_items(items)
    limit = (
        max_concurrency
        or getattr(judge, "max_concurrency", None)
        or getattr(getattr(judge, "inner", None), "max_concurrency", None)
        or DEFAULT_MAX_CONCURRENCY
    )
    return map_concurrent(
        judge.score_pairwise,
        triples,
        max_concurrency=limit,
        progress=progress,
        description=f"{type(judge).__name__}: judging {len(triples)} pairs",
        return_exceptions=return_exceptions,
    )


def pairwise_batch_method(
    self: Any,
    items: Sequence[Any],
    *,
    max_concurrency: int | None = None,
    progress: bool | None = None,
    return_exceptions: bool = False,
) -> list[Preference | JudgeError]:
    """``judge.score_pairwise_batch(items)``: :func:`score_pairwise_batch` as a method of every judge."""
    return score_pairwise_batch(
        self, items, max_concurrency=max_concurrency, progress=progress, return_exceptions=return_exceptions
    )
