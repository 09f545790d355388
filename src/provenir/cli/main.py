"""``provenir`` entry point: assembles the command modules and turns errors into one line + exit 2.

Each module in :data:`COMMAND_MODULES` exposes ``register(app: typer.Typer) -> None``; commands
import heavy libraries inside their bodies so ``provenir --help`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings

import typer

from provenir.core.errors import ProvenirError

COMMAND_MODULES: tuple[str, ...] = (
    # In the order a run flows: train, check, evaluate, iterate, then the readers.
    "provenir.cli.train_commands",
    "provenir.cli.manifest_commands",
    "provenir.cli.eval_commands",
    "provenir.cli.rlaif_commands",
    "provenir.cli.flywheel_commands",
    "provenir.cli.data_commands",
    "provenir.cli.governance_commands",
    "provenir.cli.attest_commands",
    "provenir.cli.report_commands",
    "provenir.cli.api_commands",
)

EXIT_USAGE = 2


def build_app() -> typer.Typer:
    """The full Typer application."""
    app = typer.Typer(
        name="provenir",
        help="Provenir: reproducible, tamper-evident, honestly evaluated LLM post-training.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)
    return app


def _quiet_libraries() -> None:
    # The CLI shows its own progress; library download/loading bars and bitsandbytes' note
    # about an optional CPU kernel package only add noise there (library users keep them).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    # transformers 5.24 deprecates the gradient_checkpointing names TRL 1.16 still passes.
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a :class:`ProvenirError` becomes ``error: <message>`` on stderr and exit code 2."""
    _quiet_libraries()
    app = build_app()
    try:
        app(args=argv, prog_name="provenir", standalone_mode=True)
    except ProvenirError as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message contained
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except ModuleNotFoundError as exc:
        # A package of an extra that no command checked for up front: still one line naming the extra.
        from provenir.core.extras import missing_extra_error

        missing = missing_extra_error(exc)
        if missing is None:
            raise
        print(f"error: {missing}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
