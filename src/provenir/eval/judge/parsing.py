"""Turn a model's reply into a validated verdict, or say precisely why it cannot.

Structured replies (a tool call's input, a JSON-schema response) go straight to validation.
Text replies are searched tolerantly for a JSON object: a bare object, one inside a code fence,
or one embedded in prose. Nothing is ever guessed from prose alone ("A is better" is not a
verdict): a reply without a valid JSON verdict raises :class:`VerdictParseError`, which the
remote judges retry and finally report as :class:`~provenir.core.errors.JudgeError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from provenir.core.credentials import redact_credentials
from provenir.core.errors import JudgeError
from provenir.eval.judge.verdict import CHOICES, RUBRIC_SCALE, Preference, RubricResult

_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


class VerdictParseError(JudgeError):
    """A reply held no valid verdict (no JSON, broken JSON, or JSON outside the schema)."""


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object found in ``text``: fenced blocks first, then the text itself, then
    objects embedded in prose (found by decoding from each ``{``)."""
    found: list[dict[str, Any]] = []
    candidates = [m.group(1).strip() for m in _FENCE.finditer(text)] + [text.strip()]
    for candidate in candidates:
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            found.append(obj)
    start = text.find("{")
    while start != -1:
        try:
            obj, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        start = text.find("{", end)
    return found


def pairwise_from_data(data: Any) -> Preference:
    """Validate a decoded pairwise verdict (``preferred``, ``confidence``, ``rationale``)."""
    if not isinstance(data, Mapping):
        raise VerdictParseError(f"verdict must be a JSON object, got {type(data).__name__}")
    preferred = data.get("preferred")
    if isinstance(preferred, str):
        # Models write "A", "Tie", " b ": the meaning is unambiguous, so accept it.
        preferred = preferred.strip().lower()
    if preferred not in CHOICES:
        raise VerdictParseError(f"'preferred' must be one of {list(CHOICES)}, got {data.get('preferred')!r}")
    confidence = data.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        raise VerdictParseError(f"'confidence' must be a number in [0, 1], got {confidence!r}")
    rationale = data.get("rationale", "")
    if not isinstance(rationale, str):
        raise VerdictParseError(f"'rationale' must be a string, got {type(rationale).__name__}")
    return Preference(preferred, float(confidence), rationale.strip())


def rubric_from_data(data: Any, criteria: Sequence[str]) -> RubricResult:
    """Validate a decoded rubric verdict against the criteria that were asked for.

    Accepts ``{"scores": [{"criterion", "score", "rationale"}, ...]}`` (the requested form) and
    ``{"scores": {criterion: score}}``; criterion names match case-insensitively; every asked
    criterion must be scored, extra ones are dropped.
    """
    if not isinstance(data, Mapping) or "scores" not in data:
        raise VerdictParseError("rubric verdict must be a JSON object with a 'scores' field")
    raw = data["scores"]
    entries: list[tuple[Any, Any, Any]]
    if isinstance(raw, Mapping):
        entries = [(k, v, "") for k, v in raw.items()]
    elif isinstance(raw, list):
        entries = []
        for item in raw:
            if not isinstance(item, Mapping):
                raise VerdictParseError("each rubric entry must be an object")
            entries.append((item.get("criterion"), item.get("score"), item.get("rationale", "")))
    else:
        raise VerdictParseError("'scores' must be a list or an object")
    lo, hi = RUBRIC_SCALE
    by_name: dict[str, tuple[float, str]] = {}
    for name, score, why in entries:
        if not isinstance(name, str):
            raise VerdictParseError(f"rubric entry has no criterion name: {name!r}")
        if isinstance(score, bool) or not isinstance(score, int | float) or not lo <= score <= hi:
            raise VerdictParseError(f"score for {name!r} must be a number in [{lo:g}, {hi:g}], got {score!r}")
        by_name[name.strip().casefold()] = (float(score), why if isinstance(why, str) else "")
    missing = [c for c in criteria if c.casefold() not in by_name]
    if missing:
        raise VerdictParseError(f"rubric verdict does not score {missing}")
    return RubricResult(
        scores={c: by_name[c.casefold()][0] for c in criteria},
        rationales={c: by_name[c.casefold()][1] for c in criteria},
    )


def pairwise_from_text(text: str) -> Preference:
    """The first valid pairwise verdict among the JSON objects in ``text``."""
    return _first_valid(text, pairwise_from_data)


def rubric_from_text(text: str, criteria: Sequence[str]) -> RubricResult:
    """The first valid rubric verdict among the JSON objects in ``text``."""
    return _first_valid(text, lambda d: rubric_from_data(d, criteria))


def _first_valid(text: str, validate: Any) -> Any:
    objects = json_objects(text)
    if not objects:
        raise VerdictParseError(f"reply contains no JSON object: {snippet(text)}")
    first_error: VerdictParseError | None = None
    for obj in objects:
        try:
            return validate(obj)
        except VerdictParseError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def snippet(text: str, limit: int = 160) -> str:
    """A short, single-line excerpt of a reply for error messages (credentials redacted first)."""
    flat = redact_credentials(" ".join(text.split()))[0]
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")
