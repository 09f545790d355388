"""RewardJudge: an offline judge built from reward functions, so RLAIF runs with no API at all."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

from provenir.core.errors import JudgeError, ProvenirError
from provenir.eval.judge.batch import pairwise_batch_method
from provenir.eval.judge.verdict import RUBRIC_SCALE, Preference, RubricResult, validate_criteria
from provenir.plugins.registry import PluginRegistry

References = Mapping[str, str] | Callable[[str], str | None]


class _Scorer(Protocol):
    # Structural: any reward with score(prediction, reference) fits; eval does not import rewards.
    def score(self, prediction: str, reference: str | None = None) -> float: ...


class RewardJudge:
    """Judge by scoring each response with a reward against the prompt's reference.

    Args:
        reward: any object with ``score(prediction, reference) -> float`` (e.g. a
            :mod:`provenir.rewards.primitives` reward), or a registered reward name
            (``"exact_match"``).
        references: prompt -> reference answer, as a mapping or a function; ``None`` for
            reference-free rewards (format checks). A ``reference=`` argument overrides it.
        tie_margin: reward differences up to this size count as a tie.
        criterion_rewards: for :meth:`score_rubric`, a reward per criterion name; criteria not
            listed use ``reward``.

    Pairwise: higher reward wins; ``confidence = min(1, |r_a - r_b|)``; an exact tie has
    confidence 1.0 (the rewards are certainly equal). The verdict cannot depend on order, so
    ``agreed`` is ``None``. Rubric: a reward ``r`` (clamped to [0, 1]) maps to ``1 + 9 r`` on the
    1-10 scale.

    Example (offline RLAIF)::

        judge = RewardJudge("exact_match", references={"2+2?": "4"})
        judge.score_pairwise("2+2?", "4", "5")    # Preference(preferred='a', confidence=1.0, ...)
    """

    model = "reward"

    def __init__(
        self,
        reward: _Scorer | str,
        references: References | None = None,
        *,
        tie_margin: float = 0.0,
        criterion_rewards: Mapping[str, _Scorer] | None = None,
    ) -> None:
        if isinstance(reward, str):
            reward = resolve_reward(reward)
        if not callable(getattr(reward, "score", None)):
            raise JudgeError(f"RewardJudge needs a reward with score(prediction, reference), got {reward!r}")
        if tie_margin < 0:
            raise JudgeError(f"tie_margin must be >= 0, got {tie_margin}")
        self.reward = reward
        self.references = references
        self.tie_margin = tie_margin
        self.criterion_rewards = {k.casefold(): v for k, v in (criterion_rewards or {}).items()}

    def score_pairwise(self, prompt: str, a: str, b: str, *, reference: str | None = None) -> Preference:
        """Higher reward against the reference wins."""
        ref = self._reference(prompt, reference)
        ra, rb = self._score(self.reward, a, ref), self._score(self.reward, b, ref)
        gap = ra - rb
        if abs(gap) <= self.tie_margin:
            return Preference("tie", 1.0, f"Equal reward ({ra:.3g} vs {rb:.3g}).")
        winner: Literal["a", "b"] = "a" if gap > 0 else "b"
        return Preference(
            winner,
            min(1.0, abs(gap)),
            f"Response {winner.upper()} has the higher reward ({max(ra, rb):.3g} vs {min(ra, rb):.3g}).",
        )

    def score_rubric(
        self, prompt: str, response: str, criteria: Sequence[str], *, reference: str | None = None
    ) -> RubricResult:
        """Each criterion scored by its reward (or the default one), mapped onto 1-10."""
        cleaned = validate_criteria(criteria)
        ref = self._reference(prompt, reference)
        lo, hi = RUBRIC_SCALE
        scores, why = {}, {}
        for c in cleaned:
            reward = self.criterion_rewards.get(c.casefold(), self.reward)
            r = min(1.0, max(0.0, self._score(reward, response, ref)))
            scores[c] = lo + (hi - lo) * r
            why[c] = f"reward {type(reward).__name__} = {r:.3g}"
        return RubricResult(scores, why)

    score_pairwise_batch = pairwise_batch_method

    def cache_identity(self) -> dict[str, Any]:
        """Identity for CachedJudge (rarely worth caching: rewards are cheap)."""
        return {"judge": "RewardJudge", "reward": repr(self.reward), "tie_margin": self.tie_margin}

    def __repr__(self) -> str:
        return f"RewardJudge({self.reward!r})"

    def _reference(self, prompt: str, explicit: str | None) -> str | None:
        if not isinstance(prompt, str):
            raise JudgeError(f"prompt must be a string, got {type(prompt).__name__}")
        if explicit is not None:
            return explicit
        if self.references is None:
            return None
        if isinstance(self.references, Mapping):
            return self.references.get(prompt)
        return self.references(prompt)

    @staticmethod
    def _score(reward: _Scorer, response: str, reference: str | None) -> float:
        if not isinstance(response, str):
            raise JudgeError(f"response must be a string, got {type(response).__name__}")
        try:
            value = float(reward.score(response, reference))
        except ProvenirError as exc:
            raise JudgeError(f"reward {type(reward).__name__} failed: {exc}") from exc
        if not math.isfinite(value):
            raise JudgeError(f"reward {type(reward).__name__} returned {value}")
        return value


class MetricReward:
    """An evaluation metric (e.g. ``token_f1``) as a reward: the item score of one prediction.

    Lets a :class:`RewardJudge` rank responses with exactly the numbers the evaluation layer reports.
    """

    needs_reference = True

    def __init__(self, metric: str) -> None:
        self.metric = PluginRegistry.create("metric", metric)

    def score(self, prediction: str, reference: str | None = None) -> float:
        """The metric of ``prediction`` against the single reference ``reference``."""
        return float(self.metric.compute([prediction], [[reference or ""]]).scores[0])


def resolve_reward(name: str) -> _Scorer:
    """A registered reward by name, else a registered evaluation metric wrapped as one."""
    if name in PluginRegistry.list_names("reward"):
        return PluginRegistry.create("reward", name)
    if name in PluginRegistry.list_names("metric"):
        return MetricReward(name)
    raise JudgeError(
        f"unknown reward {name!r}: not a registered reward ({', '.join(PluginRegistry.list_names('reward'))}) "
        f"or metric ({', '.join(PluginRegistry.list_names('metric'))})"
    )
