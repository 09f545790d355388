"""Loss on every assistant turn of a conversation (``data.train_on_turns: all``).

With ``train_on_turns: last`` a conversation reaches TRL as a prompt/completion pair (everything
before the final assistant turn, that turn), so TRL 1.16 masks all earlier turns. With ``all``,
Provenir tokenizes the conversation itself and hands TRL rows of ``input_ids`` and ``labels``
(``-100`` outside the assistant turns), which TRL uses as they are: it only cuts them to
``max_length`` (keep-start) and drops rows left without a labelled token.

Which tokens belong to an assistant turn:

* **A Provenir template** (built-in or registered): turn *k* starts where the tokenized prompt
  of the conversation up to *k* (rendered with the generation prompt) stops agreeing with the
  tokenized whole conversation, and ends where the tokenized conversation closed after turn *k*
  stops agreeing with it; that is how TRL finds where a completion starts
  (``trl.data_utils.common_prefix_length``), applied to each turn. A turn therefore carries the
  answer and the template's end-of-turn marker (``<|im_end|>``, ``</s>``, ``<|eot_id|>``...);
  the final turn also carries EOS, exactly as with ``last``. A one-turn row gets the very
  labels TRL gives the same row as a prompt/completion pair.
* **``template: tokenizer``**: the tokenizer's own assistant mask
  (``apply_chat_template(..., return_assistant_tokens_mask=True)``), which marks the text between
  ``{% generation %}`` and ``{% endgeneration %}``. A chat template without those markers is
  refused: it cannot say which tokens are the assistant's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from provenir.core.errors import ConfigError, DataError
from provenir.data.templates import (
    TEMPLATE_REGISTRY,
    TOKENIZER_TEMPLATE,
    Message,
    PromptTemplate,
    record_to_messages,
)

#: What transformers looks for to build an assistant mask (``render_jinja_template``).
GENERATION_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")

IGNORE_INDEX = -100


def row_messages(row: Mapping[str, Any]) -> list[Message]:
    """The conversation of a canonical SFT row: its ``messages``, or prompt/system/response as turns."""
    if "messages" in row:
        return record_to_messages({"messages": row["messages"]})[0]
    record = {"prompt": row["prompt"], "response": row["response"]}
    if row.get("system"):
        record["system"] = row["system"]
    return record_to_messages(record)[0]


def has_generation_markers(chat_template: Any) -> bool:
    """Whether a chat template marks assistant text with ``{% generation %}`` (a dict: any of its templates)."""
    if isinstance(chat_template, dict):
        return any(has_generation_markers(t) for t in chat_template.values())
    return isinstance(chat_template, str) and bool(GENERATION_MARKER.search(chat_template))


def check_tokenizer_masks(tokenizer: Any) -> None:
    """Refuse ``train_on_turns: all`` with a tokenizer chat template that has no generation markers."""
    if not has_generation_markers(getattr(tokenizer, "chat_template", None)):
        raise ConfigError(
            "data.train_on_turns: all with template: tokenizer needs {% generation %}...{% endgeneration %} "
            "around the assistant turns of the tokenizer's chat_template, and this one has none; use a named "
            "template (provenir templates list) or train_on_turns: last"
        )


def common_prefix_length(ids: Sequence[int], other: Sequence[int]) -> int:
    """Leading tokens ``ids`` and ``other`` have in common (as TRL's function of the same name)."""
    n = 0
    for a, b in zip(ids, other, strict=False):
        if a != b:
            break
        n += 1
    return n


def _strip_auto_bos(text: str, tokenizer: Any) -> str:
    from provenir.train.backends.trl_backend import strip_auto_bos

    return strip_auto_bos(text, tokenizer)


def conversation_text(template: str, tokenizer: Any, messages: Sequence[Message]) -> tuple[str, str]:
    """``(prompt, rest)``: the text before the first assistant turn, and everything from it on.

    Their concatenation is the text that trains (with EOS at the end for a Provenir template);
    the split is what long-row measurement compares with ``max_length``.
    """
    first = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
    resolved = TEMPLATE_REGISTRY.resolve(template, tokenizer)
    full = _closed_text(resolved, tokenizer, messages, final=template != TOKENIZER_TEMPLATE)
    prompt = _strip_auto_bos(resolved.render(messages[:first], add_generation_prompt=True), tokenizer)
    if not full.startswith(prompt):
        raise DataError(
            f"template {resolved.name!r} renders the prompt differently with and without the answer, "
            "so the assistant turns cannot be located"
        )
    return prompt, full[len(prompt) :]


def _closed_text(
    template: PromptTemplate, tokenizer: Any, messages: Sequence[Message], *, final: bool
) -> str:
    text = _strip_auto_bos(template.render(messages, add_generation_prompt=False), tokenizer)
    eos = getattr(tokenizer, "eos_token", None)
    # As for `last`: TRL appends EOS to a completion without it, so the final turn ends with EOS.
    return text + eos if final and eos and not text.endswith(eos) else text


def all_turns_row(
    template: str, tokenizer: Any, messages: Sequence[Message], clipped: str | None = None
) -> dict[str, list[int]]:
    """``{"input_ids", "labels"}`` of a conversation with every assistant turn labelled.

    ``clipped``: the conversation text cut to a prefix longer than ``max_length`` tokens (see
    :mod:`provenir.train.long_rows`); only that prefix is tokenized.
    """
    if template == TOKENIZER_TEMPLATE:
        return _tokenizer_mask_row(tokenizer, messages)
    resolved = TEMPLATE_REGISTRY.resolve(template, tokenizer)
    full = clipped if clipped is not None else _closed_text(resolved, tokenizer, messages, final=True)
    limit = len(full)
    ids = _ids(tokenizer, full)
    labels = [IGNORE_INDEX] * len(ids)
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _strip_auto_bos(resolved.render(messages[:i], add_generation_prompt=True), tokenizer)
        if len(prompt) >= limit:
            break  # this turn starts past the kept text
        if i == last:
            closed = full
        else:
            closed = _closed_text(resolved, tokenizer, messages[: i + 1], final=False)[:limit]
        start = common_prefix_length(_ids(tokenizer, prompt), ids)
        end = common_prefix_length(_ids(tokenizer, closed), ids)
        labels[start:end] = ids[start:end]
    return {"input_ids": ids, "labels": labels}


def _ids(tokenizer: Any, text: str) -> list[int]:
    # Special tokens on, as TRL tokenizes a plain-text row (so a BOS the tokenizer adds is kept).
    return list(tokenizer(text)["input_ids"])


def _tokenizer_mask_row(tokenizer: Any, messages: Sequence[Message]) -> dict[str, list[int]]:
    check_tokenizer_masks(tokenizer)
    try:
        out = tokenizer.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages],
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
    except Exception as exc:  # jinja2/transformers raise many types for a template that rejects input
        raise DataError(f"the tokenizer's chat_template failed to render: {exc}") from None
    ids = list(out["input_ids"])
    mask = list(out["assistant_masks"])
    if 1 not in mask:
        raise DataError(
            "the tokenizer's chat_template marked no assistant token of a conversation ({% generation %} "
            "must enclose the assistant messages)"
        )
    return {"input_ids": ids, "labels": [t if m else IGNORE_INDEX for t, m in zip(ids, mask, strict=True)]}
