"""``provenir`` entry point: assembles the command modules and turns errors into one line + exit 2.

Each module in :data:`COMMAND_MODULES` exposes ``register(app: typer.Typer) -> None``; commands
import heavy libraries inside their bodies so ``provenir --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

import typer

from provenir.cli import (
    api_commands,
    attest_commands,
    data_commands,
    eval_commands,
    export_commands,
    flywheel_commands,
    gate_commands,
    governance_commands,
    judge_commands,
    manifest_commands,
    model_signing_commands,
    report_commands,
    rlaif_commands,
    train_commands,
)
from provenir.core.errors import ProvenirError, RunInterrupted
from provenir.core.library_output import quiet_libraries

#: The command modules, in the order a run flows: train, check, evaluate, iterate, then the readers.
COMMAND_MODULES: tuple[ModuleType, ...] = (
    train_commands,
    manifest_commands,
    eval_commands,
    gate_commands,
    rlaif_commands,
    flywheel_commands,
    judge_commands,
    data_commands,
    governance_commands,
    model_signing_commands,
    export_commands,
    attest_commands,
    report_commands,
    api_commands,
)

EXIT_USAGE = 2
#: 128 + SIGINT, what a shell reports for a process stopped by Ctrl-C.
EXIT_INTERRUPTED = 130


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
        module.register(app)
    return app


def _quiet_library_environment() -> None:
    # The CLI shows its own progress. Libraries read these when first imported, so progress
    # bars and advisory notes are off before any command imports them; quiet_libraries()
    # covers the rest (loggers, warnings) while the command runs.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def _os_error_line(exc: OSError) -> str:
    """``artifacts/x: Permission denied``: the path and the reason of an OSError, on one line."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename else reason


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a :class:`ProvenirError` becomes ``error: <message>`` on stderr and exit code 2.

    Ctrl-C exits with 130 after saying what was interrupted (and, for a training run with a
    checkpoint, the command that resumes it). An operating-system error (a folder that cannot
    be read or written) is one line and exit 2 as well: never a traceback.
    """
    _quiet_library_environment()
    app = build_app()
    try:
        with quiet_libraries():
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
    except KeyboardInterrupt as exc:  # not through typer (interrupted before a command ran)
        _report_interrupt(exc)
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit as exc:
        # Typer turns Ctrl-C into a silent exit 130; the interrupt is still in the chain.
        if exc.code == EXIT_INTERRUPTED:
            _report_interrupt(_interrupt_in_chain(exc))
        raise
    except OSError as exc:
        print(f"error: {_os_error_line(exc)}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _interrupt_in_chain(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt that ``exc`` was raised while handling (or because of), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _report_interrupt(exc: KeyboardInterrupt | None) -> None:
    lines = exc.lines if isinstance(exc, RunInterrupted) else ["interrupted"]
    print("\n".join(lines), file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    main()
