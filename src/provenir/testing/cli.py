"""Run Provenir's command line in-process, as tests and notebooks do."""

from __future__ import annotations

from collections.abc import Sequence


def run_cli(args: Sequence[str]) -> int:
    """The exit code of ``provenir ARGS`` run in this process (typer exits 0 on success too).

    Output goes where the command prints it (stdout, and one ``error:`` line on stderr), so
    pytest's ``capsys`` sees it.
    """
    from provenir.cli.main import main

    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
