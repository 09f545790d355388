"""Reward primitives for GRPO / RLHF: small scorers and the combinators that compose them.

Every reward implements :class:`Reward`: ``score(prediction, reference=None) -> float``.
Leaves score in [0, 1]; combinators can leave that range (a weighted sum with weights above 1)
and :class:`ClampedReward` brings them back. A reward that cannot score (no reference where one
is needed, a non-string prediction, a non-finite component) raises
:class:`~provenir.core.errors.EvaluationError`; a bad construction raises
:class:`~provenir.core.errors.ConfigError`.

Example::

    from provenir.rewards.primitives import WeightedSumReward, ExactMatchReward, FormatReward

    reward = WeightedSumReward(rewards=[
        (ExactMatchReward(), 0.7),
        (FormatReward(pattern=r"^\\[.*\\]$"), 0.3),
    ])
    score = reward.score(prediction, reference)

For TRL's GRPOTrainer, :func:`as_grpo_reward_func` turns any reward into a batch reward function.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from provenir.core.answers import normalize_answer
from provenir.core.errors import ConfigError, EvaluationError
from provenir.plugins.registry import PluginRegistry


@runtime_checkable
class Reward(Protocol):
    """Scores one prediction, optionally against a reference."""

    def score(self, prediction: str, reference: str | None = None) -> float:
        """The reward for ``prediction``."""
        ...


def needs_reference(reward: Any) -> bool:
    """Whether ``reward`` cannot score without a reference (its ``needs_reference`` attribute)."""
    return bool(getattr(reward, "needs_reference", False))


def _check_prediction(prediction: Any, who: str) -> str:
    if not isinstance(prediction, str):
        raise EvaluationError(f"{who}: prediction must be a string, got {type(prediction).__name__}")
    return prediction


def _component(reward: Any, prediction: str, reference: str | None) -> float:
    value = reward.score(prediction, reference)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EvaluationError(f"{type(reward).__name__} returned {value!r}; a reward must be a finite number")
    return float(value)


def _check_rewards(rewards: Any, who: str) -> list[Any]:
    items = list(rewards)
    if not items:
        raise ConfigError(f"{who} needs at least one reward")
    for r in items:
        if not callable(getattr(r, "score", None)):
            raise ConfigError(f"{who}: {r!r} is not a reward (needs score(prediction, reference))")
    return items


# ------------------------------------------------------------------------- leaves


def _check_reference(reference: Any, who: str) -> str:
    if reference is None:
        raise EvaluationError(f"{who} needs a reference (for GRPO: a 'reference' dataset column)")
    if not isinstance(reference, str):
        raise EvaluationError(f"{who}: reference must be a string, got {type(reference).__name__}")
    return reference


class NormalizedExactMatchReward:
    """1.0 if the SQuAD-normalised prediction equals the normalised reference, else 0.0.

    The same normalisation as the ``exact_match`` metric (:func:`provenir.core.answers.normalize_answer`:
    lowercase, no punctuation, no a/an/the, single spaces), so GRPO is rewarded for exactly the
    match it is evaluated on. For a literal comparison use ``exact_match_strict``
    (:class:`ExactMatchReward`).

    Example::

        NormalizedExactMatchReward().score("The Eiffel Tower!", "eiffel tower")  # 1.0
    """

    name = "exact_match"
    needs_reference = True

    def score(self, prediction: str, reference: str | None = None) -> float:
        """1.0 on a normalised match, 0.0 otherwise."""
        _check_prediction(prediction, "NormalizedExactMatchReward")
        reference = _check_reference(reference, "NormalizedExactMatchReward")
        return 1.0 if normalize_answer(prediction) == normalize_answer(reference) else 0.0

    def __repr__(self) -> str:
        return "NormalizedExactMatchReward()"


class ExactMatchReward:
    """1.0 if the prediction equals the reference literally (case included), else 0.0.

    Registered as ``exact_match_strict``: stricter than the ``exact_match`` metric, which
    normalises case, punctuation and articles (the ``exact_match`` reward,
    :class:`NormalizedExactMatchReward`, matches the metric).

    Args:
        strip: ignore leading/trailing whitespace (model outputs often end in a newline).
        case_sensitive: compare case exactly.
        normalize_whitespace: collapse internal runs of whitespace to one space.
    """

    name = "exact_match_strict"
    needs_reference = True

    def __init__(
        self, *, strip: bool = True, case_sensitive: bool = True, normalize_whitespace: bool = False
    ) -> None:
        self.strip = strip
        self.case_sensitive = case_sensitive
        self.normalize_whitespace = normalize_whitespace

    def _norm(self, text: str) -> str:
        if self.normalize_whitespace:
            text = " ".join(text.split())
        elif self.strip:
            text = text.strip()
        return text if self.case_sensitive else text.casefold()

    def score(self, prediction: str, reference: str | None = None) -> float:
        """1.0 on a match, 0.0 otherwise."""
        _check_prediction(prediction, "ExactMatchReward")
        reference = _check_reference(reference, "ExactMatchReward")
        return 1.0 if self._norm(prediction) == self._norm(reference) else 0.0

    def __repr__(self) -> str:
        return (
            f"ExactMatchReward(strip={self.strip}, case_sensitive={self.case_sensitive}, "
            f"normalize_whitespace={self.normalize_whitespace})"
        )


FormatMode = Literal["regex", "json", "code_block"]
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[ \t]*\n(.*?)```", re.DOTALL)


class FormatReward:
    """1.0 if the prediction has the required structure, else 0.0. No reference needed.

    Modes:
        ``regex`` (the default when ``pattern`` is given): ``re.search(pattern, prediction)``
            with ``re.DOTALL`` so ``.`` spans lines; anchor with ``^``/``$`` for a full match.
        ``json``: the prediction parses as JSON; with ``allow_fenced`` a single ```json fenced
            block also counts; ``required_keys`` demands a top-level object with those keys.
        ``code_block``: the prediction contains a fenced code block, of ``language`` if given;
            with ``pattern`` the block's body must also match it.

    Args:
        pattern: regular expression (regex mode, or a body constraint in code_block mode).
        mode: one of the modes above; inferred as ``regex`` if only ``pattern`` is given.
        strip: strip surrounding whitespace before checking.
        flags: extra ``re`` flags, OR-ed with ``re.DOTALL``.
    """

    needs_reference = False

    def __init__(
        self,
        pattern: str | None = None,
        *,
        mode: FormatMode | None = None,
        required_keys: Sequence[str] = (),
        language: str | None = None,
        allow_fenced: bool = True,
        strip: bool = True,
        flags: int = 0,
    ) -> None:
        resolved = mode or ("regex" if pattern is not None else None)
        if resolved not in ("regex", "json", "code_block"):
            raise ConfigError(
                "FormatReward needs pattern= (regex mode) or mode='json' / 'code_block'"
                if resolved is None
                else f"FormatReward: unknown mode {resolved!r}; use 'regex', 'json' or 'code_block'"
            )
        if resolved == "regex" and pattern is None:
            raise ConfigError("FormatReward(mode='regex') needs pattern=")
        if required_keys and resolved != "json":
            raise ConfigError("FormatReward: required_keys only applies to mode='json'")
        try:
            self._regex = re.compile(pattern, re.DOTALL | flags) if pattern is not None else None
        except re.error as exc:
            raise ConfigError(f"FormatReward: invalid regular expression {pattern!r}: {exc}") from exc
        self.pattern = pattern
        self.mode: FormatMode = resolved
        self.required_keys = tuple(required_keys)
        self.language = language.lower() if language else None
        self.allow_fenced = allow_fenced
        self.strip = strip

    def score(self, prediction: str, reference: str | None = None) -> float:
        """1.0 if the format holds, 0.0 otherwise; ``reference`` is ignored."""
        text = _check_prediction(prediction, "FormatReward")
        if self.strip:
            text = text.strip()
        if self.mode == "regex":
            assert self._regex is not None
            return 1.0 if self._regex.search(text) else 0.0
        if self.mode == "json":
            return 1.0 if self._json_ok(text) else 0.0
        return 1.0 if self._code_block_ok(text) else 0.0

    def _json_ok(self, text: str) -> bool:
        candidates = [text]
        if self.allow_fenced:
            blocks = _FENCE.findall(text)
            if len(blocks) == 1 and blocks[0][0].lower() in ("", "json"):
                candidates.append(blocks[0][1])
        for candidate in candidates:
            try:
                value = json.loads(candidate)
            except ValueError:
                continue
            if not self.required_keys:
                return True
            return isinstance(value, dict) and all(k in value for k in self.required_keys)
        return False

    def _code_block_ok(self, text: str) -> bool:
        for language, body in _FENCE.findall(text):
            if self.language and language.lower() != self.language:
                continue
            if self._regex is not None and not self._regex.search(body):
                continue
            return True
        return False

    def __repr__(self) -> str:
        parts = [f"mode={self.mode!r}"]
        if self.pattern is not None:
            parts.insert(0, f"pattern={self.pattern!r}")
        if self.required_keys:
            parts.append(f"required_keys={list(self.required_keys)!r}")
        if self.language:
            parts.append(f"language={self.language!r}")
        return f"FormatReward({', '.join(parts)})"


# -------------------------------------------------------------------- combinators


class WeightedSumReward:
    """``sum(weight * reward.score(...))`` over ``(reward, weight)`` pairs.

    Args:
        rewards: ``[(reward, weight), ...]``; weights must be finite (negative ones penalise).
        normalize: divide by the sum of absolute weights, keeping [0, 1] leaves in [0, 1].
    """

    def __init__(self, rewards: Sequence[tuple[Reward, float]], *, normalize: bool = False) -> None:
        pairs = list(rewards)
        for pair in pairs:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise ConfigError(f"WeightedSumReward: expected (reward, weight) pairs, got {pair!r}")
            weight = pair[1]
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
                raise ConfigError(f"WeightedSumReward: weight must be a finite number, got {weight!r}")
        _check_rewards([r for r, _ in pairs], "WeightedSumReward")
        total = sum(abs(w) for _, w in pairs)
        if normalize and total == 0:
            raise ConfigError("WeightedSumReward(normalize=True): weights sum to zero")
        self.rewards = [(r, float(w)) for r, w in pairs]
        self.normalize = normalize
        self._scale = 1.0 / total if normalize else 1.0
        self.needs_reference = any(needs_reference(r) for r, _ in self.rewards)

    def score(self, prediction: str, reference: str | None = None) -> float:
        """The weighted sum (normalised if configured)."""
        return self._scale * sum(w * _component(r, prediction, reference) for r, w in self.rewards)

    def __repr__(self) -> str:
        return f"WeightedSumReward(rewards={self.rewards!r}, normalize={self.normalize})"


class _Extremum:
    _use_max = False

    def __init__(self, rewards: Sequence[Reward]) -> None:
        self.rewards = _check_rewards(rewards, type(self).__name__)
        self.needs_reference = any(needs_reference(r) for r in self.rewards)

    def score(self, prediction: str, reference: str | None = None) -> float:
        scores = [_component(r, prediction, reference) for r in self.rewards]
        return max(scores) if self._use_max else min(scores)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rewards={self.rewards!r})"


class MinReward(_Extremum):
    """The lowest component score: every criterion must hold for a high reward."""


class MaxReward(_Extremum):
    """The highest component score: any one satisfied criterion is enough."""

    _use_max = True


class ThresholdGatedReward:
    """``reward`` when every gate passes, else ``floor`` (0.0 by default).

    Args:
        reward: the reward paid when the gates pass.
        gates: ``[(gate_reward, threshold), ...]``; the gate passes if its score >= threshold.
        threshold: optionally gate ``reward`` on itself too (scores below it pay ``floor``).
        floor: the value paid when a gate fails.

    Example: pay exact match only on well-formed JSON::

        ThresholdGatedReward(ExactMatchReward(), gates=[(FormatReward(mode="json"), 1.0)])
    """

    def __init__(
        self,
        reward: Reward,
        gates: Sequence[tuple[Reward, float]] = (),
        *,
        threshold: float | None = None,
        floor: float = 0.0,
    ) -> None:
        _check_rewards([reward], "ThresholdGatedReward")
        gate_list = list(gates)
        for gate in gate_list:
            if not isinstance(gate, tuple | list) or len(gate) != 2 or not isinstance(gate[1], int | float):
                raise ConfigError(f"ThresholdGatedReward: expected (reward, threshold) gates, got {gate!r}")
        if gate_list:
            _check_rewards([g for g, _ in gate_list], "ThresholdGatedReward")
        if not gate_list and threshold is None:
            raise ConfigError("ThresholdGatedReward needs gates=[(reward, threshold), ...] or threshold=")
        self.reward = reward
        self.gates = [(g, float(t)) for g, t in gate_list]
        self.threshold = threshold
        self.floor = float(floor)
        self.needs_reference = needs_reference(reward) or any(needs_reference(g) for g, _ in self.gates)

    def score(self, prediction: str, reference: str | None = None) -> float:
        """``floor`` if any gate is below its threshold, else the wrapped reward."""
        for gate, threshold in self.gates:
            if _component(gate, prediction, reference) < threshold:
                return self.floor
        value = _component(self.reward, prediction, reference)
        if self.threshold is not None and value < self.threshold:
            return self.floor
        return value

    def __repr__(self) -> str:
        return (
            f"ThresholdGatedReward({self.reward!r}, gates={self.gates!r}, threshold={self.threshold!r}, "
            f"floor={self.floor!r})"
        )


class ClampedReward:
    """The wrapped reward clamped to ``[low, high]`` (default [0, 1])."""

    def __init__(self, reward: Reward, low: float = 0.0, high: float = 1.0) -> None:
        _check_rewards([reward], "ClampedReward")
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ConfigError(f"ClampedReward: need finite low <= high, got [{low}, {high}]")
        self.reward = reward
        self.low = float(low)
        self.high = float(high)
        self.needs_reference = needs_reference(reward)

    def score(self, prediction: str, reference: str | None = None) -> float:
        """``min(high, max(low, reward))``."""
        return min(self.high, max(self.low, _component(self.reward, prediction, reference)))

    def __repr__(self) -> str:
        return f"ClampedReward({self.reward!r}, low={self.low}, high={self.high})"


# ------------------------------------------------------------------ TRL GRPO adapter


def completion_text(completion: Any) -> str:
    """The text of one GRPO completion: a string, or a chat message list (last assistant turn).

    Message content may itself be a string or a list of parts (``{"type": "text", "text": ...}``).
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, Mapping)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"] or messages
        if assistant:
            content = assistant[-1].get("content", "")
            if isinstance(content, str):
                return content
            if isinstance(content, Sequence):
                return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    raise EvaluationError(
        f"cannot read a completion of type {type(completion).__name__}; "
        "expected a string or a list of chat messages"
    )


class GRPORewardFunction:
    """A reward as a TRL ``GRPOTrainer`` reward function (batch signature).

    TRL calls ``reward(prompts=..., completions=..., completion_ids=..., **columns)`` where
    every other dataset column arrives as a list aligned with ``completions`` (plus
    ``trainer_state`` and logging hooks). The reference is read from ``reference_column``.
    Picklable and named (``__name__``), as TRL logs rewards under the function's name.
    """

    def __init__(
        self, reward: Reward, *, reference_column: str | None = "reference", name: str | None = None
    ) -> None:
        if not callable(getattr(reward, "score", None)):
            raise ConfigError(f"as_grpo_reward_func needs a reward with score(), got {reward!r}")
        self.reward = reward
        self.reference_column = reference_column
        self.__name__ = name or _default_name(reward)

    def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None, **kwargs: Any
    ) -> list[float]:
        if completions is None:
            raise EvaluationError(f"{self.__name__}: called without completions")
        n = len(completions)
        references: Sequence[Any] = [None] * n
        if self.reference_column is not None and self.reference_column in kwargs:
            references = kwargs[self.reference_column]
            if len(references) != n:
                raise EvaluationError(
                    f"{self.__name__}: {len(references)} values in column "
                    f"{self.reference_column!r} for {n} completions"
                )
        elif needs_reference(self.reward):
            columns = sorted(
                k
                for k in kwargs
                if k not in ("trainer_state", "log_extra", "log_metric", "completion_ids", "environments")
            )
            raise EvaluationError(
                f"{self.__name__}: the reward needs references but the batch has no "
                f"{self.reference_column!r} column (columns: {columns or 'none'})"
            )
        return [
            _component(self.reward, completion_text(c), None if r is None else str(r))
            for c, r in zip(completions, references, strict=True)
        ]

    def __repr__(self) -> str:
        return f"GRPORewardFunction({self.reward!r}, reference_column={self.reference_column!r})"


def as_grpo_reward_func(
    reward: Reward | str,
    *,
    reference_column: str | None = "reference",
    name: str | None = None,
    **reward_kwargs: Any,
) -> GRPORewardFunction:
    """Adapt a reward (or a registered reward name) to TRL's GRPO batch reward signature.

    Example::

        from provenir.rewards.primitives import ExactMatchReward, as_grpo_reward_func

        trainer = GRPOTrainer(..., reward_funcs=[as_grpo_reward_func(ExactMatchReward()),
                                                 as_grpo_reward_func("format", mode="json")])
    """
    if isinstance(reward, str):
        resolved: Reward = PluginRegistry.create("reward", reward, **reward_kwargs)
    elif reward_kwargs:
        raise ConfigError("reward keyword arguments apply only when the reward is given by name")
    else:
        resolved = reward
    return GRPORewardFunction(resolved, reference_column=reference_column, name=name)


def _default_name(reward: Any) -> str:
    # A leaf that names itself (like a metric's ``name``) is logged under its registry name.
    own = getattr(type(reward), "name", None)
    if isinstance(own, str) and own:
        return own
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", type(reward).__name__).lower()
    return snake.removesuffix("_reward") or "reward"
