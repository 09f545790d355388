"""Prompt rendering for generation and pairwise data: a dataset row -> the text a model sees.

Evaluation, the in-training eval callback, generation and RLAIF render prompts with
:func:`template_prompt`; DPO pairs and SFT rows split an answered row with :func:`template_pair`.
``template`` is a registered name, ``"tokenizer"`` (the model tokenizer's own chat template,
which is what ``tokenizer`` is needed for) or a template object.
"""

from __future__ import annotations

from typing import Any

from provenir.data.templates.formats import PromptTemplate
from provenir.data.templates.registry import TEMPLATE_REGISTRY


def _record(row: dict[str, Any]) -> dict[str, Any]:
    # An empty system prompt means none, as in every template.
    return {"prompt": row["prompt"], **({"system": row["system"]} if row.get("system") else {})}


def template_prompt(template: str | PromptTemplate, tokenizer: Any, row: dict[str, Any]) -> str:
    """The prompt text of ``row`` up to where the response starts (generation, DPO, GRPO)."""
    return TEMPLATE_REGISTRY.format(TEMPLATE_REGISTRY.resolve(template, tokenizer), _record(row))


def template_pair(
    template: str | PromptTemplate, tokenizer: Any, row: dict[str, Any], answer: str
) -> tuple[str, str]:
    """``(prompt, completion)`` of ``row`` answered by ``answer``, split exactly where generation starts.

    The completion carries the template's own end-of-turn marker (``</s>``, ``<|eot_id|>``, ...)
    and any separator the official format puts before the answer (Mistral's space).
    """
    record = {**_record(row), "response": answer}
    return TEMPLATE_REGISTRY.split(TEMPLATE_REGISTRY.resolve(template, tokenizer), record)
