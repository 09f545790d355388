"""A missing optional package is one line naming the extra that installs it."""

from __future__ import annotations

import sys

import pytest
import typer

from provenir.core.errors import MissingExtraError, ProvenirError
from provenir.core.extras import EXTRAS, check_extras, extra_for, missing_extra_error, require_extra


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` look uninstalled: import raises ModuleNotFoundError, find_spec returns None."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_require_extra_imports_or_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert require_extra("json", "eval").dumps([]) == "[]"
    hide(monkeypatch, "scipy")
    with pytest.raises(MissingExtraError) as caught:
        require_extra("scipy", "eval", purpose="Wilson intervals")
    assert isinstance(caught.value, ProvenirError)
    assert (
        str(caught.value)
        == "Wilson intervals needs scipy, which is not installed: pip install 'provenir[eval]'"
    )
    assert (caught.value.module, caught.value.extra) == ("scipy", "eval")


def test_a_missing_provenir_module_is_a_bug_not_an_extra() -> None:
    with pytest.raises(ModuleNotFoundError):
        require_extra("provenir.no_such_module", "eval")


def test_check_extras_lists_what_is_missing_without_importing(monkeypatch: pytest.MonkeyPatch) -> None:
    check_extras("eval", "report")  # everything is installed in the test environment
    hide(monkeypatch, "scipy", "sacrebleu")
    with pytest.raises(MissingExtraError) as caught:
        check_extras("report", "eval")
    assert str(caught.value) == (
        "this needs the 'eval' extra (sacrebleu, scipy not installed): pip install 'provenir[eval]'"
    )
    hide(monkeypatch, "torch", "transformers", "trl", "peft")
    with pytest.raises(MissingExtraError) as caught:
        check_extras("train", "eval")
    assert str(caught.value) == (
        "this needs the 'train' and 'eval' extras (peft, sacrebleu, scipy and 3 more not installed): "
        "pip install 'provenir[train,eval]'"
    )
    with pytest.raises(ValueError, match="unknown extras"):
        check_extras("nope")


def test_every_module_maps_to_one_extra() -> None:
    assert extra_for("scipy.special") == "eval"
    assert extra_for("numpy") == "eval"  # listed under train too: the smaller install is named
    assert extra_for("torch.nn") == "train"
    assert extra_for("json") is None
    for extra, modules in EXTRAS.items():
        for module in modules:
            assert extra_for(module) is not None, (extra, module)


def test_missing_extra_error_from_a_failed_import() -> None:
    error = missing_extra_error(ModuleNotFoundError("No module named 'uvicorn'", name="uvicorn"))
    assert error is not None and str(error) == "uvicorn is not installed: pip install 'provenir[api]'"
    assert missing_extra_error(ModuleNotFoundError("x", name="not_a_provenir_extra")) is None
    assert missing_extra_error(ModuleNotFoundError("x")) is None


def test_cli_turns_an_unchecked_missing_import_into_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command that reaches an optional import without checking first still gets the one-line hint."""
    import provenir.cli.main as cli_main

    def app_importing_matplotlib() -> typer.Typer:
        app = typer.Typer()

        @app.command()
        def plot() -> None:
            import matplotlib  # noqa: F401

        return app

    monkeypatch.setattr(cli_main, "build_app", app_importing_matplotlib)
    hide(monkeypatch, "matplotlib")
    with pytest.raises(SystemExit) as exit_:
        cli_main.main([])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: matplotlib is not installed: pip install 'provenir[report]'\n"
