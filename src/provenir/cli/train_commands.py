"""``provenir train | reproduce | runs list | config schema|show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from provenir.cli.console import make_console, shown_id
from provenir.cli.options import RUN_HELP, JsonFlag, OutputDir, PublicKeys, TrustedKeysFile

if TYPE_CHECKING:
    from provenir.core.manifest import RunManifest

console = make_console()

SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config field: key.path=value (repeatable).")
]


def train_command(
    config: Annotated[
        Path | None, typer.Argument(help="Run config YAML (defaults: built-in model + sample data).")
    ] = None,
    set_: SetOption = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the newest unfinished run of this config from its last checkpoint."
        ),
    ] = False,
    resume_run: Annotated[str | None, typer.Option(help="Continue this unfinished run id.")] = None,
    run_id_file: Annotated[
        Path | None,
        typer.Option(help="Also write the run id to this file (for scripts: `$(cat FILE)`)."),
    ] = None,
) -> None:
    """Train a run and write its adapter and sealed manifest."""
    from provenir.core.atomic import atomic_write_text
    from provenir.core.config import RunConfig
    from provenir.train.runner import RunOptions
    from provenir.train.runner import train as run_training

    cfg = RunConfig.load(config, set_)
    manifest = run_training(cfg, RunOptions(resume=resume_run or resume))
    if run_id_file is not None:
        atomic_write_text(run_id_file, manifest.run_id + "\n")
    print_run_summary(manifest, cfg.output_dir)


def reproduce_command(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    output_dir: OutputDir = None,
    as_json: JsonFlag = False,
    public_key: PublicKeys = None,
    trusted_keys: TrustedKeysFile = None,
) -> None:
    """Verify a run and its inputs, replay it, report whether the weights are identical.

    The replay is written beside the original run (in --output-dir when that is given).
    With --public-key/--trusted-keys, a run not signed by a trusted key is refused before
    anything trains.
    """
    from provenir.core.signers import SignerPolicy
    from provenir.core.store import RunStore
    from provenir.train.reproduce import reproduce as run_reproduce

    policy = SignerPolicy.from_options(public_key, trusted_keys)
    manifest = RunStore(output_dir).resolve(run)
    result = run_reproduce(
        manifest, output_dir=None if output_dir is None else str(output_dir), policy=policy
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), sort_keys=True))
        if not result.identical:
            raise typer.Exit(1)
        return
    print_run_summary(result.replay, result.replay.config["output_dir"])
    console.print(f"original adapter  {result.original.adapter_hash}")
    console.print(f"replayed adapter  {result.replay.adapter_hash}")
    if result.identical:
        console.print("[bold green]bitwise identical[/]")
        return
    console.print("[bold yellow]differs[/]: the replayed weights are not identical")
    table = Table("metric", "original", "replay", "delta")
    for k, (a, b) in result.metric_deltas.items():
        table.add_row(k, f"{a:.6g}", f"{b:.6g}", f"{b - a:+.3g}")
    console.print(table)
    if result.environment_changes:
        console.print("environment differs from the original run:")
        for line in result.environment_changes:
            console.print(f"  {line}", markup=False, highlight=False)
    else:
        console.print("environment: no recorded field differs from the original run")
    raise typer.Exit(1)


def runs_list(
    output_dir: OutputDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Runs found under the artifacts root, newest first (exit 2 when it holds none)."""
    from provenir.core.store import RunStore
    from provenir.train.runs import list_runs

    RunStore(output_dir).require_runs()
    rows = list_runs(output_dir)
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r, sort_keys=True))
        return
    table = Table("run_id", "name", "algorithm", "status", "started", "adapter_hash")
    for r in rows:
        table.add_row(
            r["run_id"],
            r["name"],
            r["algorithm"],
            r["status"],
            shown_id(console, r["timestamp"], 19),
            shown_id(console, r["adapter_hash"] or "", 16),
        )
    console.print(table)


def config_schema() -> None:
    """Print the RunConfig JSON Schema."""
    from provenir.core.config import RunConfig

    typer.echo(json.dumps(RunConfig.json_schema(), indent=2))


def config_show(config: Annotated[Path | None, typer.Argument()] = None, set_: SetOption = None) -> None:
    """Print the fully resolved config (defaults < file < --set) and its hash."""
    from provenir.core.config import RunConfig

    cfg = RunConfig.load(config, set_)
    typer.echo(cfg.to_yaml(), nl=False)
    typer.echo(f"# config_hash: {cfg.config_hash()}")


def register(app: typer.Typer) -> None:
    """Attach the training commands to ``app``."""
    app.command("train")(train_command)
    app.command("reproduce")(reproduce_command)
    runs_app = typer.Typer(help="List runs.", no_args_is_help=True)
    app.add_typer(runs_app, name="runs")
    runs_app.command("list")(runs_list)
    config_app = typer.Typer(help="Inspect the configuration format.", no_args_is_help=True)
    app.add_typer(config_app, name="config")
    config_app.command("schema")(config_schema)
    config_app.command("show")(config_show)


def print_run_summary(manifest: RunManifest, output_dir: str) -> None:
    """Where a finished run's adapter, manifest and logs are."""
    from provenir.core.store import RunStore

    store = RunStore(output_dir)
    rdir = store.run_dir(manifest.run_id)
    console.print(f"[bold]run[/] {manifest.run_id} ({manifest.name}) [green]{manifest.status}[/]")
    if manifest.resumed_from:
        console.print(f"  resumed from {manifest.resumed_from}")
    for key in ("final_loss", "train_loss", "global_step"):
        if key in manifest.metrics:
            console.print(f"  {key:<12} {manifest.metrics[key]:.6g}")
    adapter = next(
        (rdir / p.split("/")[0] for p in manifest.outputs if p.startswith(("adapter/", "model/"))), None
    )
    console.print(f"  adapter      {adapter}")
    console.print(f"  manifest     {store.manifest_path(manifest.run_id)}")
    console.print(f"  log          {rdir / 'train_log.jsonl'}")
