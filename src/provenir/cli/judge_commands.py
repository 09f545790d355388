"""``provenir judge``: measure a judge against human preference labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from provenir.cli.options import JsonFlag, OutputDir


def calibrate_command(
    labels: Annotated[
        Path,
        typer.Option(
            help="Human labels JSONL: {id, prompt, a, b, preferred: a|b|tie[, reference]} per line."
        ),
    ],
    judge: Annotated[
        str,
        typer.Option(
            help="A registered judge (stub, reward, anthropic, ...) or a YAML file: a judge section, "
            "an RLAIF config (judge:) or a flywheel config (filter.judge:)."
        ),
    ],
    length_unit: Annotated[str, typer.Option(help="Length difference in chars or words.")] = "chars",
    output_dir: OutputDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Agreement with humans (accuracy, kappas), order consistency, length bias and LC win rate.

    The report is stored under <output-dir>/judge_calibrations/ and logged in the audit log
    (event judge_calibrated); RLAIF and the flywheel read it when judge.min_kappa is set.
    """
    from provenir.core.errors import ConfigError
    from provenir.core.extras import check_extras

    if length_unit not in ("chars", "words"):
        raise ConfigError(f"--length-unit must be chars or words, got {length_unit!r}")
    unit: Literal["chars", "words"] = "chars" if length_unit == "chars" else "words"
    check_extras("eval")  # statsmodels: the Wilson interval and the logistic fits
    from provenir.rlaif.judge_calibration import calibrate_judge

    outcome = calibrate_judge(labels, judge, output_dir=output_dir, length_unit=unit)
    if as_json:
        body = {
            "path": str(outcome.stored.path),
            "report_sha256": outcome.stored.report_sha256,
            "report": {k: v for k, v in outcome.stored.report.items() if k != "items"},
        }
        typer.echo(json.dumps(body, sort_keys=True))
        return
    typer.echo(outcome.report.format_text())
    typer.echo(f"\nreport: {outcome.stored.path}")
    typer.echo(f"sha256: {outcome.stored.report_sha256}")


def register(app: typer.Typer) -> None:
    """Attach the ``judge`` command group to ``app``."""
    judge_app = typer.Typer(help="LLM judges: calibrate against human labels.", no_args_is_help=True)
    app.add_typer(judge_app, name="judge")
    judge_app.command("calibrate")(calibrate_command)
