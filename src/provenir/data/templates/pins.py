"""What a manifest records of a template: its source (or probe renders) and where it came from."""

from __future__ import annotations

import json
from typing import Any

from provenir.core.hashing import sha256_bytes
from provenir.core.inputs import TemplatePin
from provenir.data.templates.formats import (
    BUILTIN_TEMPLATE_OBJECTS,
    JinjaTemplate,
    PromptTemplate,
    TokenizerTemplate,
    record_to_messages,
)

BUILTIN_TEMPLATES: tuple[str, ...] = ("alpaca", "chatml", "llama3", "mistral", "phi3", "raw_completion")

#: Version of the built-in templates' output; bump it whenever any built-in renders differently.
BUILTIN_TEMPLATES_VERSION = "1"

# Conversations whose renders pin a template written in Python: every role, a system prompt,
# Alpaca's input field, several turns, and both the training and the generation form.
_PROBES: tuple[dict[str, Any], ...] = (
    {"prompt": "P", "response": "R"},
    {"prompt": "P", "input": "I", "response": "R"},
    {"system": "S", "prompt": "P", "response": " R "},
    {"system": "S", "prompt": "P"},
    {
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "U1"},
            {"role": "assistant", "content": "A1"},
            {"role": "user", "content": "U2"},
            {"role": "assistant", "content": "A2"},
        ]
    },
)


def template_source(template: PromptTemplate) -> str:
    """The text that defines what ``template`` renders, for pinning it in a manifest.

    The tokenizer's own ``chat_template`` (Jinja), a registered Jinja string, or, for a template
    written in Python (the built-ins), its renders of a fixed set of probe conversations: two
    templates with equal sources render every record alike.
    """
    if isinstance(template, TokenizerTemplate):
        chat_template = template.tokenizer.chat_template
        return chat_template if isinstance(chat_template, str) else json.dumps(chat_template, sort_keys=True)
    if isinstance(template, JinjaTemplate):
        return template.source
    renders = []
    for record in _PROBES:
        messages, generation = record_to_messages(record)
        renders.append(template.render(messages, add_generation_prompt=generation))
    return json.dumps(renders, ensure_ascii=False)


def template_pin(name: str, template: PromptTemplate) -> TemplatePin:
    """What the manifest records of the template that rendered a run's rows."""
    source = template_source(template)
    if isinstance(template, TokenizerTemplate):
        origin, version = "tokenizer", None
    elif BUILTIN_TEMPLATE_OBJECTS.get(name) is template:
        origin, version = "builtin", BUILTIN_TEMPLATES_VERSION
    else:
        origin, version = "registered", None
    return TemplatePin(name=name, origin=origin, version=version, sha256=sha256_bytes(source.encode()))
