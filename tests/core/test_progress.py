"""The one progress bar: drawn where asked, silent (and without rich) where not."""

from __future__ import annotations

import subprocess
import sys

import pytest

from provenir.core.progress import ProgressBar


def test_bar_draws_counts_and_fields_on_the_chosen_stream(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressBar("stage", 3, show=True, fields={"loss": ""}) as bar:
        bar.advance(2)
        bar.update(completed=3, loss="loss 0.5")
    err = capsys.readouterr().err
    assert "3/3" in err and "loss 0.5" in err and "stage" in err

    with ProgressBar("out", 2, show=True, stderr=False, auto_refresh=False) as bar:
        bar.advance(2)
    captured = capsys.readouterr()
    assert "2/2" in captured.out and captured.err == ""


def test_disabled_bar_prints_nothing_and_accepts_every_call(capsys: pytest.CaptureFixture[str]) -> None:
    bar = ProgressBar("quiet", 5, show=False)
    bar.advance()
    bar.update(completed=4)
    bar.refresh()
    bar.close()
    bar.close()
    assert capsys.readouterr() == ("", "")
    # show=None follows the terminal; pytest's captured stderr is not one.
    assert ProgressBar("auto", 1).enabled is False


def test_a_hidden_bar_does_not_import_rich() -> None:
    code = (
        "import sys; from provenir.core.progress import ProgressBar; "
        "ProgressBar('x', 1, show=False).advance(); print('rich' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
