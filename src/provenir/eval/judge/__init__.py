"""LLM-as-judge: pairwise preferences and rubric scores, remote or offline, cached, batched.

Judges (all implement :class:`LLMJudge` and are registered with kind ``"judge"``):

========================  ==========  =================================================
class                     registry    use
========================  ==========  =================================================
:class:`StubJudge`        ``stub``    deterministic, no network: CI and offline tests
:class:`CachedJudge`      ``cached``  SHA-256 disk cache in front of any judge
:class:`AnthropicJudge`   ``anthropic``  Claude via the official ``anthropic`` SDK
:class:`OpenAIJudge`      ``openai``  GPT via the official ``openai`` SDK
:class:`RewardJudge`      ``reward``  offline: reward primitives against a reference
========================  ==========  =================================================

Example::

    from provenir.eval.judge import AnthropicJudge, CachedJudge

    judge = CachedJudge(AnthropicJudge(model="claude-haiku-4-5-20251001"))
    pref = judge.score_pairwise("What is LoRA?", response_a, response_b)
    # Preference(preferred='a', confidence=0.91, rationale='Response A is more precise...')
    scores = judge.score_rubric("What is LoRA?", response, criteria=["factual accuracy", "clarity"])

Scales: ``Preference.confidence`` in [0, 1]; rubric scores 1-10 (:data:`RUBRIC_SCALE`).
Remote judges ask every pair in both orders (position-bias control, ``Preference.agreed``,
:func:`agreement_rate`) and raise :class:`~provenir.core.errors.JudgeError` rather than guess.

How far a judge agrees with human labels (kappas, length bias, length-controlled win rate):
:mod:`provenir.eval.judge.calibration`, or ``provenir judge calibrate``.

The SDKs are imported when a remote judge is constructed, never by ``import provenir``.
"""

from provenir.eval.judge.anthropic_judge import AnthropicJudge
from provenir.eval.judge.batch import score_pairwise_batch
from provenir.eval.judge.cached import CachedJudge, CacheStats, default_cache_dir
from provenir.eval.judge.openai_judge import OpenAIJudge
from provenir.eval.judge.parsing import VerdictParseError
from provenir.eval.judge.position import combine_orders
from provenir.eval.judge.protocol import LLMJudge
from provenir.eval.judge.remote import JudgeStats
from provenir.eval.judge.retry import RetryPolicy
from provenir.eval.judge.reward_judge import RewardJudge
from provenir.eval.judge.stub import StubJudge
from provenir.eval.judge.verdict import RUBRIC_SCALE, Preference, RubricResult, agreement_rate

__all__ = [
    "RUBRIC_SCALE",
    "AnthropicJudge",
    "CacheStats",
    "CachedJudge",
    "JudgeStats",
    "LLMJudge",
    "OpenAIJudge",
    "Preference",
    "RetryPolicy",
    "RewardJudge",
    "RubricResult",
    "StubJudge",
    "VerdictParseError",
    "agreement_rate",
    "combine_orders",
    "default_cache_dir",
    "score_pairwise_batch",
]
