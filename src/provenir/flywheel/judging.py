"""The judge that scores a variant as a faithful rewording of its original prompt.

Each variant is scored with ``judge.score_rubric(judge_prompt(original), variant, criteria)``,
so any :class:`~provenir.eval.judge.LLMJudge` works unchanged. The offline default is a
:class:`~provenir.eval.judge.RewardJudge` whose reference for that judge prompt is the original
prompt itself: a metric such as ``token_f1`` then measures how much of the original's content
the variant kept (1 = nothing, 10 = everything), which drops variants that drifted away.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from provenir.eval.judge.config import build_judge as build_configured_judge
from provenir.flywheel.config import FlywheelJudgeConfig

__all__ = ["build_judge", "judge_prompt"]

#: What an API judge is shown as the "prompt" of the response it scores (the variant).
JUDGE_PROMPT = (
    "Rewrite the following request in different words. The rewrite must ask for exactly the same "
    "thing, so that the same answer stays correct.\nOriginal: {original}"
)


def judge_prompt(original: str) -> str:
    """The rubric prompt under which a variant of ``original`` is scored."""
    return JUDGE_PROMPT.format(original=original)


def build_judge(config: FlywheelJudgeConfig, originals: Iterable[str]) -> Any:
    """The configured judge (never cached); for ``reward`` it knows the original behind each judge prompt."""
    return build_configured_judge(config, {judge_prompt(o): o for o in originals})
