"""Eval contamination checks over slices of the training rows: the same report on any executor.

The training rows are cut into contiguous slices; each task analyses the (small) eval set
itself, streams its slice through it and returns matches named without process-salted hashes
(:class:`provenir.data.contamination.TrainShardMatches`). The driver merges them in slice order,
the earliest training row winning, which is what one process streaming every row finds::

    with open_executor(ExecutorConfig(executor="ray")) as ex:
        report = find_contamination(train_rows, eval_rows, executor=ex, n=13)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from provenir.data.contamination import (
    DEFAULT_NGRAM,
    ContaminationReport,
    TrainShardMatches,
    check_train_shard,
    merge_shard_matches,
)
from provenir.data.contamination import find_contamination as local_find_contamination
from provenir.scale.executor import Executor

#: Most training rows one task checks.
MAX_ROWS_PER_SHARD = 50_000


def find_contamination(
    train_rows: Iterable[Mapping[str, Any]],
    eval_rows: Iterable[Mapping[str, Any]],
    *,
    executor: Executor,
    n: int = DEFAULT_NGRAM,
    fields: Sequence[str] | None = None,
    near_dup: float | None = None,
    prompt_field: str | None = "prompt",
) -> ContaminationReport:
    """:func:`provenir.data.contamination.find_contamination`, the training rows checked by ``executor``.

    The local executor streams the rows in this process as before; any other checks about four
    slices per worker in parallel.
    """
    options: dict[str, Any] = {"n": n, "fields": fields, "near_dup": near_dup, "prompt_field": prompt_field}
    if executor.name == "local":
        return local_find_contamination(train_rows, eval_rows, **options)
    evals = [dict(r) for r in eval_rows]
    train = [dict(r) for r in train_rows]
    width = max(1, min(MAX_ROWS_PER_SHARD, math.ceil(len(train) / (4 * executor.workers))))
    slices = [(train[i : i + width], i) for i in range(0, len(train), width)]
    task = partial(_check_slice, eval_rows=evals, options=options)
    parts = executor.map_ordered(task, slices, stage="contamination")
    return merge_shard_matches(parts, evals, **options)


def _check_slice(
    item: tuple[list[dict[str, Any]], int], *, eval_rows: list[dict[str, Any]], options: dict[str, Any]
) -> TrainShardMatches:
    rows, first_row = item
    return check_train_shard(rows, first_row, eval_rows, **options)
