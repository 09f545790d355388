"""``provenir export``: a run's adapter merged into its base model, recorded by a child manifest.

The command parses, calls :func:`provenir.train.export.export_run` and prints; its errors are
Provenir errors that :mod:`provenir.cli.main` turns into one line and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from provenir.cli.options import RUN_HELP, JsonFlag, OutputDir


def export_command(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    merge: Annotated[
        bool,
        typer.Option("--merge", help="Merge the adapter into the base model (safetensors, float32)."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also place the merged model here (a new or empty folder)."),
    ] = None,
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key",
            help="Ed25519 key sealing the export's manifest (else $PROVENIR_SIGNING_KEY).",
        ),
    ] = None,
    model_signing_key: Annotated[
        Path | None,
        typer.Option(
            "--model-signing-key",
            help="ECDSA P-256 private key: sign the merged model folder (model.sig beside it).",
        ),
    ] = None,
    output_dir: OutputDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Merge a run's adapter into its base model, check its logits, and record it as a child run."""
    from provenir.core.errors import ConfigError
    from provenir.core.extras import check_extras

    if not merge:
        raise ConfigError(
            "export writes a merged model: pass --merge (the adapter alone is runs/<id>/adapter, "
            "recorded in the run's manifest)"
        )
    check_extras("train")
    if model_signing_key is not None:
        check_extras("signing")
    from provenir.train.export import export_run

    result = export_run(
        run, out=out, output_dir=output_dir, signing_key=signing_key, model_signing_key=model_signing_key
    )
    parent = result.manifest.provenance[-1]
    where = result.out if result.out is not None else result.model_dir
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    typer.echo(
        f"merged run {parent} into {where} ({len(result.files)} files; logits within "
        f"{result.max_abs_diff:.2g} of base + adapter)"
    )
    typer.echo(f"export run {result.manifest.run_id}: manifest {result.manifest_path}")
    if result.signature is not None:
        typer.echo(f"signed with key {result.signature.key_fingerprint}: {result.signature.signature_path}")


def register(app: typer.Typer) -> None:
    """Attach ``export`` to ``app``."""
    app.command("export")(export_command)
