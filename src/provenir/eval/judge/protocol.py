"""The :class:`LLMJudge` protocol: what RLAIF, the flywheel and the registry expect of a judge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from provenir.eval.judge.verdict import Preference, RubricResult


@runtime_checkable
class LLMJudge(Protocol):
    """Scores responses; structural typing, so any object with these two methods is a judge.

    Example::

        pref = judge.score_pairwise("What is LoRA?", response_a, response_b)
        # Preference(preferred='a', confidence=0.91, rationale='Response A is more precise...')
        scores = judge.score_rubric("What is LoRA?", response, criteria=["clarity", "conciseness"])
        # RubricResult: scores["clarity"] on the 1-10 scale

    Implementations raise :class:`provenir.core.errors.JudgeError` when they cannot produce a
    valid verdict; they never return a made-up one. For many pairs at once use
    :func:`provenir.eval.judge.score_pairwise_batch`, which works for any judge.
    """

    def score_pairwise(self, prompt: str, a: str, b: str) -> Preference:
        """Which of ``a`` and ``b`` answers ``prompt`` better."""
        ...

    def score_rubric(self, prompt: str, response: str, criteria: Sequence[str]) -> RubricResult:
        """Score ``response`` on each criterion, on the 1-10 scale."""
        ...
