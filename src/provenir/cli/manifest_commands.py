"""``provenir manifest verify | show | keygen``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from provenir.cli.console import make_console
from provenir.cli.options import RUN_HELP, OutputDir, PublicKeys, TrustedKeysFile

console = make_console()


def manifest_verify(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    check_outputs: Annotated[bool, typer.Option(help="Also re-hash the run's adapter and log files.")] = True,
    public_key: PublicKeys = None,
    trusted_keys: TrustedKeysFile = None,
    output_dir: OutputDir = None,
) -> None:
    """Check hash, file form, signature and (by default) output files; exit 2 if anything is off."""
    from provenir.core.errors import ManifestTamperedError
    from provenir.core.signers import SignerPolicy
    from provenir.core.store import RunStore

    policy = SignerPolicy.from_options(public_key, trusted_keys)
    stored = RunStore(output_dir).open(run, policy=policy, check_outputs=check_outputs)
    result = stored.verification
    if not result.ok or stored.manifest is None:
        raise ManifestTamperedError(f"{stored.manifest_file}: " + "; ".join(result.problems))
    signer = f" by key {result.signer_fingerprint}" if result.signer_fingerprint else ""
    trusted = " (trusted)" if result.signer_trusted else ""
    outputs = " outputs ok," if result.outputs_ok else ""
    console.print(
        f"[green]ok[/] {stored.manifest.run_id}: hash ok,{outputs} "
        f"signature {result.signature}{signer}{trusted}"
    )


def manifest_show(run: Annotated[str, typer.Argument(help=RUN_HELP)], output_dir: OutputDir = None) -> None:
    """Print the manifest as stored."""
    from provenir.core.store import RunStore

    manifest = RunStore(output_dir).load(run)
    typer.echo(json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True))


def manifest_keygen(
    path: Annotated[
        Path, typer.Argument(help="Where to write the private key (PEM); PATH.pub gets the public key.")
    ],
    algorithm: Annotated[
        str,
        typer.Option(
            help="ed25519 signs manifests (manifest.signing_key_path); ecdsa-p256 signs model "
            "folders with OpenSSF model-signing (manifest.model_signing_key_path, sign-model).",
        ),
    ] = "ed25519",
) -> None:
    """Create a key pair: an ed25519 key for manifest.signing_key_path (or $PROVENIR_SIGNING_KEY),
    an ecdsa-p256 key for manifest.model_signing_key_path and `provenir sign-model`."""
    from provenir.core.signers import public_key_of
    from provenir.core.signing_keys import generate_key_pair

    pair = generate_key_pair(path, algorithm)
    typer.echo(f"wrote {pair.private_key} and {pair.public_key} (fingerprint {pair.fingerprint})")
    if pair.algorithm == "ed25519":
        # What verifiers pass to --public-key (or list in a --trusted-keys file).
        typer.echo(f"public key {public_key_of(path)}")


def register(app: typer.Typer) -> None:
    """Attach the manifest commands to ``app``."""
    manifest_app = typer.Typer(help="Verify and inspect run manifests.", no_args_is_help=True)
    app.add_typer(manifest_app, name="manifest")
    manifest_app.command("verify")(manifest_verify)
    manifest_app.command("show")(manifest_show)
    manifest_app.command("keygen")(manifest_keygen)
