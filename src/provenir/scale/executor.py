"""Executors: an ordered map over shards (tasks) or over items (long-lived workers), local or on Ray.

Two operations cover everything Provenir fans out:

``map_ordered(fn, items)``
    ``fn`` is stateless and cheap to ship (scanning a file shard, checking a slice of training rows
    for contamination). On Ray this is a Ray Data pipeline: one block per item, ``fn`` mapped over
    it with ``num_workers`` tasks at a time, each task retried up to ``max_retries`` times when
    its worker dies.
``map_with_workers(factory, call, items)``
    Each worker builds expensive state once (``factory()``: load a model, build a judge client)
    and then serves items (``call(state, item)``). On Ray these are ``num_workers`` actors, each
    restarted after a crash, its calls retried.

Results always come back in input order, and the code that calls an executor derives every
seed from the item, never from the worker, so a Ray run writes the same bytes as a local one.
What the run records about where it ran is :meth:`Executor.record`: the executor, Ray's version,
the cluster's size and the retries. Ray is imported only when ``executor: ray`` is chosen::

    from provenir.core.config import ExecutorConfig
    from provenir.scale.executor import open_executor

    with open_executor(ExecutorConfig(executor="ray")) as ex:
        sizes = ex.map_ordered(len, ["a", "bb"])     # [1, 2]
        print(ex.record().to_dict())
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from provenir.core.config import ExecutorConfig, RaySection
from provenir.core.extras import require_extra

T = TypeVar("T")
R = TypeVar("R")
W = TypeVar("W")

__all__ = [
    "Executor",
    "ExecutorRecord",
    "LocalExecutor",
    "RayExecutor",
    "executor_config",
    "open_executor",
]


@dataclass
class ExecutorRecord:
    """Where a stage ran: what manifests and summaries record next to its outputs.

    ``retries`` maps ``"<stage>:<item index>"`` to how many times that task (or actor call)
    ran again after its worker died; empty when nothing failed.
    """

    executor: str
    ray_version: str | None = None
    cluster_cpus: float | None = None
    cluster_nodes: int | None = None
    workers: int | None = None
    retries: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (keys sorted by the writers)."""
        return {
            "executor": self.executor,
            "ray_version": self.ray_version,
            "cluster": {"cpus": self.cluster_cpus, "nodes": self.cluster_nodes},
            "workers": self.workers,
            "retries": dict(sorted(self.retries.items())),
            "retried_total": sum(self.retries.values()),
        }


class Executor(Protocol):
    """An ordered map, in this process or on a cluster; results in input order."""

    name: str
    #: Items processed at once (1 for the local executor); callers size their shards by it.
    workers: int

    def map_ordered(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str) -> list[R]:
        """``[fn(x) for x in items]``, possibly in parallel; ``stage`` names the tasks in the record."""
        ...

    def map_with_workers(
        self, factory: Callable[[], W], call: Callable[[W, T], R], items: Sequence[T], *, stage: str
    ) -> list[R]:
        """``[call(state, x) for x in items]`` where each worker builds ``state = factory()`` once."""
        ...

    def record(self) -> ExecutorRecord:
        """What ran where, for the manifest."""
        ...

    def close(self) -> None:
        """Release workers (and a Ray this executor started)."""
        ...


class LocalExecutor:
    """Everything in this process, one item after another (the default)."""

    name = "local"
    workers = 1

    def map_ordered(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str) -> list[R]:
        """``[fn(x) for x in items]``."""
        return [fn(x) for x in items]

    def map_with_workers(
        self, factory: Callable[[], W], call: Callable[[W, T], R], items: Sequence[T], *, stage: str
    ) -> list[R]:
        """One worker state, built once, serves every item."""
        if not items:
            return []
        state = factory()
        return [call(state, x) for x in items]

    def record(self) -> ExecutorRecord:
        """``{"executor": "local"}`` and nothing else."""
        return ExecutorRecord("local")

    def close(self) -> None:
        """Nothing to release."""


