"""Building the pipeline's judge from its config (offline by default)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provenir.plugins.registry import PluginRegistry
from provenir.rlaif.config import JudgeSection


class MetricReward:
    """An evaluation metric (e.g. ``token_f1``) scoring one prediction against one reference.

    Lets the offline :class:`~provenir.eval.judge.RewardJudge` rank candidates with exactly the
    numbers the evaluation layer reports.
    """

    needs_reference = True

    def __init__(self, metric: str) -> None:
        self.metric = PluginRegistry.create("metric", metric)

    def score(self, prediction: str, reference: str | None = None) -> float:
        """The metric's item score of ``prediction`` against ``reference``."""
        return float(self.metric.compute([prediction], [[reference or ""]]).scores[0])


def build_judge(section: JudgeSection, references: Mapping[str, str], cache_dir: Path) -> Any:
    """The configured judge, wrapped in a disk cache when ``cache`` is on."""
    from provenir.eval.judge import CachedJudge, RewardJudge

    if section.name == "reward":
        names = PluginRegistry.list_names("reward")
        reward: Any = section.reward if section.reward in names else MetricReward(section.reward)
        judge: Any = RewardJudge(reward, references=dict(references))
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
