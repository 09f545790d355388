"""``provenir manifest verify | show | keygen``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Attach the manifest commands to ``app``."""
    manifest_app = typer.Typer(help="Verify and inspect run manifests.", no_args_is_help=True)
    app.add_typer(manifest_app, name="manifest")

    @manifest_app.command("verify")
    def verify(
        manifest: Annotated[Path, typer.Argument(help="Manifest JSON file.")],
        check_outputs: Annotated[
            bool, typer.Option(help="Also re-hash the run's adapter and log files.")
        ] = True,
        public_key: Annotated[
            str | None, typer.Option(help="Trusted Ed25519 public key (base64) to require.")
        ] = None,
    ) -> None:
        """Check hash, file form, signature and (by default) output files; exit 2 if anything is off."""
        from provenir.core.errors import ManifestTamperedError
        from provenir.core.manifest import RunManifest

        m, raw = RunManifest.load_with_text(manifest)
        rdir = manifest.resolve().parent.parent / "runs" / m.run_id if check_outputs else None
        result = m.check(raw=raw, trusted_public_key=public_key, run_directory=rdir)
        if not result.ok:
            raise ManifestTamperedError(f"{manifest}: " + "; ".join(result.problems))
        signer = f" by key {result.signer_fingerprint}" if result.signer_fingerprint else ""
        outputs = " outputs ok," if result.outputs_ok else ""
        console.print(f"[green]ok[/] {m.run_id}: hash ok,{outputs} signature {result.signature}{signer}")

    @manifest_app.command("show")
    def show(manifest: Annotated[Path, typer.Argument(help="Manifest JSON file.")]) -> None:
        """Print the manifest as stored."""
        from provenir.core.manifest import RunManifest

        typer.echo(json.dumps(RunManifest.load(manifest).model_dump(mode="json"), indent=2, sort_keys=True))

    @manifest_app.command("keygen")
    def keygen(
        path: Annotated[Path, typer.Argument(help="Where to write the Ed25519 private key (PEM).")],
    ) -> None:
        """Create a signing key; point manifest.signing_key_path or $PROVENIR_SIGNING_KEY at it."""
        from provenir.core.errors import ConfigError
        from provenir.core.manifest import generate_signing_key

        if path.exists():
            raise ConfigError(f"{path} already exists; refusing to overwrite a key")
        console.print(f"wrote {path} (fingerprint {generate_signing_key(path)})")
