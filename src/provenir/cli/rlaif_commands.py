"""``provenir rlaif CONFIG``: run or continue an RLAIF pipeline and print its summary table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from provenir.cli.console import make_console, shown_id
from provenir.cli.options import JsonFlag

console = make_console()


def register(app: typer.Typer) -> None:
    """Attach the ``rlaif`` command to ``app``."""

    @app.command()
    def rlaif(
        config: Annotated[
            Path, typer.Argument(help="RLAIF pipeline YAML (see examples/rlaif_offline.yaml).")
        ],
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="Override a field: key.path=value.")
        ] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Generate -> judge -> pairs -> DPO -> evaluate -> gate, per iteration; resumes where it stopped."""
        from provenir.core.extras import check_extras
        from provenir.rlaif import RLAIFConfig, RLAIFPipeline

        rlaif_config = RLAIFConfig.from_yaml(config, set_ or [])
        check_extras("train", "eval")  # before the first generation, not after it
        result = RLAIFPipeline(rlaif_config).run()
        if as_json:
            typer.echo(json.dumps({**result.to_dict(), "folder": str(result.folder)}, sort_keys=True))
            return
        metric_names = sorted(result.baseline)
        table = Table("iter", "run", "pairs", "agreement", *metric_names, "gate")
        table.add_row("base", "-", "-", "-", *[_fmt(result.baseline[m]) for m in metric_names], "-")
        for it in result.iterations:
            agreement = "-" if it.agreement_rate is None else f"{it.agreement_rate:.2f}"
            gate = "-" if it.gate_passed is None else ("pass" if it.gate_passed else "[red]tripped[/]")
            cells = [_fmt(it.metrics[m]) if m in it.metrics else "-" for m in metric_names]
            run = shown_id(console, it.run_id) if it.run_id else "-"
            table.add_row(str(it.iteration), run, str(it.pairs), agreement, *cells, gate)
        console.print(table)
        console.print(f"stopped: {result.stopped_because}")
        console.print(f"best run: {result.best_run_id or 'base model (no iteration passed the gate)'}")
        console.print(f"summary: {result.folder / 'summary.json'}")


def _fmt(metric: dict[str, float]) -> str:
    return f"{metric['mean']:.3f} [{metric['ci_lower']:.3f}, {metric['ci_upper']:.3f}]"
