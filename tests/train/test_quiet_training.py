"""The Python API trains quietly and in bounded memory, even with a 10 MB row among normal ones.

Each run is a fresh subprocess, so that what it prints on stderr and its peak RSS
(``resource.getrusage``) belong to that run alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import RunConfig
from provenir.core.library_output import quiet_libraries
from provenir.train.runner import train

pytestmark = pytest.mark.slow

RUN = """
import json, resource, sys
from provenir.core.config import RunConfig
from provenir.train.runner import train

config = RunConfig.from_dict(json.loads(sys.argv[1]))
manifest = train(config)
print(json.dumps({
    "status": manifest.status,
    "long_rows": manifest.inputs.long_rows.model_dump() if manifest.inputs.long_rows else None,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""

TEN_MB = 10 * 1024 * 1024
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu "


def run_training(tmp_path: Path, name: str, rows: list[dict[str, str]]) -> tuple[dict[str, Any], str]:
    folder = tmp_path / name
    folder.mkdir()
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {
        "output_dir": str(folder / "artifacts"),
        "max_steps": 1,
        "batch_size": 2,
        "gradient_checkpointing": False,
        "data": {"path": str(data)},
    }
    # The user's environment, not the test suite's: no progress-bar switches set for them.
    env = {k: v for k, v in os.environ.items() if "PROGRESS_BARS" not in k and "ADVISORY" not in k}
    proc = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps(config)], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path
) -> dict[str, tuple[dict[str, Any], str]]:
    tmp_path = tmp_path_factory.mktemp("quiet")
    normal = [{"prompt": f"Say {w}.", "response": f"{w.capitalize()}."} for w in WORDS.split() * 2]
    huge = {"prompt": "Summarise this.", "response": (WORDS * (TEN_MB // len(WORDS) + 1))[:TEN_MB]}
    return {
        "baseline": run_training(tmp_path, "baseline", normal),
        "huge": run_training(tmp_path, "huge", [*normal[:3], huge, *normal[3:]]),
    }


def test_python_api_prints_no_library_noise(runs: dict[str, tuple[dict[str, Any], str]]) -> None:
    result, stderr = runs["baseline"]
    assert result["status"] == "completed"
    # Provenir's progress bar goes to stdout; nothing else may reach stderr: no bitsandbytes
    # "kernels" note, no FutureWarning, no "Loading weights" or datasets map progress bars.
    assert stderr.strip() == "", stderr


def test_ten_megabyte_row_trains_counted_and_in_bounded_memory(
    runs: dict[str, tuple[dict[str, Any], str]],
) -> None:
    baseline, _ = runs["baseline"]
    result, stderr = runs["huge"]
    assert result["status"] == "completed"
    assert result["long_rows"] == {
        "max_length": 512,
        "training_rows": 1,
        "truncated": 1,
        "dropped": 0,
        "eval_rows": None,
        "first_training_rows": [4],
    }
    assert "Token indices sequence length" not in stderr
    assert stderr.strip().splitlines() == [
        "1 of 25 training rows are longer than max_length=512 tokens: 1 truncated to their first 512 "
        "tokens, 0 dropped (the prompt alone fills max_length); recorded in the manifest as inputs.long_rows"
    ]
    # Before bounded measuring, the 10 MB row cost ~1.7 GB more than the baseline run.
    extra = result["peak_rss_mb"] - baseline["peak_rss_mb"]
    assert extra < 250, f"the 10 MB row cost {extra:.0f} MB of peak RSS"


def test_quiet_scope_leaves_the_callers_warnings_and_loggers_as_they_were(tmp_path: Path) -> None:
    import logging

    filters_before = list(warnings.filters)
    levels_before = {name: logging.getLogger(name).level for name in ("transformers", "bitsandbytes", "trl")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_libraries():
            warnings.warn_explicit(
                "library note", FutureWarning, "x.py", 1, module="transformers.training_args"
            )
            warnings.warn_explicit("caller's own", FutureWarning, "mine.py", 1, module="my_project.train")
            assert logging.getLogger("bitsandbytes").getEffectiveLevel() == logging.ERROR
        warnings.warn_explicit(
            "library note after", FutureWarning, "x.py", 2, module="transformers.training_args"
        )
    assert [str(w.message) for w in caught] == ["caller's own", "library note after"]
    assert warnings.filters == filters_before
    assert {name: logging.getLogger(name).level for name in levels_before} == levels_before

    # The run driver restores them too, whatever the backend.
    train(RunConfig.from_dict({"backend": "stub", "output_dir": str(tmp_path / "artifacts")}))
    assert warnings.filters == filters_before
    assert {name: logging.getLogger(name).level for name in levels_before} == levels_before
