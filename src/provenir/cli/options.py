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
