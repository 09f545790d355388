"""One JudgeConfig / build_judge behind RLAIF, the flywheel and judge calibration."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenir.core.errors import ConfigError
from provenir.core.sampling import SamplingConfig
from provenir.eval.judge import CachedJudge, RewardJudge, StubJudge
from provenir.eval.judge.calibration import JudgeSpec
from provenir.eval.judge.config import JudgeConfig, build_judge
from provenir.flywheel.config import FlywheelJudgeConfig, ModelGeneratorConfig
from provenir.flywheel.judging import build_judge as flywheel_judge
from provenir.flywheel.judging import judge_prompt
from provenir.rlaif.config import GenerationConfig, JudgeSection


def test_reward_judge_scores_against_the_given_references(tmp_path: Path) -> None:
    judge = build_judge(JudgeConfig(), {"2+2?": "4"}, cache_dir=tmp_path)
    assert isinstance(judge, RewardJudge)  # never cached: cheaper than a cache read
    assert judge.score_pairwise("2+2?", "5", "4").preferred == "b"
    assert not any(tmp_path.iterdir())


def test_an_api_judge_is_cached_only_when_given_a_cache_dir(tmp_path: Path) -> None:
    assert isinstance(build_judge(JudgeConfig(name="stub"), {}), StubJudge)
    cached = build_judge(JudgeConfig(name="stub"), {}, cache_dir=tmp_path)
    assert isinstance(cached, CachedJudge)
    # RLAIF's section decides with its `cache` switch.
    assert isinstance(JudgeSection(name="stub").build({}, tmp_path), CachedJudge)
    assert isinstance(JudgeSection(name="stub", cache=False).build({}, tmp_path), StubJudge)


def test_the_flywheel_judge_scores_a_variant_against_its_original() -> None:
    judge = flywheel_judge(FlywheelJudgeConfig(), ["What is the capital of France?"])
    prompt = judge_prompt("What is the capital of France?")
    near = judge.score_rubric(prompt, "What is the capital city of France?", ["keeps meaning"])
    far = judge.score_rubric(prompt, "Spell cat backwards.", ["keeps meaning"])
    assert near.mean > far.mean


def test_both_pipelines_sections_are_the_one_judge_config_with_their_own_knobs() -> None:
    rlaif = JudgeSection.from_dict({"name": "anthropic", "model": "m", "max_concurrency": 4})
    flywheel = FlywheelJudgeConfig.from_dict({"name": "anthropic", "model": "m", "criteria": ["c"]})
    assert isinstance(rlaif, JudgeConfig) and isinstance(flywheel, JudgeConfig)
    assert JudgeSpec.of(rlaif) == JudgeSpec.of(flywheel)  # one calibration serves both
    with pytest.raises(ConfigError, match="criteria"):
        JudgeSection.from_dict({"criteria": ["c"]})  # each pipeline's own knobs stay its own
    with pytest.raises(ConfigError, match="max_concurrency"):
        FlywheelJudgeConfig.from_dict({"max_concurrency": 2})


def test_sampling_sections_share_fields_and_keep_their_defaults() -> None:
    rlaif, flywheel = GenerationConfig(), ModelGeneratorConfig()
    assert isinstance(rlaif, SamplingConfig) and isinstance(flywheel, SamplingConfig)
    assert (rlaif.max_new_tokens, flywheel.max_new_tokens) == (24, 32)
    shared = ("temperature", "top_p", "batch_size")
    assert [getattr(rlaif, f) for f in shared] == [getattr(flywheel, f) for f in shared] == [1.0, 0.95, 8]
