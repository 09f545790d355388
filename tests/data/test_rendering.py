"""Prompt rendering moved from the trl backend to data/templates and renders exactly what it rendered there.

``rendering_expected.json`` holds the outputs of the old ``trl_backend.template_prompt`` and
``template_pair``, recorded from them on every built-in template before they were moved.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenir.data.templates import BUILTIN_TEMPLATES, TEMPLATE_REGISTRY, template_pair, template_prompt
from provenir.plugins.registry import PluginRegistry

EXPECTED = json.loads((Path(__file__).parent / "rendering_expected.json").read_text(encoding="utf-8"))
# The rows and the answer the expected strings were recorded with.
ROWS = [
    {"prompt": "What is LoRA?"},
    {"prompt": " Spaced prompt ", "system": "You are terse."},
    {"prompt": "x", "system": ""},
]
ANSWER = " Low-rank adapters. "


def test_the_recording_covers_every_builtin_template() -> None:
    assert set(EXPECTED) == set(BUILTIN_TEMPLATES)


@pytest.mark.parametrize("template", BUILTIN_TEMPLATES)
def test_prompts_and_pairs_are_the_ones_the_old_function_rendered(template: str) -> None:
    # No tokenizer: only the "tokenizer" template needs one.
    assert [template_prompt(template, None, row) for row in ROWS] == EXPECTED[template]["prompt"]
    assert [list(template_pair(template, None, row, ANSWER)) for row in ROWS] == EXPECTED[template]["pair"]


def test_the_old_import_path_is_the_same_function() -> None:
    from provenir.train.backends import trl_backend

    assert trl_backend.template_prompt is template_prompt and trl_backend.template_pair is template_pair


def test_templates_are_a_registry_kind() -> None:
    class Shout:
        name = "shout"

        def render(self, messages, *, add_generation_prompt):  # type: ignore[no-untyped-def]
            return messages[-1]["content"].upper() + ("?" if add_generation_prompt else "")

    with PluginRegistry.isolated():
        assert TEMPLATE_REGISTRY.list_names() == PluginRegistry.list_names("template")
        PluginRegistry.add("shout", Shout())  # kind inferred from render
        assert "shout" in TEMPLATE_REGISTRY.list_names()
        assert template_prompt("shout", None, {"prompt": "hi"}) == "HI?"
    assert "shout" not in TEMPLATE_REGISTRY.list_names()
