"""``provenir serve``: the read-only REST API under uvicorn (loopback by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provenir.cli.options import OutputDir, PublicKeys, TrustedKeysFile


def serve_command(
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs a token.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    output_dir: OutputDir = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML file of API settings (token, cors_origins, audit_dir...).")
    ] = None,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option("--allow-unauthenticated", help="Serve a non-loopback address without a token."),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    public_key: PublicKeys = None,
    trusted_keys: TrustedKeysFile = None,
) -> None:
    """Serve runs, manifests, evaluations and the audit log over HTTP (read-only).

    The token comes from $PROVENIR_API_TOKEN or `token:` in --config; with one set, every
    endpoint but /health needs `Authorization: Bearer <token>`. --public-key/--trusted-keys
    (or trusted_public_keys/trusted_keys_file in --config) set the signer policy every
    verifying endpoint applies. A read-only web console is served at /ui (the token is
    typed once into its login form).
    """
    from provenir.core.extras import check_extras

    check_extras("api")
    from provenir.api.server import check_exposure
    from provenir.api.server import serve as run_server
    from provenir.api.settings import load_settings

    settings = load_settings(
        config, output_dir=output_dir, trusted_public_keys=public_key, trusted_keys_file=trusted_keys
    )
    check_exposure(settings, host, allow_unauthenticated=allow_unauthenticated)
    auth = "token required" if settings.auth_enabled else "no token (open to this machine)"
    policy = settings.signer_policy.describe() if settings.signer_policy else "no signer policy"
    typer.echo(f"serving {settings.output_dir} on http://{host}:{port} ({auth}; {policy})", err=True)
    run_server(settings, host, port, log_level=log_level)


def register(app: typer.Typer) -> None:
    """Attach ``serve`` to ``app``."""
    app.command("serve")(serve_command)
