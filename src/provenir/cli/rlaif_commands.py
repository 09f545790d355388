"""``provenir rlaif CONFIG``: run or continue an RLAIF pipeline and print its summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)


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
    ) -> None:
        """Generate -> judge -> pairs -> DPO -> evaluate -> gate, per iteration; resumes where it stopped."""
        from provenir.rlaif import RLAIFConfig, RLAIFPipeline

        result = RLAIFPipeline(RLAIFConfig.from_yaml(config, set_ or [])).run()
        metric_names = sorted(result.baseline)
        table = Table("iter", "run", "pairs", "agreement", *metric_names, "gate")
        table.add_row("base", "-", "-", "-", *[_fmt(result.baseline[m]) for m in metric_names], "-")
        for it in result.iterations:
            agreement = "-" if it.agreement_rate is None else f"{it.agreement_rate:.2f}"
            gate = "-" if it.gate_passed is None else ("pass" if it.gate_passed else "[red]tripped[/]")
            cells = [_fmt(it.metrics[m]) if m in it.metrics else "-" for m in metric_names]
            table.add_row(str(it.iteration), (it.run_id or "-")[:8], str(it.pairs), agreement, *cells, gate)
        console.print(table)
        console.print(f"stopped: {result.stopped_because}")
        console.print(f"best run: {result.best_run_id or 'base model (no iteration passed the gate)'}")
        console.print(f"summary: {result.folder / 'summary.json'}")


def _fmt(metric: dict[str, float]) -> str:
    return f"{metric['mean']:.3f} [{metric['ci_lower']:.3f}, {metric['ci_upper']:.3f}]"
