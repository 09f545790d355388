"""The template view of the plugin registry: templates are the registry's ``template`` kind.

The built-ins arrive through Provenir's ``provenir.templates`` entry points, exactly as a
third-party package's templates do; :data:`TEMPLATE_REGISTRY` works on whichever registry is
the default (so :meth:`PluginRegistry.isolated` scopes template registrations too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provenir.core.errors import DataError, PluginError
from provenir.data.templates.formats import (
    TOKENIZER_TEMPLATE,
    JinjaTemplate,
    PromptTemplate,
    TokenizerTemplate,
    record_to_messages,
)
from provenir.plugins.registry import PluginRegistry


class TemplateRegistry:
    """Named prompt templates: the six built-ins plus whatever users register.

    ``plugins``: the registry to use; by default the current default registry at each call.
    """

    def __init__(self, plugins: PluginRegistry | None = None) -> None:
        self._plugins = plugins

    @property
    def plugins(self) -> PluginRegistry:
        """The plugin registry this view reads and writes."""
        return self._plugins if self._plugins is not None else PluginRegistry.default()

    def register(self, name: str, template: PromptTemplate | str, *, replace: bool = False) -> PromptTemplate:
        """Register ``template`` (an object with ``render``, or a Jinja string) under ``name``.

        Re-registering a taken name is a :class:`PluginError` unless ``replace=True``.
        """
        if not isinstance(name, str) or not name.strip():
            raise PluginError("template name must be a non-empty string")
        if name == TOKENIZER_TEMPLATE:
            raise PluginError(
                f"{TOKENIZER_TEMPLATE!r} is reserved for the model tokenizer's own chat template"
            )
        if isinstance(template, str):
            template = JinjaTemplate(template, name=name)
        elif not callable(getattr(template, "render", None)):
            raise PluginError(
                f"template {name!r} must be a Jinja string or have a render(messages, ...) method"
            )
        self.plugins.add(name, template, kind="template", replace=replace)
        return template

    def unregister(self, name: str) -> None:
        """Remove a registration (tests, interactive sessions)."""
        self.plugins.unregister("template", name)

    def list_names(self) -> list[str]:
        """Registered template names, sorted."""
        return self.plugins.list_names("template")

    def get(self, name: str) -> PromptTemplate:
        """The template registered under ``name``."""
        found: PromptTemplate | None = self.plugins.find("template", name)
        if found is None:
            hint = (
                " ('tokenizer' needs a tokenizer: use resolve(name, tokenizer))"
                if name == TOKENIZER_TEMPLATE
                else ""
            )
            raise DataError(f"unknown template {name!r}; available: {', '.join(self.list_names())}{hint}")
        return found

    def resolve(self, template: str | PromptTemplate, tokenizer: Any = None) -> PromptTemplate:
        """A template object from a config value: a registered name, ``"tokenizer"``, or an object."""
        if not isinstance(template, str):
            return template
        if template == TOKENIZER_TEMPLATE:
            if tokenizer is None:
                raise DataError("template 'tokenizer' needs the model's tokenizer")
            return TokenizerTemplate(tokenizer)
        return self.get(template)

    def format(self, name: str | PromptTemplate, record: Mapping[str, Any]) -> str:
        """Render ``record`` (prompt/system/response or messages) with the named template."""
        messages, generation = record_to_messages(record)
        return self.resolve(name).render(messages, add_generation_prompt=generation)

    def split(self, name: str | PromptTemplate, record: Mapping[str, Any]) -> tuple[str, str]:
        """``(prompt, completion)`` with ``prompt + completion == format(name, record)``.

        The record must end with an assistant answer (``response``, or ``messages`` ending with an
        assistant turn). The prompt is the text up to where generation starts; the completion is
        the answer plus the template's end-of-turn marker, so training on the completion alone is
        assistant-only loss.
        """
        template = self.resolve(name)
        messages, generation = record_to_messages(record)
        if generation:
            raise DataError("split needs a record that ends with an assistant response")
        full = template.render(messages, add_generation_prompt=False)
        prompt = template.render(messages[:-1], add_generation_prompt=True)
        if not full.startswith(prompt):
            # Only a user template can do this (e.g. one that rewrites earlier turns); fail loudly
            # rather than train on a misaligned prompt/completion boundary.
            raise DataError(
                f"template {template.name!r} renders the prompt differently with and without the answer, "
                "so prompt and completion cannot be split"
            )
        return prompt, full[len(prompt) :]


#: The templates of the default plugin registry.
TEMPLATE_REGISTRY = TemplateRegistry()
