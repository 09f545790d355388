"""A deterministic judge with no network, for CI and offline tests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Literal

from provenir.core.errors import JudgeError
from provenir.eval.judge.batch import pairwise_batch_method
from provenir.eval.judge.verdict import Preference, RubricResult, validate_criteria


class StubJudge:
    """Deterministic verdicts from the text alone: same inputs, same verdict, on every machine.

    Pairwise: the response with more words wins (a crude 'more complete' proxy); equal word
    counts tie. Confidence grows with the length gap: ``0.5 + 0.5 * |la - lb| / max(la, lb)``.
    The rule ignores order, so swapping ``a`` and ``b`` swaps the verdict.

    Rubric: each score is ``1 + (SHA-256(criterion, response) mod 10)`` on the 1-10 scale:
    stable and spread out, and meaningless on purpose. Use it to test plumbing, not quality.
    """

    model = "stub"

    def score_pairwise(self, prompt: str, a: str, b: str) -> Preference:
        """Longer response wins; equal length ties."""
        for name, value in (("prompt", prompt), ("a", a), ("b", b)):
            if not isinstance(value, str):
                raise JudgeError(f"{name} must be a string, got {type(value).__name__}")
        la, lb = len(a.split()), len(b.split())
        if la == lb:
            return Preference("tie", 0.5, f"Both responses have {la} words.")
        winner: Literal["a", "b"] = "a" if la > lb else "b"
        confidence = 0.5 + 0.5 * abs(la - lb) / max(la, lb)
        return Preference(
            winner,
            round(confidence, 6),
            f"Response {winner.upper()} is longer ({max(la, lb)} vs {min(la, lb)} words).",
        )

    def score_rubric(self, prompt: str, response: str, criteria: Sequence[str]) -> RubricResult:
        """Hash-derived 1-10 score per criterion."""
        if not isinstance(response, str):
            raise JudgeError(f"response must be a string, got {type(response).__name__}")
        cleaned = validate_criteria(criteria)
        scores = {c: float(1 + hashlib.sha256(f"{c}\0{response}".encode()).digest()[0] % 10) for c in cleaned}
        return RubricResult(scores, {c: "stub score (hash of criterion and response)" for c in cleaned})

    score_pairwise_batch = pairwise_batch_method

    def cache_identity(self) -> dict[str, Any]:
        """Cache-key identity (the rules above are versioned by this name)."""
        return {"judge": "StubJudge", "rules": "length-v1/hash-v1"}

    def __repr__(self) -> str:
        return "StubJudge()"
