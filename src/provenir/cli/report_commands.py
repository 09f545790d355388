"""``provenir report | lineage | compare``: read a run's artifacts and show them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from provenir.cli.console import make_console
from provenir.cli.options import RUN_HELP, JsonFlag, OutputDir, PublicKeys, TrustedKeysFile

console = make_console()


def report_command(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    out: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path("report.html"),
    baseline: Annotated[
        str | None, typer.Option(help="Baseline run id or manifest: add the regression-gate verdict.")
    ] = None,
    tolerance: Annotated[float, typer.Option(help="Regression gate tolerance (absolute).")] = 0.02,
    public_key: PublicKeys = None,
    trusted_keys: TrustedKeysFile = None,
    output_dir: OutputDir = None,
) -> None:
    """Write one self-contained HTML report (plots inline, no network) for a run.

    A run that does not verify (under --public-key/--trusted-keys, if given) still gets its
    report, marked FAILED with the problems; the command then exits 2.
    """
    from provenir.core.errors import ManifestTamperedError
    from provenir.core.extras import check_extras
    from provenir.core.signers import SignerPolicy
    from provenir.reporting.report import build_report, save_report

    check_extras("report")
    built = build_report(
        run,
        output_dir=output_dir,
        baseline=baseline,
        tolerance=tolerance,
        policy=SignerPolicy.from_options(public_key, trusted_keys),
    )
    path = save_report(built, out)
    console.print(f"wrote {path}", markup=False)
    if not built.verification.ok:
        raise ManifestTamperedError(
            f"{run}: the run does not verify ({'; '.join(built.verification.problems)}); "
            f"{path} marks it FAILED"
        )


def lineage_command(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    output_dir: OutputDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the provenance tree (parents and children) a run belongs to."""
    from provenir.core.store import RunStore
    from provenir.reporting.lineage import build_lineage

    store, mfile = RunStore(output_dir).locate(run)
    lineage = build_lineage(store.root, mfile.stem)
    if as_json:
        typer.echo(json.dumps(lineage.to_dict(), sort_keys=True))
        return
    console.print(lineage.rich_tree(full_ids=not console.is_terminal))


def compare_command(
    run_a: Annotated[str, typer.Argument(help="Baseline run id or manifest.")],
    run_b: Annotated[str, typer.Argument(help="Candidate run id or manifest.")],
    tolerance: Annotated[float, typer.Option(help="Regression gate tolerance (absolute).")] = 0.02,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    output_dir: OutputDir = None,
) -> None:
    """Config diff, input/output hashes and metric deltas (with paired significance) of B vs A."""
    from provenir.eval.regression import RegressionGate
    from provenir.reporting.artifacts import load_run
    from provenir.reporting.compare import compare_runs

    result = compare_runs(
        load_run(run_a, output_dir), load_run(run_b, output_dir), gate=RegressionGate(tolerance)
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str))
    else:
        console.print(result.renderable(full_values=not console.is_terminal))


def register(app: typer.Typer) -> None:
    """Attach the report, lineage and compare commands to ``app``."""
    app.command("report")(report_command)
    app.command("lineage")(lineage_command)
    app.command("compare")(compare_command)
