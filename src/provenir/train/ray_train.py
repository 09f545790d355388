"""Launching data-parallel training on Ray Train (``distributed.launcher: ray``).

The same job as under torchrun: :class:`RayLauncher` runs :func:`provenir.train.worker.main` in
each worker of a ``ray.train.torch.TorchTrainer``, which sets up the torch process group (gloo on
CPU, NCCL on GPU) and the ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` variables the worker and Trainer
read. Every rank reads the stored rows, rank 0 alone saves the adapter and writes the result,
every rank writes its record, and this process (the driver) gathers them; the run driver then
writes the manifest exactly as for torchrun, its ``distributed`` section naming the launcher,
the Ray version and the number of workers.

Ray Train's experiment folder is the run's ``checkpoints`` folder: each checkpoint Trainer saves
there is reported to Ray where it lies (:mod:`provenir.train.ray_checkpoints`), and a resumed run
continues from the same folder as a torchrun one. The run folder must be on a filesystem every
Ray node sees (as every torchrun node must). With no ``distributed.ray_address`` a local Ray is
started with one CPU per worker and stopped after the run; a Ray already started in this
process is used as it is.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from provenir.core.abstractions import TrainData, TrainResult
from provenir.core.config import RunConfig
from provenir.core.distributed_run import DistributedRun
from provenir.core.errors import BackendError, ConfigError
from provenir.train.distributed import (
    LaunchPlan,
    collect_ranks,
    deprecation_lines,
    launched_result,
    plan_launch,
    prepare_launch,
)

#: Ray Train's experiment name: its folder is ``<run folder>/checkpoints``, where Trainer saves.
RAY_EXPERIMENT = "checkpoints"
#: Ray Train's list of the checkpoints reported to it, in its experiment folder
#: (``ray.train.v2._internal.constants.CHECKPOINT_MANAGER_SNAPSHOT_FILENAME``).
RAY_SNAPSHOT = "checkpoint_manager_snapshot.json"


def require_ray() -> None:
    """Raise a one-line :class:`ConfigError` naming the extra when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(
            "distributed.launcher: ray needs Ray, which is not installed: pip install 'provenir[ray]'"
        )


