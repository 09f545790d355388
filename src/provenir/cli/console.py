"""The CLI's Rich consoles: on a terminal they fit it; piped or redirected, they never cut a value.

Rich lays tables out for 80 columns when it cannot ask a terminal, shortening ids to ``c54dad…``;
a script reading ``provenir runs list | grep`` needs them whole. Commands that print tables also
take ``--json`` for machine reading.
"""

from __future__ import annotations

from rich.console import Console

#: Width used when stdout is not a terminal: wide enough that no table or tree is ever shortened
#: (Rich pads only expanding renderables to the width, and the CLI prints none).
PIPED_WIDTH = 100_000


def make_console(*, markup: bool = True, highlight: bool = True) -> Console:
    """A stdout console that soft-wraps text, and that is unbounded in width when stdout is no terminal."""
    console = Console(soft_wrap=True, markup=markup, highlight=highlight)
    if not console.is_terminal:
        console = Console(soft_wrap=True, markup=markup, highlight=highlight, width=PIPED_WIDTH)
    return console


def shown_id(console: Console, value: str, keep: int = 8) -> str:
    """``value`` shortened to ``keep`` characters on a terminal (a unique prefix still works as a
    run ref), whole when the output is piped."""
    return value[:keep] if console.is_terminal else value
