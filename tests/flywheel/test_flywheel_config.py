"""FlywheelConfig: strict validation and default < file < --set precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenir.core.errors import ConfigError
from provenir.flywheel import FlywheelConfig


def test_precedence_default_file_override(tmp_path: Path) -> None:
    cfg = tmp_path / "fw.yaml"
    cfg.write_text("mining: {eval_data: d.jsonl, predictions: p.jsonl, threshold: 0.3}\n")
    assert (
        FlywheelConfig.from_dict({"mining": {"eval_data": "d", "predictions": "p"}}).mining.threshold == 0.5
    )
    assert FlywheelConfig.from_yaml(cfg).mining.threshold == 0.3
    assert FlywheelConfig.from_yaml(cfg, ["mining.threshold=0.7"]).mining.threshold == 0.7
    assert FlywheelConfig.from_yaml(cfg).filter.max_similarity == 0.8  # untouched default


def test_strict_types_and_ranges() -> None:
    with pytest.raises(ConfigError, match="filter.min_judge_score: must be <= 10"):
        FlywheelConfig.from_dict(
            {"mining": {"eval_data": "d", "predictions": "p"}, "filter": {"min_judge_score": 11}}
        )
    with pytest.raises(ConfigError, match="generation.variants_per_failure: must be an integer"):
        FlywheelConfig.from_dict(
            {"mining": {"eval_data": "d", "predictions": "p"}, "generation": {"variants_per_failure": "4"}}
        )
    with pytest.raises(ConfigError, match="mining: required"):
        FlywheelConfig.from_dict({})


def test_section_hash_tracks_only_its_sections() -> None:
    base = FlywheelConfig.from_dict({"mining": {"eval_data": "d", "predictions": "p"}})
    other = base.model_copy(update={"filter": base.filter.model_copy(update={"ngram": 2})})
    assert base.section_hash("mining") == other.section_hash("mining")
    assert base.section_hash("filter") != other.section_hash("filter")