def connect(address: str | None, num_cpus: int) -> bool:
    """Join the Ray cluster at ``address``, or start a local one of ``num_cpus`` CPUs; True if started here.

    A Ray already initialised in this process (a notebook, a test) is used as it is.
    """
    import ray

    if ray.is_initialized():
        return False
    if address is not None:
        ray.init(address=address, include_dashboard=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    return True


def check_room(plan: LaunchPlan) -> None:
    """Refuse, on one line, a job the local Ray has too few CPUs or GPUs for (Ray would wait forever)."""
    import ray

    kind = "GPU" if plan.device == "cuda" else "CPU"
    have = int(ray.cluster_resources().get(kind, 0))
    if have < plan.world_size:
        raise ConfigError(
            f"distributed: {plan.world_size} Ray Train workers need one {kind} each but the Ray started "
            f"in this process has {have}; stop it (ray.shutdown()) or set distributed.ray_address"
        )


def cluster_plan(config: RunConfig) -> LaunchPlan:
    """The launch, checked against the GPUs of the cluster at ``ray_address`` (not this machine's).

    Call after :func:`connect`: the cluster's GPUs are counted from its resources.
    """
    import ray

    gpus = int(ray.cluster_resources().get("GPU", 0))
    plan = plan_launch(config, gpus=gpus)
    if plan.device == "cuda" and plan.world_size > gpus:
        raise ConfigError(
            f"distributed: {plan.world_size} GPU workers asked for but the Ray cluster at "
            f"{config.distributed.ray_address} has {gpus} GPUs"
        )
    return plan


def worker_env(plan: LaunchPlan) -> dict[str, str]:
    """Variables every Ray Train worker gets, besides those Ray Train sets for torch.distributed."""
    return {
        "PROVENIR_WORLD_SIZE": str(plan.world_size),  # as the torchrun launcher sets it
        # Ray Train turns a worker's print() into log records; libraries that capture stdout to
        # read it back (dill's globalvars, under datasets' fingerprinting) then print instead.
        "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
    }


def train_loop(loop_config: dict[str, Any]) -> None:
    """What each Ray Train worker runs: the torchrun worker, reporting its checkpoints to Ray."""
    import ray.train

    from provenir.train import worker
    from provenir.train.distributed import count_start
    from provenir.train.ray_checkpoints import RayCheckpointReporter

    # Ray Train restarts the whole worker group after a failure but, unlike torchrun, does not
    # say how often: each rank counts its own starts so the manifest's `restarts` is a fact.
    rank = ray.train.get_context().get_world_rank()
    os.environ["TORCHELASTIC_RESTART_COUNT"] = str(count_start(Path(loop_config["run_dir"]), rank))
    worker.main(loop_config["argv"], callbacks=[RayCheckpointReporter()])


def ray_run(run_dir: Path, config: RunConfig, plan: LaunchPlan, version: str) -> DistributedRun:
    """The manifest's ``distributed`` section for a finished Ray Train launch."""
    records = collect_ranks(run_dir)
    nodes = len({r.group_rank for r in records})
    return DistributedRun(
        nodes=nodes,
        world_size=len(records),
        restarts=max(r.restart_count for r in records),
        strategy=config.distributed.strategy,
        dist_backend=records[0].dist_backend,
        rendezvous="ray",
        nnodes=str(nodes),
        scheduler=plan.job.scheduler if plan.job is not None else None,
        ranks=records,
        launcher="ray",
        ray_version=version,
        ray_workers=plan.world_size,
    )


class RayLauncher:
    """A backend wrapper: runs the configured backend on every rank via Ray Train."""

    def fit(self, config: RunConfig, dataset: TrainData, run_dir: Path) -> TrainResult:
        """Launch the workers, wait, and return what rank 0 reported. The runner writes the manifest."""
        require_ray()
        import ray
        import ray.train
        from ray.train.torch import TorchConfig
        from ray.train.v2.api.config import FailureConfig, ScalingConfig
        from ray.train.v2.api.config import RunConfig as RayRunConfig
        from ray.train.v2.torch.torch_trainer import TorchTrainer

        if ray.train.RunConfig is not RayRunConfig:
            # Checkpoints are reported where they lie (NO_UPLOAD), which only Ray Train v2 does.
            raise ConfigError("distributed.launcher: ray needs Ray Train v2: unset RAY_TRAIN_V2_ENABLED=0")
        for line in deprecation_lines(config):
            print(line, file=sys.stderr)
        run_dir = run_dir.resolve()  # Ray workers do not run in this process's working directory
        d = config.distributed
        # A local Ray is sized to the job; plan_launch checks the local GPUs before it starts.
        local = plan_launch(config) if d.ray_address is None else None
        started = connect(d.ray_address, local.world_size if local is not None else 1)
        try:
            plan = local or cluster_plan(config)
            if local is not None and not started:
                check_room(plan)
            arguments = prepare_launch(config, dataset, run_dir)
            # Ray refuses a folder whose list names a checkpoint that is gone (rotated by Trainer's
            # save_total_limit, set aside unfinished, removed by hand). A resume trusts the run
            # folder (find_resume_checkpoint), not Ray's list: each launch starts the list afresh.
            (run_dir / RAY_EXPERIMENT / RAY_SNAPSHOT).unlink(missing_ok=True)
            trainer = TorchTrainer(
                train_loop,
                train_loop_config={"argv": arguments, "run_dir": str(run_dir)},
                scaling_config=ScalingConfig(num_workers=plan.world_size, use_gpu=plan.device == "cuda"),
                torch_config=TorchConfig(backend=plan.dist_backend),
                run_config=RayRunConfig(
                    name=RAY_EXPERIMENT,
                    storage_path=str(run_dir),
                    failure_config=FailureConfig(max_failures=plan.max_restarts),
                    worker_runtime_env={"env_vars": worker_env(plan)},
                ),
            )
            try:
                outcome = trainer.fit()
            except Exception as exc:  # Ray wraps the workers' errors; the first line says which
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise BackendError(f"distributed training failed under Ray Train: {first}") from exc
        finally:
            if started:  # a Ray sized to this job must not serve the next, larger one
                ray.shutdown()
        result = launched_result(run_dir, config, ray_run(run_dir, config, plan, ray.__version__))
        if outcome.checkpoint is not None:
            # The last checkpoint Ray Train recorded, by name (its folder is in the run's checkpoints).
            result.extra["ray_checkpoint"] = Path(outcome.checkpoint.path).name
        return result
