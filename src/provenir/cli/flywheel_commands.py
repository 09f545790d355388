"""``provenir flywheel``: mine eval failures, generate and filter variants, write an augmented set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Attach the ``flywheel`` command to ``app``."""

    @app.command("flywheel")
    def flywheel_command(
        config: Annotated[Path, typer.Argument(help="Flywheel YAML (see examples/flywheel_offline.yaml).")],
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="Override a config field: key.path=value (repeatable)."),
        ] = None,
        progress: Annotated[
            bool | None, typer.Option(help="Show progress bars (default: on a terminal).")
        ] = None,
    ) -> None:
        """Run (or resume) the data flywheel and print a table of its stages.

        Stages already completed with the same inputs are reused; the augmented training set,
        its SHA-256 and summary.json are written under <output_dir>/flywheel/<name>/.
        """
        from provenir.flywheel import DataFlywheel, FlywheelConfig

        result = DataFlywheel(FlywheelConfig.from_yaml(config, set_ or [])).run(progress=progress)
        typer.echo(result.format_table())
        typer.echo(f"augmented set: {result.augmented_path} ({result.counts['augment']['rows']} rows)")
        typer.echo(f"sha256: {result.augmented_sha256}")
        typer.echo(f"summary: {result.summary_path}")
