"""``provenir gate``: decide a run's promotion with the gate spec it registered before training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from provenir.cli.options import RUN_HELP, JsonFlag, OutputDir

#: Exit code of a gate that ran and failed (0: passed; 2: an error, from the CLI's handler).
EXIT_GATE_FAILED = 1


def gate_command(
    run: Annotated[str, typer.Argument(help=RUN_HELP + " Its eval.json is gated.")],
    baseline: Annotated[
        str | None, typer.Option(help="Baseline run id or eval.json (must match the registered spec).")
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated metrics (must match the registered spec).")
    ] = None,
    tolerance: Annotated[
        float | None, typer.Option(help="Allowed drop (must match the registered spec).")
    ] = None,
    mode: Annotated[
        str | None, typer.Option(help="absolute | relative (must match the registered spec).")
    ] = None,
    alpha: Annotated[
        float | None, typer.Option(help="Significance level (must match the registered spec).")
    ] = None,
    correction: Annotated[
        str | None, typer.Option(help="holm | none (must match the registered spec).")
    ] = None,
    require_significance: Annotated[
        bool | None,
        typer.Option(
            "--require-significance/--no-require-significance",
            help="Trip only on significant drops (must match the registered spec).",
        ),
    ] = None,
    register_spec: Annotated[
        bool,
        typer.Option(
            "--register",
            help="Record the options given as a new gate registration (audited) and decide with it.",
        ),
    ] = False,
    markdown: Annotated[
        Path | None,
        typer.Option(help="Also write a Markdown summary (for a pull request comment) to this file."),
    ] = None,
    output_dir: OutputDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Gate RUN's evaluation against its baseline with the registered spec: exit 0 pass, 1 fail, 2 error.

    The spec is the run config's gate: section, sealed in the manifest when training started.
    Options that differ from it are refused unless --register records them as a new
    registration (an audited event, never a silent override).
    """
    from provenir.core.atomic import atomic_write_text
    from provenir.core.extras import check_extras
    from provenir.core.store import RunStore

    check_extras("eval")  # the paired tests and power solvers: one line if missing, not a traceback
    from provenir.train.preregistered_gate import decide_registered_gate

    manifest = RunStore(output_dir).resolve(run)
    requested: dict[str, Any] = {
        "baseline": baseline,
        "metrics": [m.strip() for m in metrics.split(",") if m.strip()] if metrics is not None else None,
        "tolerance": tolerance,
        "mode": mode,
        "alpha": alpha,
        "correction": correction,
        "require_significance": require_significance,
    }
    outcome = decide_registered_gate(manifest, requested=requested, register=register_spec)
    if markdown is not None:
        atomic_write_text(markdown, outcome.to_markdown())
    if as_json:
        typer.echo(json.dumps(outcome.to_dict(), sort_keys=True, default=str))
    else:
        if outcome.registered_now:
            typer.echo(f"registered gate spec {outcome.spec_sha256[:12]} for run {outcome.run_id}")
        typer.echo(outcome.decision.message())
        for sentence in outcome.decision.detectability():
            typer.echo(f"  {sentence}")
        if markdown is not None:
            typer.echo(f"wrote {markdown}")
    if not outcome.decision.passed:
        raise typer.Exit(EXIT_GATE_FAILED)


def register(app: typer.Typer) -> None:
    """Attach the ``gate`` command to ``app``."""
    app.command("gate")(gate_command)
