"""The built-in prompt formats and the user template types (Jinja string, tokenizer's own).

Records and the per-format rules are described in :mod:`provenir.data.templates`. The six
built-in instances below are what Provenir's ``provenir.templates`` entry points name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from provenir.core.errors import DataError

#: ``template: tokenizer`` in a config selects the model tokenizer's own chat template.
TOKENIZER_TEMPLATE = "tokenizer"

ROLES = ("system", "user", "assistant")

Message = dict[str, str]


@runtime_checkable
class PromptTemplate(Protocol):
    """Anything that renders a conversation to text.

    ``messages`` is validated before ``render`` is called: a list of ``{"role", "content"}`` dicts.
    With ``add_generation_prompt`` the text ends exactly where the assistant's reply starts.
    """

    @property
    def name(self) -> str:
        """The name shown in errors (a plain attribute satisfies this)."""
        ...

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str: ...


# -- records -> messages ---------------------------------------------------------------------


def record_to_messages(record: Mapping[str, Any]) -> tuple[list[Message], bool]:
    """Turn a record into (messages, add_generation_prompt); raises :class:`DataError` on bad input.

    ``add_generation_prompt`` is true when the conversation ends with a user turn, i.e. when the
    rendered text should stop where the model starts answering.
    """
    if not isinstance(record, Mapping):
        raise DataError(f"a template record must be a mapping, got {type(record).__name__}")
    if "messages" in record:
        if "prompt" in record or "response" in record:
            raise DataError("a template record has either 'messages' or 'prompt'/'response', not both")
        messages = _check_messages(record["messages"])
    else:
        prompt = record.get("prompt")
        if not isinstance(prompt, str):
            raise DataError(
                "a template record needs a text 'prompt' (or a 'messages' list); "
                f"got {'no prompt' if prompt is None else type(prompt).__name__}"
            )
        messages = []
        system = _optional_text(record, "system")
        if system:
            messages.append({"role": "system", "content": system})
        user: Message = {"role": "user", "content": prompt}
        extra = _optional_text(record, "input")
        if extra:
            user["input"] = extra
        messages.append(user)
        response = _optional_text(record, "response")
        if response is not None:
            messages.append({"role": "assistant", "content": response})
    return messages, messages[-1]["role"] == "user"


def _optional_text(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise DataError(f"template record field {key!r} must be text, got {type(value).__name__}")
    return value


def _check_messages(messages: Any) -> list[Message]:
    if not isinstance(messages, list) or not messages:
        raise DataError("'messages' must be a non-empty list of {'role', 'content'} objects")
    out: list[Message] = []
    for i, m in enumerate(messages, start=1):
        if not isinstance(m, Mapping):
            raise DataError(f"messages[{i}] must be an object with 'role' and 'content'")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise DataError(f"messages[{i}]: role must be one of {', '.join(ROLES)}; got {role!r}")
        if not isinstance(content, str):
            raise DataError(f"messages[{i}]: content must be text, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    return out


def _split_system(messages: Sequence[Message]) -> tuple[str | None, list[Message]]:
    """(system prompt, remaining turns), checking that the remaining turns alternate user/assistant.

    The official Mistral template enforces this; applying it to every built-in keeps the six
    formats interchangeable for the same data.
    """
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
    turns = list(messages[1:] if system is not None else messages)
    if not turns:
        raise DataError("a conversation needs at least one user turn")
    for i, m in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if m["role"] != expected:
            raise DataError(
                f"turn {i + 1}: expected a {expected} message, got {m['role']!r} (after an optional "
                "first system message, roles must alternate user/assistant starting with user)"
            )
    return system, turns


def _user_text(m: Message) -> str:
    # Formats without an input slot keep Alpaca-style context by appending it to the prompt.
    extra = m.get("input")
    return f"{m['content']}\n\n{extra}" if extra else m["content"]


# -- the six built-in formats -----------------------------------------------------------------


@dataclass(frozen=True)
class AlpacaTemplate:
    """Stanford Alpaca (tatsu-lab/stanford_alpaca ``PROMPT_DICT``), with and without ``### Input:``.

    The prompt ends with ``### Response:`` and the answer follows directly, then ``eos_token``,
    exactly as Alpaca's training script concatenated source and target. A system prompt replaces
    the preamble. Multi-turn (not part of Alpaca) repeats the Instruction/Response blocks, each new
    instruction after a blank line.
    """

    name: str = "alpaca"
    description: str = "Classic instruction tuning: ### Instruction: ... ### Response:"
    eos_token: str = "</s>"
    preamble: str = (
        "Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request."
    )
    preamble_with_input: str = (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request."
    )

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        system, turns = _split_system(messages)
        if not system:
            system = self.preamble_with_input if turns[0].get("input") else self.preamble
        parts = [system]
        for m in turns:
            if m["role"] == "user":
                block = f"\n\n### Instruction:\n{m['content']}\n\n"
                if m.get("input"):
                    block += f"### Input:\n{m['input']}\n\n"
                parts.append(block + "### Response:")
            else:
                parts.append(m["content"] + self.eos_token)
        return "".join(parts)


@dataclass(frozen=True)
class ChatMLTemplate:
    """ChatML: ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per turn; no BOS; no default system."""

    name: str = "chatml"
    description: str = "ChatML <|im_start|>role ... <|im_end|> (multi-turn, OpenAI-compatible)"

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        system, turns = _split_system(messages)
        out = [] if system is None else [f"<|im_start|>system\n{system}<|im_end|>\n"]
        for m in turns:
            content = _user_text(m) if m["role"] == "user" else m["content"]
            out.append(f"<|im_start|>{m['role']}\n{content}<|im_end|>\n")
        if add_generation_prompt:
            out.append("<|im_start|>assistant\n")
        return "".join(out)


@dataclass(frozen=True)
class Llama3Template:
    """Llama 3 Instruct (Meta-Llama-3-8B-Instruct): BOS, then per turn
    ``<|start_header_id|>{role}<|end_header_id|>\\n\\n{content.strip()}<|eot_id|>``.

    Content is trimmed as the official template does (``| trim``). No date/knowledge-cutoff
    system preamble: that belongs to the Llama 3.1+ templates, not Llama 3.
    """

    name: str = "llama3"
    description: str = "Llama 3 Instruct: <|begin_of_text|>, header tokens, <|eot_id|>"
    bos_token: str = "<|begin_of_text|>"

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        system, turns = _split_system(messages)
        out = [self.bos_token]
        if system is not None:
            out.append(self._turn("system", system))
        for m in turns:
            out.append(self._turn(m["role"], _user_text(m) if m["role"] == "user" else m["content"]))
        if add_generation_prompt:
            out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
        return "".join(out)

    @staticmethod
    def _turn(role: str, content: str) -> str:
        return f"<|start_header_id|>{role}<|end_header_id|>\n\n{content.strip()}<|eot_id|>"


@dataclass(frozen=True)
class MistralTemplate:
    """Mistral-7B-Instruct v0.1/v0.2 (current Hugging Face template, tokenizer v1):
    ``<s> [INST] {system}\\n\\n{user} [/INST] {answer}</s> [INST] {user} [/INST]``.

    The system prompt is folded into the first user turn followed by a blank line; the prompt
    ends at ``[/INST]`` and the answer starts with a space.
    """

    name: str = "mistral"
    description: str = "Mistral Instruct: <s> [INST] ... [/INST] answer</s>"
    bos_token: str = "<s>"
    eos_token: str = "</s>"

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        system, turns = _split_system(messages)
        out = [self.bos_token]
        for i, m in enumerate(turns):
            if m["role"] == "user":
                text = _user_text(m)
                if i == 0 and system is not None:
                    text = f"{system}\n\n{text}"
                out.append(f" [INST] {text} [/INST]")
            else:
                out.append(f" {m['content']}{self.eos_token}")
        return "".join(out)


@dataclass(frozen=True)
class Phi3Template:
    """Phi-3 (Phi-3-mini-4k-instruct): ``<|{role}|>\\n{content}<|end|>\\n`` per turn.

    With a generation prompt the text ends with ``<|assistant|>\\n``; a closed conversation ends
    with ``eos_token`` (``<|endoftext|>``), as the official template does. No BOS in the text.
    """

    name: str = "phi3"
    description: str = "Microsoft Phi-3: <|user|> ... <|end|> <|assistant|>"
    eos_token: str = "<|endoftext|>"

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        system, turns = _split_system(messages)
        out = [] if system is None else [f"<|system|>\n{system}<|end|>\n"]
        for m in turns:
            content = _user_text(m) if m["role"] == "user" else m["content"]
            out.append(f"<|{m['role']}|>\n{content}<|end|>\n")
        out.append("<|assistant|>\n" if add_generation_prompt else self.eos_token)
        return "".join(out)


@dataclass(frozen=True)
class RawCompletionTemplate:
    """Plain completion, no special tokens: ``{prompt}{response}``.

    A system prompt is prepended followed by a blank line; in multi-turn text each later user turn
    starts after a blank line. Nothing ends a turn, so the trainer's EOS is the only stop signal.
    """

    name: str = "raw_completion"
    description: str = "Plain completion {prompt}{response}, no special tokens"

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        system, turns = _split_system(messages)
        out = [] if system is None else [f"{system}\n\n"]
        for i, m in enumerate(turns):
            if m["role"] == "user":
                out.append(("\n\n" if i else "") + _user_text(m))
            else:
                out.append(m["content"])
        return "".join(out)


# -- user templates ----------------------------------------------------------------------------


class JinjaTemplate:
    """A chat template written in the Hugging Face Jinja dialect.

    The template sees ``messages``, ``add_generation_prompt``, ``bos_token``, ``eos_token`` and a
    ``raise_exception(message)`` function, like ``tokenizer.apply_chat_template``::

        TEMPLATE_REGISTRY.register("mine", "{% for m in messages %}{{ m.role }}: {{ m.content }}{% endfor %}")
    """

    def __init__(self, source: str, *, name: str = "jinja", bos_token: str = "", eos_token: str = "") -> None:
        # jinja2 is a base dependency, imported here only so that loading templates stays light.
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise DataError(f"template {name!r}: {message}")

        # Same environment settings as transformers, so a template copied from a tokenizer renders alike.
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        env.globals["raise_exception"] = raise_exception
        try:
            self._template = env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise DataError(f"template {name!r}: invalid Jinja at line {exc.lineno}: {exc.message}") from None
        self.name = name
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        import jinja2

        try:
            return self._template.render(
                messages=[dict(m) for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except jinja2.TemplateError as exc:
            raise DataError(f"template {self.name!r} failed to render: {exc}") from None


class TokenizerTemplate:
    """``template: tokenizer``: render with the tokenizer's own ``chat_template``."""

    def __init__(self, tokenizer: Any) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise DataError(
                f"template 'tokenizer': {type(tokenizer).__name__} has no chat_template; "
                "pick a named template (provenir templates list)"
            )
        self.tokenizer = tokenizer
        self.name = TOKENIZER_TEMPLATE

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        try:
            text = self.tokenizer.apply_chat_template(
                [{"role": m["role"], "content": _user_text(m)} for m in messages],
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
            )
        except DataError:
            raise
        except Exception as exc:  # jinja2/transformers raise many types for a template that rejects input
            raise DataError(f"the tokenizer's chat_template failed to render: {exc}") from None
        if not isinstance(text, str):
            raise DataError(f"the tokenizer's chat_template returned {type(text).__name__}, expected text")
        return text


def render_with_tokenizer(tokenizer: Any, record: Mapping[str, Any]) -> str:
    """Render ``record`` with ``tokenizer.chat_template`` (what ``template: tokenizer`` selects)."""
    messages, generation = record_to_messages(record)
    return TokenizerTemplate(tokenizer).render(messages, add_generation_prompt=generation)


# -- the built-in instances (named by Provenir's ``provenir.templates`` entry points) -----------

ALPACA = AlpacaTemplate()
CHATML = ChatMLTemplate()
LLAMA3 = Llama3Template()
MISTRAL = MistralTemplate()
PHI3 = Phi3Template()
RAW_COMPLETION = RawCompletionTemplate()

#: Name -> the built-in object registered under it (a pin says "builtin" only for these objects).
BUILTIN_TEMPLATE_OBJECTS: dict[str, PromptTemplate] = {
    t.name: t for t in (ALPACA, CHATML, LLAMA3, MISTRAL, PHI3, RAW_COMPLETION)
}
