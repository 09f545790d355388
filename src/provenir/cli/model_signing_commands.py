"""``provenir sign-model`` and ``provenir verify-model``: OpenSSF model signatures over a run's model folder.

Each command parses, calls one function of :mod:`provenir.governance.model_signing` and prints;
its errors are Provenir errors that :mod:`provenir.cli.main` turns into one line and exit 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from provenir.cli.options import RUN_HELP, OutputDir

#: Environment variable the keyless path reads an OIDC token from (never a command-line argument,
#: which would land in shell history and process listings).
IDENTITY_TOKEN_ENV = "SIGSTORE_IDENTITY_TOKEN"

SignatureOption = Annotated[
    Path | None,
    typer.Option("--signature", help="Signature file (default: model.sig beside the model folder)."),
]


def sign_model_command(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="ECDSA P-256 private key (PEM): manifest keygen --algorithm ecdsa-p256."),
    ] = None,
    sigstore: Annotated[
        bool,
        typer.Option(
            "--sigstore",
            help=f"Sign keylessly with Sigstore (needs network and an OIDC identity; ${IDENTITY_TOKEN_ENV} "
            "or an ambient CI credential, else a browser login).",
        ),
    ] = False,
    signature: SignatureOption = None,
    output_dir: OutputDir = None,
) -> None:
    """Sign the run's adapter (or model) folder with OpenSSF model-signing; recorded in the audit log."""
    from provenir.core.extras import check_extras
    from provenir.governance.model_signing import sign_run

    check_extras("signing")

    signed = sign_run(
        run,
        key_path=key,
        sigstore=sigstore,
        identity_token=os.environ.get(IDENTITY_TOKEN_ENV) or None,
        output_dir=output_dir,
        signature_path=signature,
    )
    signer = f"key {signed.key_fingerprint}" if signed.key_fingerprint else "Sigstore"
    typer.echo(f"signed {signed.folder} ({len(signed.files)} files) with {signer}: {signed.signature_path}")


def verify_model_command(
    run: Annotated[str, typer.Argument(help=RUN_HELP)],
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="ECDSA public key (PEM) the model was signed with."),
    ] = None,
    sigstore_identity: Annotated[
        str | None,
        typer.Option(help="Sigstore signature: the signer identity (e-mail or workflow URI) to require."),
    ] = None,
    sigstore_issuer: Annotated[
        str | None, typer.Option(help="Sigstore signature: the OIDC issuer of that identity.")
    ] = None,
    signature: SignatureOption = None,
    output_dir: OutputDir = None,
) -> None:
    """Check the run's model folder against its signature and its manifest; exit 2 if anything is off."""
    from provenir.core.extras import check_extras
    from provenir.governance.model_signing import verify_run

    check_extras("signing")

    result = verify_run(
        run,
        public_key_path=public_key,
        sigstore_identity=sigstore_identity,
        sigstore_issuer=sigstore_issuer,
        output_dir=output_dir,
        signature_path=signature,
    )
    signer = f"key {result.key_fingerprint}" if result.key_fingerprint else f"Sigstore {sigstore_identity}"
    typer.echo(
        f"ok {result.folder}: {len(result.files)} files match {result.signature_path.name} "
        f"signed by {signer}, and the run manifest's outputs"
    )


def register(app: typer.Typer) -> None:
    """Attach ``sign-model`` and ``verify-model`` to ``app``."""
    app.command("sign-model")(sign_model_command)
    app.command("verify-model")(verify_model_command)
