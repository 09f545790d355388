"""Building the pipeline's judge from its config (offline by default)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provenir.plugins.registry import PluginRegistry
from provenir.rlaif.config import JudgeSection


def build_judge(section: JudgeSection, references: Mapping[str, str], cache_dir: Path) -> Any:
    """The configured judge, wrapped in a disk cache when ``cache`` is on."""
    from provenir.eval.judge import CachedJudge, RewardJudge

    if section.name == "reward":
        judge: Any = RewardJudge(section.reward, references=dict(references))
    else:
        kwargs: dict[str, Any] = {}
        if section.model:
            kwargs["model"] = section.model
        if section.base_url:
            kwargs["base_url"] = section.base_url
        judge = PluginRegistry.create("judge", section.name, **kwargs)
    if section.cache and section.name != "reward":
        # A reward judge is cheaper than a cache read; API judges are not.
        judge = CachedJudge(judge, cache_dir=cache_dir)
    return judge
