"""JudgeConfig and build_judge: the judge a pipeline's config names, built the same way everywhere.

RLAIF (``judge:``), the flywheel (``filter.judge:``) and ``provenir judge calibrate`` all read a
:class:`JudgeConfig` (each pipeline's section adds only its own knobs) and build it with
:func:`build_judge`, so a calibration measures exactly the judge a pipeline would use.

::

    judge = build_judge(JudgeConfig(name="reward", reward="token_f1"), {"2+2?": "4"})
    judge.score_pairwise("2+2?", "5", "4").preferred   # 'b'
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from provenir.core.config import ConfigSection
from provenir.plugins.registry import PluginRegistry

__all__ = ["JudgeConfig", "build_judge"]


class JudgeConfig(ConfigSection):
    """Which judge decides: what a judge's verdicts depend on, plus the calibration it must have."""

    name: str = Field(
        "reward",
        min_length=1,
        description="Registered judge: reward (offline: a reward or metric against the reference) | stub | "
        "anthropic | openai | a plugin's judge.",
    )
    model: str | None = Field(None, description="Model id for API judges.")
    reward: str = Field(
        "token_f1",
        min_length=1,
        description="With name: reward, a registered reward or eval metric to score against the reference.",
    )
    base_url: str | None = Field(None, description="API base URL (API judges).")
    min_kappa: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="Refuse the judge unless its stored calibration (`provenir judge calibrate`) has "
        "Cohen's kappa against human labels at least this high.",
    )


def build_judge(config: JudgeConfig, references: Mapping[str, str], *, cache_dir: Path | None = None) -> Any:
    """The configured judge; ``references`` maps a prompt to the text a ``reward`` judge scores against.

    With ``cache_dir``, an API judge is wrapped in a :class:`~provenir.eval.judge.CachedJudge`
    there; a reward judge never is (it is cheaper than a cache read).
    """
    from provenir.eval.judge.cached import CachedJudge
    from provenir.eval.judge.reward_judge import RewardJudge

    if config.name == "reward":
        return RewardJudge(config.reward, references=dict(references))
    kwargs: dict[str, Any] = {}
    if config.model:
        kwargs["model"] = config.model
    if config.base_url:
        kwargs["base_url"] = config.base_url
    judge = PluginRegistry.create("judge", config.name, **kwargs)
    return CachedJudge(judge, cache_dir=cache_dir) if cache_dir is not None else judge
