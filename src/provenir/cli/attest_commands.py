"""``provenir attest RUN`` (sign the run's in-toto attestations) and ``provenir attest verify RUN``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from provenir.cli.options import RUN_HELP, OutputDir


class _AttestGroup(TyperGroup):
    """``attest RUN`` means ``attest create RUN``: anything that is not a sub-command goes to ``create``."""

    #: The sub-command that arguments which name no sub-command go to.
    default_command = "create"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def attest_create(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    key: Annotated[
        Path | None,
        typer.Option(
            help="Ed25519 private key (PEM, `provenir manifest keygen`); default: the run's "
            "manifest.signing_key_path, then $PROVENIR_SIGNING_KEY."
        ),
    ] = None,
    output_dir: OutputDir = None,
) -> None:
    """Write runs/<id>/provenance.intoto.jsonl, signed (same as `provenir attest RUN`)."""
    from provenir.core.store import RunStore
    from provenir.governance.attestation import attest_run

    record = attest_run(RunStore(output_dir), run, key=key)
    kinds = ", ".join(_short(t) for t in record.predicate_types)
    typer.echo(f"wrote {record.path} ({kinds}) signed by key {record.keyid}")
    for note in record.notes:
        typer.echo(f"note: {note}", err=True)


def attest_verify(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    public_key: Annotated[
        str | None, typer.Option(help="Trusted Ed25519 public key (base64) that must have signed.")
    ] = None,
    trusted_keys: Annotated[
        Path | None,
        typer.Option(help="File of trusted public keys (base64, one per line, # comments)."),
    ] = None,
    output_dir: OutputDir = None,
) -> None:
    """Check every envelope's signature and that each statement matches the run's files and manifest."""
    from provenir.core.errors import AttestationError
    from provenir.core.signers import SignerPolicy
    from provenir.core.store import RunStore
    from provenir.governance.attestation import verify_attestations

    # A malformed key or trusted-keys file is a usage error here, not a failed check.
    policy = SignerPolicy.from_options([public_key] if public_key else None, trusted_keys)
    result = verify_attestations(
        RunStore(output_dir), run, public_keys=policy.public_keys if policy else None
    )
    if not result.ok:
        for problem in result.problems:
            typer.echo(f"  - {problem}", err=True)
        raise AttestationError(
            f"attestations of run {result.run_id or run} do not verify: {result.problems[0]}"
        )
    kinds = ", ".join(_short(t) for t in result.predicate_types)
    trust = (
        "a trusted key" if result.trusted else "the manifest's own key; pass --public-key to require a signer"
    )
    typer.echo(
        f"ok {result.run_id}: {kinds}; {result.subjects} subjects match; signed by key {result.signer} "
        f"({trust})"
    )


def register(app: typer.Typer) -> None:
    """Attach ``attest`` (and ``attest verify``) to ``app``."""
    attest_app = typer.Typer(
        cls=_AttestGroup,
        help="Sign a run's SLSA provenance (and evaluation and gate statements) as in-toto attestations "
        "in runs/<id>/provenance.intoto.jsonl: `provenir attest RUN`; check them: `provenir attest verify RUN`.",
        no_args_is_help=True,
    )
    attest_app.command("create")(attest_create)
    attest_app.command("verify")(attest_verify)
    app.add_typer(attest_app, name="attest")


def _short(predicate_type: Any) -> str:
    from provenir.governance.attestation import EVALUATION_PREDICATE, GATE_PREDICATE, SLSA_PROVENANCE

    return {
        SLSA_PROVENANCE: "SLSA provenance",
        EVALUATION_PREDICATE: "evaluation",
        GATE_PREDICATE: "gate",
    }.get(predicate_type, str(predicate_type))
