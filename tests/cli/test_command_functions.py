"""Every CLI command is a module-level function that tools and tests can address directly."""

from __future__ import annotations

import inspect
import sys
from types import ModuleType
from typing import Any

import typer
from typer.testing import CliRunner

from provenir.cli import main as cli_main
from provenir.cli.train_commands import config_show


def _callbacks(group: Any, path: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    if group.callback is not None and path:
        found[path] = group.callback
    for name, command in getattr(group, "commands", {}).items():
        found.update(_callbacks(command, f"{path} {name}".strip()))
    return found


def test_every_registered_command_is_a_module_level_function_of_its_module() -> None:
    command = typer.main.get_command(cli_main.build_app())
    callbacks = _callbacks(command)
    assert {"train", "eval", "audit", "audit verify", "attest create", "templates render"} <= set(callbacks)
    modules = {m.__name__ for m in cli_main.COMMAND_MODULES}
    for path, callback in callbacks.items():
        function = inspect.unwrap(callback)  # typer wraps it to convert parameters
        assert "<locals>" not in function.__qualname__, path
        assert function.__module__ in modules, path
        assert getattr(sys.modules[function.__module__], function.__name__) is function, path


def test_command_modules_are_modules_not_names() -> None:
    assert cli_main.COMMAND_MODULES
    assert all(isinstance(m, ModuleType) and hasattr(m, "register") for m in cli_main.COMMAND_MODULES)


def test_one_command_can_be_mounted_on_its_own() -> None:
    app = typer.Typer()
    app.command("show")(config_show)
    result = CliRunner().invoke(app, ["--set", "seed=7"])
    assert result.exit_code == 0, result.output
    assert "\nseed: 7\n" in result.stdout and "# config_hash: " in result.stdout
