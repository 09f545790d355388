"""Options several commands share, spelled and documented once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

#: The artifacts root a command reads runs (and the audit log) from; None means the default store.
OutputDir = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        help="Artifacts root holding manifests/, runs/ and audit/ (default: $PROVENIR_OUTPUT_DIR or artifacts).",
    ),
]

#: A run named on the command line: resolved by :meth:`provenir.core.store.RunStore.resolve`.
RUN_HELP = "Run: an id, a unique prefix of one, 'latest', or a manifest JSON file."

#: ``--json`` on every command that prints a table.
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

#: ``--public-key`` (repeatable) and ``--trusted-keys``: the signer policy of every command that
#: verifies a run (:class:`provenir.core.signers.SignerPolicy`). Either one makes an unsigned or
#: foreign-signed manifest fail.
PublicKeys = Annotated[
    list[str] | None,
    typer.Option(
        "--public-key",
        help="Trusted Ed25519 public key (base64, as `manifest keygen` prints); repeatable. "
        "With any trusted key, an unsigned or foreign-signed manifest fails.",
    ),
]
TrustedKeysFile = Annotated[
    Path | None,
    typer.Option(
        "--trusted-keys",
        help="File of trusted public keys: one base64 key per line (a label may follow), # comments, "
        "or PEM PUBLIC KEY blocks. Combines with --public-key.",
    ),
]

#: ``--executor``, ``--ray-address`` and ``--ray-workers``: where a command's scans, checks,
#: generation and judging run (:class:`provenir.core.config.ExecutorConfig`); None keeps the
#: config file's choice (default: local).
ExecutorOption = Annotated[
    str | None,
    typer.Option(
        "--executor",
        help="local (this process) or ray (a Ray cluster; needs provenir[ray]). Same results either way.",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option("--ray-address", help="Ray cluster to connect to (default: start a local Ray)."),
]
RayWorkers = Annotated[
    int | None, typer.Option("--ray-workers", min=1, help="Ray tasks or actors at once (default 2).")
]
