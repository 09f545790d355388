"""``provenir rlaif CONFIG``: run or continue an RLAIF pipeline and print its summary table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from provenir.cli.console import make_console, shown_id
from provenir.cli.options import ExecutorOption, JsonFlag, RayAddress, RayWorkers

console = make_console()


def rlaif_command(
    config: Annotated[Path, typer.Argument(help="RLAIF pipeline YAML (see examples/rlaif_offline.yaml).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field: key.path=value.")] = None,
    executor: ExecutorOption = None,
    ray_address: RayAddress = None,
    ray_workers: RayWorkers = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate -> judge -> pairs -> DPO -> evaluate -> gate, per iteration; resumes where it stopped."""
    from provenir.core.extras import check_extras
    from provenir.rlaif import RLAIFConfig, RLAIFPipeline
    from provenir.scale.executor import executor_config

    cfg = RLAIFConfig.from_yaml(config, set_ or [])
    cfg.executor = executor_config(cfg.executor, executor=executor, address=ray_address, workers=ray_workers)
    check_extras("train", "eval")  # before the first generation, not after it
    result = RLAIFPipeline(cfg).run()
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "folder": str(result.folder)}, sort_keys=True))
        return
    metric_names = sorted(result.baseline)
    gated = ", ".join(cfg.gate.metrics)
    table = Table("iter", "run", "pairs", "agreement", *metric_names, f"vs base ({gated})", "gate")
    table.add_row("base", "-", "-", "-", *[_fmt(result.baseline[m]) for m in metric_names], "-", "-")
    for it in result.iterations:
        agreement = "-" if it.agreement_rate is None else f"{it.agreement_rate:.2f}"
        gate = "-" if it.gate_passed is None else ("pass" if it.gate_passed else "[red]tripped[/]")
        cells = [_fmt(it.metrics[m]) if m in it.metrics else "-" for m in metric_names]
        versus = "; ".join(_versus(it.vs_baseline[m]) for m in cfg.gate.metrics if m in it.vs_baseline)
        run = shown_id(console, it.run_id) if it.run_id else "-"
        table.add_row(str(it.iteration), run, str(it.pairs), agreement, *cells, versus or "-", gate)
    console.print(table)
    console.print(f"stopped: {result.stopped_because}")
    if result.best_run_id:
        console.print(f"best run: {result.best_run_id} (beat the base model on {gated}, p < 0.05)")
    else:
        console.print(f"best run: none, no iteration beat the base model on {gated} (paired test, p < 0.05)")
    console.print(f"summary: {result.folder / 'summary.json'}")


def register(app: typer.Typer) -> None:
    """Attach the ``rlaif`` command to ``app``."""
    app.command("rlaif")(rlaif_command)


def _fmt(metric: dict[str, float]) -> str:
    return f"{metric['mean']:.3f} [{metric['ci_lower']:.3f}, {metric['ci_upper']:.3f}]"


def _versus(comparison: dict[str, Any]) -> str:
    """``+0.213 p<0.001`` / ``-0.010 p=0.62``: the change against the base model and its paired p-value."""
    delta, p = comparison["delta"], comparison["p_value"]
    text = f"{delta:+.3f}"
    if p is not None:
        text += " p<0.001" if p < 0.001 else f" p={p:.3f}"
    return text + (" *" if comparison["verdict"] == "improvement" else "")
