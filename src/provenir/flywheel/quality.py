"""The quality filter: exact and near duplicates, PII and secrets, then the judge's score.

Checks run cheapest first, so an API judge is only asked about variants that survived the
others. Every rejected candidate keeps its reason (``duplicate``, ``near_duplicate``, ``pii``,
``secret``, ``low_judge_score``, ``over_cap``) so the filter can be audited.

Near-duplicates: word n-gram Jaccard similarity after normalisation (casefold, punctuation
removed, whitespace collapsed). A text shorter than ``n`` words is one n-gram of all its
words, so short prompts still compare.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from provenir.flywheel.config import FilterConfig
from provenir.flywheel.judging import judge_prompt

__all__ = ["Candidate", "FilterOutcome", "QualityFilter", "jaccard", "ngrams", "normalise"]

_PUNCT = re.compile(r"[^\w\s]")


def normalise(text: str) -> str:
    """Casefolded, NFKC, punctuation removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


def ngrams(text: str, n: int) -> frozenset[tuple[str, ...]]:
    """Word n-grams of the normalised text (the whole text as one gram when shorter than ``n``)."""
    words = normalise(text).split()
    if len(words) < n:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset[Any], b: frozenset[Any]) -> float:
    """``|a & b| / |a | b|`` (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


@dataclass
class Candidate:
    """A generated variant of the failed item ``failure_index`` (before or after filtering)."""

    failure_index: int
    failure_key: str
    original: str
    generator: str
    text: str
    scores: dict[str, float] = field(default_factory=dict)
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (one line of ``candidates.jsonl`` / ``accepted.jsonl`` / ``rejected.jsonl``)."""
        out: dict[str, Any] = {
            "failure_index": self.failure_index,
            "failure_key": self.failure_key,
            "original": self.original,
            "generator": self.generator,
            "text": self.text,
        }
        if self.scores:
            out["scores"] = dict(self.scores)
        if self.reason is not None:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        """Inverse of :meth:`to_dict`."""
        return cls(
            failure_index=int(data["failure_index"]),
            failure_key=str(data["failure_key"]),
            original=str(data["original"]),
            generator=str(data["generator"]),
            text=str(data["text"]),
            scores=dict(data.get("scores") or {}),
            reason=data.get("reason"),
        )


@dataclass
class FilterOutcome:
    """Accepted and rejected candidates, and rejection counts by reason."""

    accepted: list[Candidate]
    rejected: list[Candidate]

    @property
    def reasons(self) -> dict[str, int]:
        """Rejected candidates per reason."""
        counts: dict[str, int] = {}
        for c in self.rejected:
            counts[c.reason or "?"] = counts.get(c.reason or "?", 0) + 1
        return dict(sorted(counts.items()))


