"""Prompt templates: turn a record (or a multi-turn conversation) into the exact text a model trains on.

Six built-in formats, byte-exact with each family's official chat template::

    from provenir.data.templates import TEMPLATE_REGISTRY

    names = TEMPLATE_REGISTRY.list_names()
    text = TEMPLATE_REGISTRY.format("llama3", {
        "system": "You are a helpful assistant.",
        "prompt": "What is LoRA?",
        "response": "LoRA is a parameter-efficient fine-tuning method...",
    })

Records
    ``{"prompt": str, "system": str | None, "response": str | None, "input": str | None}`` or
    ``{"messages": [{"role": "system" | "user" | "assistant", "content": str}, ...]}``.
    A record without ``response`` (or whose ``messages`` end with a user turn) renders up to the
    point where the model starts generating; with one, the last assistant turn is closed with the
    format's end-of-turn marker. An empty or missing ``system`` means "no system prompt".
    ``input`` is Alpaca's optional context; other formats append it to the prompt after a blank line.

Prompt / completion split (what SFT with assistant-only loss and DPO need)
    For every built-in template ``format(name, with_response) == format(name, without_response) +
    completion`` holds exactly, and :meth:`TemplateRegistry.split` returns that pair. For four of the
    six formats ``completion == response + end_of_turn``; the two official exceptions are
    ``mistral`` (a space precedes the answer: ``" " + response + "</s>"``) and ``llama3`` (the official
    template trims every message, so the completion is ``response.strip() + "<|eot_id|>"``). Use
    ``split`` rather than rebuilding the completion by hand.

BOS / EOS
    Where an official template writes the BOS/EOS token as text (``<|begin_of_text|>`` for llama3,
    ``<s>``/``</s>`` for mistral, ``<|endoftext|>`` for phi3, ``</s>`` for alpaca) so does the rendered
    text; tokenize it with ``add_special_tokens=False`` so the BOS is not doubled. Every built-in is
    a plain class whose tokens can be changed for a model with other special tokens:
    ``TEMPLATE_REGISTRY.register("phi3-tiny", Phi3Template(eos_token="</s>"))``.

Per format (system prompt placement; turn end):

========== ======================================================= ==========================
name       system prompt                                           a turn ends with
========== ======================================================= ==========================
alpaca     replaces the "Below is an instruction..." preamble       ``</s>`` after a response
chatml     its own ``<|im_start|>system`` turn                      ``<|im_end|>\\n``
llama3     its own ``system`` header turn                           ``<|eot_id|>``
mistral    folded into the first user turn, then a blank line      ``</s>`` after a response
phi3       its own ``<|system|>`` turn                              ``<|end|>\\n`` (+ EOS at end)
raw        prepended, followed by a blank line                     nothing (trainer adds EOS)
========== ======================================================= ==========================

Templates are a kind of the plugin registry (:mod:`provenir.plugins.registry`): the built-ins are
declared as ``provenir.templates`` entry points, like a third-party package's, and
:data:`TEMPLATE_REGISTRY` is the template view of the default registry.

Users register their own templates (an object with ``name`` and ``render``, or a Jinja string in
the Hugging Face chat-template dialect), and ``template: tokenizer`` uses the model tokenizer's
own ``chat_template`` through :func:`render_with_tokenizer` / :class:`TokenizerTemplate`.
"""

from provenir.data.templates.formats import (
    ROLES,
    TOKENIZER_TEMPLATE,
    AlpacaTemplate,
    ChatMLTemplate,
    JinjaTemplate,
    Llama3Template,
    Message,
    MistralTemplate,
    Phi3Template,
    PromptTemplate,
    RawCompletionTemplate,
    TokenizerTemplate,
    record_to_messages,
    render_with_tokenizer,
)
from provenir.data.templates.pins import (
    BUILTIN_TEMPLATES,
    BUILTIN_TEMPLATES_VERSION,
    template_pin,
    template_source,
)
from provenir.data.templates.registry import TEMPLATE_REGISTRY, TemplateRegistry
from provenir.data.templates.rendering import template_pair, template_prompt

__all__ = [
    "BUILTIN_TEMPLATES",
    "BUILTIN_TEMPLATES_VERSION",
    "ROLES",
    "TEMPLATE_REGISTRY",
    "TOKENIZER_TEMPLATE",
    "AlpacaTemplate",
    "ChatMLTemplate",
    "JinjaTemplate",
    "Llama3Template",
    "Message",
    "MistralTemplate",
    "Phi3Template",
    "PromptTemplate",
    "RawCompletionTemplate",
    "TemplateRegistry",
    "TokenizerTemplate",
    "record_to_messages",
    "render_with_tokenizer",
    "template_pair",
    "template_pin",
    "template_prompt",
    "template_source",
]