class RayExecutor:
    """Tasks as a Ray Data pipeline, workers as Ray actors; see the module docstring.

    Connects to ``config.address``, or starts a local Ray when it is None (and shuts that one
    down on :meth:`close`). A Ray already initialised in this process (a test's shared cluster)
    is used as it is.
    """

    name = "ray"

    def __init__(self, config: RaySection) -> None:
        self.config = config
        self.workers = config.num_workers
        self.ray = require_extra("ray", "ray", purpose="executor: ray")
        require_extra("ray.data", "ray", purpose="executor: ray")
        self._started = False
        if not self.ray.is_initialized():
            if config.address is None:
                self.ray.init(
                    num_cpus=config.num_cpus, include_dashboard=False, logging_level=logging.WARNING
                )
            else:
                self.ray.init(address=config.address, logging_level=logging.WARNING)
            self._started = True
        self._attempts: Any = None

    # -- retries ----------------------------------------------------------------------------------

    def _ledger(self) -> Any:
        """An actor counting attempts per task key: a retried task starts a second attempt."""
        if self._attempts is None:
            self._attempts = _attempt_ledger_class(self.ray).remote()
        return self._attempts

    # -- the two maps -----------------------------------------------------------------------------

    def map_ordered(self, fn: Callable[[T], R], items: Sequence[T], *, stage: str) -> list[R]:
        """A Ray Data ``map`` over one block per item, ``num_workers`` tasks at a time."""
        if not items:
            return []
        import ray.data

        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        # Ray Data logs every pipeline's plan at INFO, and warns that progress bars are off.
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ledger = self._ledger()
        ray_mod = self.ray

        def run(row: dict[str, Any]) -> dict[str, Any]:
            ray_mod.get(ledger.begin.remote(f"{stage}:{row['i']}"))
            return {"i": row["i"], "out": pickle.dumps(fn(pickle.loads(row["item"])))}

        rows = [{"i": i, "item": pickle.dumps(x)} for i, x in enumerate(items)]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        with warnings.catch_warnings():
            # Ray Data 2.60 deprecates passing remote args, but offers no other way to bound task
            # retries (its default is to retry forever, which turns a deterministic crash into a hang).
            warnings.simplefilter("ignore", DeprecationWarning)
            mapped = dataset.map(
                run,
                num_cpus=1,
                compute=ray.data.TaskPoolStrategy(size=min(self.config.num_workers, len(rows))),
                # A worker that dies (killed, out of memory) is a system failure: Ray reruns the task.
                max_retries=self.config.max_retries,
            )
        # preserve_order already keeps input order; sorting makes it independent of that setting.
        out = sorted(mapped.take_all(), key=lambda r: int(r["i"]))
        return [pickle.loads(r["out"]) for r in out]

    def map_with_workers(
        self, factory: Callable[[], W], call: Callable[[W, T], R], items: Sequence[T], *, stage: str
    ) -> list[R]:
        """``num_workers`` actors (fewer for fewer items), each building ``factory()`` once."""
        if not items:
            return []
        from ray.util import ActorPool

        worker_cls = _worker_class(self.ray, self.config.max_retries)
        ledger = self._ledger()
        actors = [worker_cls.remote(factory) for _ in range(min(self.config.num_workers, len(items)))]
        try:
            pool = ActorPool(actors)
            indexed = list(enumerate(items))
            return list(
                pool.map(
                    lambda actor, pair: actor.run.remote(call, ledger, f"{stage}:{pair[0]}", pair[1]),
                    indexed,
                )
            )
        finally:
            for actor in actors:
                self.ray.kill(actor)

    # -- the record -------------------------------------------------------------------------------

    def record(self) -> ExecutorRecord:
        """Ray's version, the cluster's CPUs and live nodes, the workers and every retried task."""
        counts: dict[str, int] = self.ray.get(self._attempts.counts.remote()) if self._attempts else {}
        resources = self.ray.cluster_resources()
        return ExecutorRecord(
            "ray",
            ray_version=self.ray.__version__,
            cluster_cpus=float(resources.get("CPU", 0.0)),
            cluster_nodes=sum(1 for node in self.ray.nodes() if node.get("Alive")),
            workers=self.config.num_workers,
            retries={key: n - 1 for key, n in counts.items() if n > 1},
        )

    def close(self) -> None:
        """Stop the ledger actor, and the local Ray if this executor started it."""
        if self._attempts is not None:
            self.ray.kill(self._attempts)
            self._attempts = None
        if self._started:
            self.ray.shutdown()
            self._started = False


def executor_config(
    base: ExecutorConfig | None = None,
    *,
    executor: str | None = None,
    address: str | None = None,
    workers: int | None = None,
) -> ExecutorConfig:
    """``base`` (a config file's section, else the defaults) with the command line's options on top."""
    data = (base or ExecutorConfig()).model_dump()
    if executor is not None:
        data["executor"] = executor
    if address is not None:
        data["ray"]["address"] = address
    if workers is not None:
        data["ray"]["num_workers"] = workers
    return ExecutorConfig.from_dict(data)


@contextlib.contextmanager
def open_executor(config: ExecutorConfig | None = None) -> Iterator[Executor]:
    """The executor ``config`` asks for, closed on exit (a missing ``ray`` is one line naming the extra)."""
    config = config or ExecutorConfig()
    executor: Executor = RayExecutor(config.ray) if config.executor == "ray" else LocalExecutor()
    try:
        yield executor
    finally:
        executor.close()


# -- Ray classes, defined on first use so that importing this module never imports ray -------------

_CLASSES: dict[str, Any] = {}


def _attempt_ledger_class(ray: Any) -> Any:
    if "ledger" not in _CLASSES:

        @ray.remote(num_cpus=0)
        class AttemptLedger:
            """Attempts per task key; lives on the driver's node for the executor's lifetime."""

            def __init__(self) -> None:
                self.attempts: dict[str, int] = {}

            def begin(self, key: str) -> int:
                self.attempts[key] = self.attempts.get(key, 0) + 1
                return self.attempts[key]

            def counts(self) -> dict[str, int]:
                return dict(self.attempts)

        _CLASSES["ledger"] = AttemptLedger
    return _CLASSES["ledger"]


def _worker_class(ray: Any, max_retries: int) -> Any:
    key = f"worker-{max_retries}"
    if key not in _CLASSES:

        @ray.remote(num_cpus=1, max_restarts=max_retries, max_task_retries=max_retries)
        class Worker:
            """Builds its state once (a model, a judge client), then serves items."""

            def __init__(self, factory: Callable[[], Any]) -> None:
                self.state = factory()

            def run(self, call: Callable[[Any, Any], Any], ledger: Any, key: str, item: Any) -> Any:
                ray.get(ledger.begin.remote(key))
                return call(self.state, item)

        _CLASSES[key] = Worker
    return _CLASSES[key]
