"""Verdict types every judge returns: :class:`Preference` (pairwise) and :class:`RubricResult` (rubric).

Scales, fixed for every judge so results from different judges are comparable:

* ``Preference.preferred`` is ``'a'``, ``'b'`` or ``'tie'``; ``confidence`` is in [0, 1].
* Rubric scores are numbers on :data:`RUBRIC_SCALE` = (1, 10): 1 is very poor, 10 excellent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from provenir.core.errors import JudgeError

Choice = Literal["a", "b", "tie"]
CHOICES: tuple[Choice, ...] = ("a", "b", "tie")
RUBRIC_SCALE: tuple[float, float] = (1.0, 10.0)


@dataclass(frozen=True)
class Preference:
    """A pairwise verdict.

    Attributes:
        preferred: ``'a'``, ``'b'`` or ``'tie'`` (relative to the order the caller passed).
        confidence: how sure the judge is, in [0, 1].
        rationale: a short human-readable reason.
        agreed: with position-bias control, whether the verdicts in both presentation orders
            agreed; ``None`` when the judge did not ask twice (the verdict cannot be biased by
            order, or control was off). Not shown in ``repr`` so the seed's example prints as is.
    """

    preferred: Choice
    confidence: float
    rationale: str = ""
    agreed: bool | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.preferred not in CHOICES:
            raise JudgeError(f"preferred must be one of {CHOICES}, got {self.preferred!r}")
        if (
            isinstance(self.confidence, bool)
            or not isinstance(self.confidence, int | float)
            or not math.isfinite(self.confidence)
            or not 0.0 <= self.confidence <= 1.0
        ):
            raise JudgeError(f"confidence must be a number in [0, 1], got {self.confidence!r}")
        object.__setattr__(self, "confidence", float(self.confidence))

    def swapped(self) -> Preference:
        """The same verdict with the labels of ``a`` and ``b`` exchanged."""
        flip = {"a": "b", "b": "a", "tie": "tie"}
        return Preference(flip[self.preferred], self.confidence, self.rationale, self.agreed)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used by the cache)."""
        return {
            "preferred": self.preferred,
            "confidence": self.confidence,
            "rationale": self.rationale,
            "agreed": self.agreed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preference:
        """Inverse of :meth:`to_dict`; raises :class:`JudgeError` on an invalid mapping."""
        try:
            return cls(data["preferred"], data["confidence"], data.get("rationale", ""), data.get("agreed"))
        except (KeyError, TypeError) as exc:
            raise JudgeError(f"not a preference record: {exc}") from exc


@dataclass(frozen=True, eq=True)
class RubricResult(Mapping[str, float]):
    """Scores per criterion on :data:`RUBRIC_SCALE` (1-10), readable like a dict.

    Example::

        scores = judge.score_rubric("What is LoRA?", response, criteria=["clarity", "conciseness"])
        scores["clarity"]      # 7.0
        scores.mean            # average over criteria
        scores.normalized()    # {"clarity": 0.667, ...} mapped onto [0, 1]
    """

    scores: dict[str, float]
    rationales: dict[str, str] = field(default_factory=dict)
    scale: tuple[float, float] = RUBRIC_SCALE

    def __post_init__(self) -> None:
        lo, hi = self.scale
        for name, value in self.scores.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not lo <= value <= hi
            ):
                raise JudgeError(f"rubric score for {name!r} must be in [{lo:g}, {hi:g}], got {value!r}")
        object.__setattr__(self, "scores", {k: float(v) for k, v in self.scores.items()})

    def __getitem__(self, criterion: str) -> float:
        return self.scores[criterion]

    def __iter__(self) -> Iterator[str]:
        return iter(self.scores)

    def __len__(self) -> int:
        return len(self.scores)

    __hash__ = None  # type: ignore[assignment]  # holds dicts; equality yes, hashing no

    @property
    def mean(self) -> float:
        """Unweighted mean over criteria."""
        return sum(self.scores.values()) / len(self.scores) if self.scores else float("nan")

    def normalized(self) -> dict[str, float]:
        """Scores mapped linearly onto [0, 1] (1 -> 0.0, 10 -> 1.0)."""
        lo, hi = self.scale
        return {k: (v - lo) / (hi - lo) for k, v in self.scores.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used by the cache)."""
        return {"scores": dict(self.scores), "rationales": dict(self.rationales), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RubricResult:
        """Inverse of :meth:`to_dict`."""
        try:
            scale = tuple(data.get("scale", RUBRIC_SCALE))
            return cls(dict(data["scores"]), dict(data.get("rationales", {})), scale)
        except (KeyError, TypeError, ValueError) as exc:
            raise JudgeError(f"not a rubric record: {exc}") from exc


def agreement_rate(preferences: Iterable[Preference | BaseException]) -> float | None:
    """Share of position-bias-controlled verdicts whose two orders agreed; ``None`` if none was controlled."""
    flags = [p.agreed for p in preferences if isinstance(p, Preference) and p.agreed is not None]
    return sum(flags) / len(flags) if flags else None


def validate_criteria(criteria: Iterable[str]) -> list[str]:
    """Clean a criteria list: non-empty unique strings, or :class:`JudgeError`."""
    if isinstance(criteria, str):
        raise JudgeError("criteria must be a list of strings, not one string")
    items = list(criteria)
    cleaned = [c.strip() for c in items if isinstance(c, str)]
    if not items or len(cleaned) != len(items) or any(not c for c in cleaned):
        raise JudgeError("criteria must be a non-empty list of non-empty strings")
    if len({c.casefold() for c in cleaned}) != len(cleaned):
        raise JudgeError(f"criteria must be unique (case-insensitive): {cleaned}")
    return cleaned
