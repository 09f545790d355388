"""``provenir flywheel``: mine eval failures, generate and filter variants, write an augmented set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from provenir.cli.options import ExecutorOption, JsonFlag, RayAddress, RayWorkers


def flywheel_command(
    config: Annotated[Path, typer.Argument(help="Flywheel YAML (see examples/flywheel_offline.yaml).")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config field: key.path=value (repeatable)."),
    ] = None,
    progress: Annotated[
        bool | None, typer.Option(help="Show progress bars (default: on a terminal).")
    ] = None,
    executor: ExecutorOption = None,
    ray_address: RayAddress = None,
    ray_workers: RayWorkers = None,
    as_json: JsonFlag = False,
) -> None:
    """Run (or resume) the data flywheel and print a table of its stages.

    Stages already completed with the same inputs are reused; the augmented training set,
    its SHA-256 and summary.json are written under <output_dir>/flywheel/<name>/.
    The executor options override the config's `executor` section; the files are the same.
    """
    from provenir.core.extras import check_extras
    from provenir.flywheel import DataFlywheel, FlywheelConfig
    from provenir.scale.executor import executor_config

    flywheel_config = FlywheelConfig.from_yaml(config, set_ or [])
    flywheel_config.executor = executor_config(
        flywheel_config.executor, executor=executor, address=ray_address, workers=ray_workers
    )
    check_extras("eval")  # mining scores predictions with the eval metrics
    result = DataFlywheel(flywheel_config).run(progress=progress)
    if as_json:
        body = {
            "augmented_path": str(result.augmented_path),
            "augmented_sha256": result.augmented_sha256,
            "summary_path": str(result.summary_path),
            "counts": result.counts,
            "stages_run": result.stages_run,
            "stages_skipped": result.stages_skipped,
        }
        typer.echo(json.dumps(body, sort_keys=True, default=str))
        return
    typer.echo(result.format_table())
    typer.echo(f"augmented set: {result.augmented_path} ({result.counts['augment']['rows']} rows)")
    typer.echo(f"sha256: {result.augmented_sha256}")
    typer.echo(f"summary: {result.summary_path}")


def register(app: typer.Typer) -> None:
    """Attach the ``flywheel`` command to ``app``."""
    app.command("flywheel")(flywheel_command)
