"""examples/sft.yaml, dpo.yaml, grpo.yaml: valid configs that train offline on bundled data."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest

from provenir.core.config import ConfigDeprecationWarning, RunConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ALGORITHM_EXAMPLES = {"sft": "sft.yaml", "dpo": "dpo.yaml", "grpo": "grpo.yaml"}


@pytest.mark.parametrize(("algorithm", "name"), sorted(ALGORITHM_EXAMPLES.items()))
def test_example_is_a_valid_config_for_its_algorithm(algorithm: str, name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigDeprecationWarning)  # examples use no deprecated key
        config = RunConfig.from_yaml(EXAMPLES / name)
    assert config.algorithm == algorithm
    assert config.model_name_or_path == "provenir/tiny-llama"
    paths = [config.data.path] + [s.path for s in config.data.sources]
    assert all(p is not None and p.startswith("builtin:") for p in paths), "examples must run offline"
    # Each example shows its algorithm's section away from the defaults it would otherwise have.
    section = getattr(config, algorithm)
    assert section.model_fields_set, f"{name} sets nothing in its `{algorithm}:` section"
    assert name in (EXAMPLES / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize(("algorithm", "name"), sorted(ALGORITHM_EXAMPLES.items()))
def test_example_trains(algorithm: str, name: str, tmp_path: Path, tiny_model_path: Path) -> None:
    from provenir.train.runner import train

    overrides = [f"output_dir={tmp_path}"]
    if algorithm != "sft":  # the SFT example is one short epoch already
        overrides.append("max_steps=2")
    manifest = train(RunConfig.from_yaml(EXAMPLES / name, overrides))
    assert manifest.status == "completed" and math.isfinite(manifest.metrics["train_loss"])
    assert manifest.selected_checkpoint is not None
    if algorithm == "sft":
        assert manifest.selected_checkpoint.reason == "best_metric"
