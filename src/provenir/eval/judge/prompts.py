"""Versioned judge prompts and verdict schemas.

The prompt text is part of a cached verdict's identity: change any template below and bump
its ``*_VERSION`` so :class:`CachedJudge` stops serving verdicts produced by the old wording.
The fake server in :mod:`provenir.testing.llm_server` reads the tags these templates emit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PAIRWISE_VERSION = "pairwise-v1"
RUBRIC_VERSION = "rubric-v1"

SYSTEM_PROMPT = (
    "You are an impartial expert judge of AI assistant responses. Judge substance: correctness, "
    "helpfulness and clarity. The order in which responses are shown and their length must not "
    "influence you. Always answer with the requested verdict and nothing else."
)

PAIRWISE_TEMPLATE = """Compare two responses to the same prompt and decide which one is better.

<prompt>
{prompt}
</prompt>

<response_a>
{a}
</response_a>

<response_b>
{b}
</response_b>

Give your verdict as a JSON object with exactly these fields:
  "preferred": "a", "b" or "tie"
  "confidence": a number from 0 to 1
  "rationale": one or two sentences
"""

RUBRIC_TEMPLATE = """Score one response to a prompt on each of the listed criteria.

<prompt>
{prompt}
</prompt>

<response>
{response}
</response>

<criteria>
{criteria}
</criteria>

Score each criterion from 1 (very poor) to 10 (excellent). Give your verdict as a JSON object:
  "scores": a list with one entry per criterion, each {{"criterion": <name as listed>,
            "score": <integer 1-10>, "rationale": <one sentence>}}
"""

PAIRWISE_TOOL = "record_pairwise_verdict"
RUBRIC_TOOL = "record_rubric_scores"

# Strict-mode compatible (OpenAI structured outputs): every property required, no extras.
# Ranges are checked by our own validation, which runs on every reply whatever its route.
PAIRWISE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "preferred": {"type": "string", "enum": ["a", "b", "tie"]},
        "confidence": {"type": "number", "description": "0 to 1"},
        "rationale": {"type": "string"},
    },
    "required": ["preferred", "confidence", "rationale"],
    "additionalProperties": False,
}

RUBRIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "scores": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "criterion": {"type": "string"},
                    "score": {"type": "integer", "description": "1 to 10"},
                    "rationale": {"type": "string"},
                },
                "required": ["criterion", "score", "rationale"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["scores"],
    "additionalProperties": False,
}


def pairwise_message(prompt: str, a: str, b: str) -> str:
    """The user message asking which of ``a`` (shown first) and ``b`` is better."""
    return PAIRWISE_TEMPLATE.format(prompt=prompt, a=a, b=b)


def rubric_message(prompt: str, response: str, criteria: Sequence[str]) -> str:
    """The user message asking for one score per criterion."""
    return RUBRIC_TEMPLATE.format(
        prompt=prompt, response=response, criteria="\n".join(f"- {c}" for c in criteria)
    )
