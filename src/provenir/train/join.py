"""Join a run that another node started: ``python -m provenir.train.join``.

A run on several nodes is started by ``provenir train`` on one node, which writes the manifest,
stores the exact rows and describes the launch in ``<run folder>/distributed/launch.json``. Every
other node runs this module against the same artifacts folder (a filesystem all nodes share): it
finds the run, checks it (the manifest's hash, the stored config against the manifest's
``config_hash``), and starts ``torchrun`` with the run's rendezvous, so its processes join the
same world and read the same hash-checked rows::

    # node 0                                   # every other node
    provenir train job.yaml                    python -m provenir.train.join --output-dir /shared/artifacts

The run is found by its rendezvous id: ``--rdzv-id``, else the Slurm job id or SkyPilot task id of
the job this node runs in; or name its folder with ``--run-dir``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from provenir.core.config import RunConfig
from provenir.core.errors import BackendError, ConfigError, ProvenirError, ReproducibilityError
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.train.distributed import (
    LAUNCH_FILE,
    plan_launch,
    read_launch,
    torchrun_command,
    worker_arguments,
)
from provenir.train.rendezvous import expand_slurm_nodelist, scheduler_job


def runs_with_rdzv_id(output_dir: Path, rdzv_id: str) -> list[Path]:
    """Run folders under ``output_dir`` whose launch uses ``rdzv_id`` and whose manifest says running."""
    store = RunStore(output_dir)
    found = []
    for launch in sorted(store.root.glob(f"runs/*/{LAUNCH_FILE}")):
        run_dir = launch.parent.parent
        try:
            run_id, _, rendezvous = read_launch(run_dir)
            status = RunManifest.load(store.manifest_path(run_id)).status
        except ProvenirError:
            continue
        if rendezvous is not None and rendezvous.rdzv_id == rdzv_id and status == "running":
            found.append(run_dir)
    return found


def wait_for_run(
    *,
    run_dir: Path | None = None,
    output_dir: Path | None = None,
    rdzv_id: str | None = None,
    wait_s: float = 0,
) -> Path:
    """The run folder to join, polling up to ``wait_s`` seconds for node 0 to describe its launch."""
    deadline = time.monotonic() + wait_s
    while True:
        if run_dir is not None:
            if (run_dir / LAUNCH_FILE).is_file():
                return run_dir
        else:
            assert output_dir is not None and rdzv_id is not None
            found = runs_with_rdzv_id(output_dir, rdzv_id)
            if len(found) > 1:
                names = ", ".join(p.name for p in found)
                raise BackendError(
                    f"several running runs use rendezvous id {rdzv_id!r} ({names}): give --run-dir"
                )
            if found:
                return found[0]
        if time.monotonic() >= deadline:
            where = run_dir if run_dir is not None else f"{output_dir} with rendezvous id {rdzv_id!r}"
            raise BackendError(
                f"no launched run found at {where} after {wait_s:g}s: start `provenir train` on the first "
                "node (same artifacts folder) or wait longer (--wait)"
            )
        time.sleep(0.5)


def join_command(run_dir: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """The ``torchrun`` command that joins the run in ``run_dir`` from this node, after checking the run."""
    run_id, max_restarts, rendezvous = read_launch(run_dir)
    if rendezvous is None:
        raise BackendError(f"run {run_id} trains on one node: there is nothing to join")
    store = RunStore(run_dir.parent.parent)
    if store.run_dir(run_id).resolve() != run_dir.resolve():
        raise BackendError(f"{run_dir} is not the folder of run {run_id} in an artifacts folder")
    manifest = RunManifest.load(store.manifest_path(run_id))
    manifest.verify()
    if manifest.status != "running":
        raise BackendError(f"run {run_id} is {manifest.status}: there is nothing to join")
    config_path = run_dir / "config.yaml"
    config = RunConfig.from_yaml(config_path)
    if config.config_hash() != manifest.config_hash:
        raise ReproducibilityError(
            f"run {run_id}: {config_path} differs from the config its manifest records"
        )
    if manifest.inputs is None:
        raise BackendError(f"run {run_id}: its manifest records no stored rows to train on")
    plan = dataclasses.replace(plan_launch(config, environ=environ, joining=True), max_restarts=max_restarts)
    rows = manifest.inputs
    return torchrun_command(
        plan, rendezvous, worker_arguments(config_path, run_dir, rows.training_rows, rows.eval_rows)
    )


def main(argv: list[str] | None = None) -> int:
    """Find the run, check it, and run this node's share; returns torchrun's exit code (2: a user error)."""
    parser = argparse.ArgumentParser(prog="python -m provenir.train.join", description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--run-dir", type=Path, help="The run folder (<artifacts>/runs/<run id>).")
    where.add_argument("--output-dir", type=Path, help="The artifacts folder node 0 trains into.")
    parser.add_argument(
        "--rdzv-id", help="The run's rendezvous id (default: the Slurm job / SkyPilot task id)."
    )
    parser.add_argument("--wait", type=float, default=600, help="Seconds to wait for node 0's launch (600).")
    args = parser.parse_args(argv)
    try:
        if args.run_dir is None:
            output_dir = args.output_dir or Path(RunConfig().output_dir)
            rdzv_id = args.rdzv_id
            if rdzv_id is None:
                job = scheduler_job(os.environ, expand_slurm_nodelist)
                rdzv_id = job.job_id if job is not None else None
            if rdzv_id is None:
                raise ConfigError("give --rdzv-id (the run's distributed.rdzv_id) or --run-dir")
            run_dir = wait_for_run(output_dir=output_dir, rdzv_id=rdzv_id, wait_s=args.wait)
        else:
            run_dir = wait_for_run(run_dir=args.run_dir, wait_s=args.wait)
        command = join_command(run_dir)
    except ProvenirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