class QualityFilter:
    """Apply :class:`FilterConfig` to candidates; ``judge`` is any :class:`LLMJudge`.

    ``judge=None`` skips the judge check (only the deterministic checks run). ``score_many``
    scores every variant that reached the judge in one call instead (``(judge prompt, variant)``
    items in, mean rubric scores out, in order): how the flywheel judges on a Ray cluster
    (:func:`provenir.scale.generation.judge_rubric`).
    """

    def __init__(
        self,
        config: FilterConfig,
        judge: Any = None,
        *,
        score_many: Callable[[list[tuple[str, str]]], list[float]] | None = None,
    ) -> None:
        self.config = config
        self.judge = judge
        self.score_many = score_many

    def apply(
        self, candidates: Sequence[Candidate], *, advance: Callable[[int], None] | None = None
    ) -> FilterOutcome:
        """Filter ``candidates`` (grouped by failure, in order); ``advance(k)`` reports progress."""
        cfg = self.config
        rejected: list[Candidate] = []
        kept: list[Candidate] = []
        # Duplicates are judged per failure: against the original and the variants kept so far.
        seen_text: dict[int, set[str]] = {}
        seen_grams: dict[int, list[frozenset[tuple[str, ...]]]] = {}
        for c in candidates:
            key = c.failure_index
            if key not in seen_text:
                seen_text[key] = {normalise(c.original)}
                seen_grams[key] = [ngrams(c.original, cfg.ngram)]
            norm = normalise(c.text)
            if not norm or norm in seen_text[key]:
                rejected.append(_reject(c, "duplicate"))
                continue
            grams = ngrams(c.text, cfg.ngram)
            similarity = max(jaccard(grams, g) for g in seen_grams[key])
            c.scores["max_similarity"] = round(similarity, 6)
            if similarity >= cfg.max_similarity:
                rejected.append(_reject(c, "near_duplicate"))
                continue
            seen_text[key].add(norm)
            seen_grams[key].append(grams)
            kept.append(c)
        if advance is not None:
            advance(len(candidates) - len(kept))
        kept = self._scan(kept, rejected, advance)
        accepted: list[Candidate] = []
        score = self._scorer(kept)
        for i, c in enumerate(kept):
            if score is not None:
                c.scores["judge"] = round(float(score(i, c)), 6)
                if c.scores["judge"] < cfg.min_judge_score:
                    rejected.append(_reject(c, "low_judge_score"))
                    if advance is not None:
                        advance(1)
                    continue
            accepted.append(c)
            if advance is not None:
                advance(1)
        if cfg.max_accepted_per_failure is not None:
            accepted = self._cap(accepted, rejected, cfg.max_accepted_per_failure)
        return FilterOutcome(accepted, rejected)

    def _scorer(self, kept: list[Candidate]) -> Callable[[int, Candidate], float] | None:
        """The judge's score of the ``i``-th variant to judge; None when nothing judges."""
        if self.score_many is not None:
            scores = self.score_many([(judge_prompt(c.original), c.text) for c in kept]) if kept else []
            return lambda i, _c: scores[i]
        judge = self.judge
        if judge is None:
            return None
        criteria = list(self.config.judge.criteria)
        # One call per variant, as the loop reaches it: progress moves with an API judge.
        return lambda _i, c: judge.score_rubric(judge_prompt(c.original), c.text, criteria).mean

    def _scan(
        self, kept: list[Candidate], rejected: list[Candidate], advance: Callable[[int], None] | None
    ) -> list[Candidate]:
        cfg = self.config
        if not (cfg.scan_pii or cfg.scan_secrets) or not kept:
            return kept
        from provenir.governance.scanners import scan_dataset

        summary = scan_dataset([{"text": c.text} for c in kept], pii=cfg.scan_pii, secrets=cfg.scan_secrets)
        secret_rows = {f.row for f in summary.secrets.findings} if summary.secrets else set()
        pii_rows = {f.row for f in summary.pii.findings} if summary.pii else set()
        clean = []
        for i, c in enumerate(kept):
            # Secrets first: a credential is the worse leak, and the reason should say so.
            reason = "secret" if i in secret_rows else "pii" if i in pii_rows else None
            if reason is None:
                clean.append(c)
            else:
                rejected.append(_reject(c, reason))
        if advance is not None:
            advance(len(kept) - len(clean))
        return clean

    @staticmethod
    def _cap(accepted: list[Candidate], rejected: list[Candidate], cap: int) -> list[Candidate]:
        by_failure: dict[int, list[Candidate]] = {}
        for c in accepted:
            by_failure.setdefault(c.failure_index, []).append(c)
        keep: set[int] = set()
        for group in by_failure.values():
            ranked = sorted(group, key=lambda c: -c.scores.get("judge", 0.0))  # stable: ties keep order
            keep.update(id(c) for c in ranked[:cap])
        out = []
        for c in accepted:
            if id(c) in keep:
                out.append(c)
            else:
                rejected.append(_reject(c, "over_cap"))
        return out


def _reject(c: Candidate, reason: str) -> Candidate:
    c.reason = reason
    return c
