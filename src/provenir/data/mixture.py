"""Seeded weighted interleaving of several data sources (``data.sources``).

At each step one source is drawn with probability proportional to its weight and its next row
is taken; the mixture stops when a drawn source has no rows left ("first exhausted", as
``datasets.interleave_datasets`` does by default), so no row is ever repeated. The same seed,
sources and weights always give the same rows in the same order; the realised per-source
counts are what the manifest records.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from typing import Any


def interleave(
    sources: Sequence[Sequence[dict[str, Any]]], weights: Sequence[float], seed: int
) -> tuple[list[dict[str, Any]], list[int]]:
    """``(mixed rows, rows taken from each source)`` for a seeded weighted draw.

    >>> rows, used = interleave([[{"x": 1}, {"x": 2}], [{"x": 3}]], [1.0, 1.0], seed=0)
    >>> sum(used) == len(rows)
    True
    """
    if len(sources) != len(weights) or not sources:
        raise ValueError("interleave needs one weight per source and at least one source")
    if any(w <= 0 for w in weights):
        raise ValueError("mixture weights must be > 0")
    # A private Random: the draw must not depend on, or disturb, any other RNG in the process.
    rng = random.Random(seed)
    cumulative = list(itertools.accumulate(weights))
    total = cumulative[-1]
    positions = [0] * len(sources)
    mixed: list[dict[str, Any]] = []
    while True:
        i = bisect.bisect_right(cumulative, rng.random() * total)
        i = min(i, len(sources) - 1)  # guards the float edge where random() * total == total
        if positions[i] >= len(sources[i]):
            return mixed, positions
        mixed.append(sources[i][positions[i]])
        positions[i] += 1
