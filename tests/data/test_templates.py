# ruff: noqa: E501  (official templates and pinned strings stay on one line each, as published)
"""Every built-in template renders to its pinned string; the official Jinja templates agree byte for byte."""

from __future__ import annotations

import pytest

from provenir.core.errors import DataError, PluginError
from provenir.data.templates import (
    BUILTIN_TEMPLATES,
    TEMPLATE_REGISTRY,
    JinjaTemplate,
    Phi3Template,
    TokenizerTemplate,
    record_to_messages,
    render_with_tokenizer,
)

S, P, R = "You are terse.", "What is LoRA?", "Low-rank adapters."
U2, R2 = "And QLoRA?", "LoRA on a 4-bit base."

SINGLE = {"system": S, "prompt": P, "response": R}
CONVERSATION = [
    {"role": "system", "content": S},
    {"role": "user", "content": P},
    {"role": "assistant", "content": R},
    {"role": "user", "content": U2},
]

ALPACA_HEAD = "Below is an instruction that describes a task. Write a response that appropriately completes the request."

# (template, record, expected text). Pinned by hand from each family's official chat format.
PINNED: list[tuple[str, dict, str]] = [
    # -- alpaca
    ("alpaca", {"prompt": P}, f"{ALPACA_HEAD}\n\n### Instruction:\n{P}\n\n### Response:"),
    (
        "alpaca",
        {"prompt": P, "response": R},
        f"{ALPACA_HEAD}\n\n### Instruction:\n{P}\n\n### Response:{R}</s>",
    ),
    ("alpaca", {"system": S, "prompt": P}, f"{S}\n\n### Instruction:\n{P}\n\n### Response:"),
    (
        "alpaca",
        {"prompt": P, "input": "ctx", "response": R},
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n"
        f"### Instruction:\n{P}\n\n### Input:\nctx\n\n### Response:{R}</s>",
    ),
    (
        "alpaca",
        {"messages": CONVERSATION},
        f"{S}\n\n### Instruction:\n{P}\n\n### Response:{R}</s>\n\n### Instruction:\n{U2}\n\n### Response:",
    ),
    # -- chatml
    ("chatml", {"prompt": P}, f"<|im_start|>user\n{P}<|im_end|>\n<|im_start|>assistant\n"),
    (
        "chatml",
        {"prompt": P, "response": R},
        f"<|im_start|>user\n{P}<|im_end|>\n<|im_start|>assistant\n{R}<|im_end|>\n",
    ),
    (
        "chatml",
        SINGLE,
        f"<|im_start|>system\n{S}<|im_end|>\n<|im_start|>user\n{P}<|im_end|>\n<|im_start|>assistant\n{R}<|im_end|>\n",
    ),
    (
        "chatml",
        {"messages": CONVERSATION},
        f"<|im_start|>system\n{S}<|im_end|>\n<|im_start|>user\n{P}<|im_end|>\n<|im_start|>assistant\n{R}<|im_end|>\n"
        f"<|im_start|>user\n{U2}<|im_end|>\n<|im_start|>assistant\n",
    ),
    # -- llama3
    (
        "llama3",
        {"prompt": P},
        f"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{P}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    (
        "llama3",
        SINGLE,
        f"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{S}<|eot_id|>"
        f"<|start_header_id|>user<|end_header_id|>\n\n{P}<|eot_id|>"
        f"<|start_header_id|>assistant<|end_header_id|>\n\n{R}<|eot_id|>",
    ),
    (
        "llama3",
        {"messages": CONVERSATION},
        f"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{S}<|eot_id|>"
        f"<|start_header_id|>user<|end_header_id|>\n\n{P}<|eot_id|>"
        f"<|start_header_id|>assistant<|end_header_id|>\n\n{R}<|eot_id|>"
        f"<|start_header_id|>user<|end_header_id|>\n\n{U2}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    # -- mistral
    ("mistral", {"prompt": P}, f"<s> [INST] {P} [/INST]"),
    ("mistral", {"prompt": P, "response": R}, f"<s> [INST] {P} [/INST] {R}</s>"),
    ("mistral", SINGLE, f"<s> [INST] {S}\n\n{P} [/INST] {R}</s>"),
    ("mistral", {"messages": CONVERSATION}, f"<s> [INST] {S}\n\n{P} [/INST] {R}</s> [INST] {U2} [/INST]"),
    (
        "mistral",
        {"messages": [*CONVERSATION, {"role": "assistant", "content": R2}]},
        f"<s> [INST] {S}\n\n{P} [/INST] {R}</s> [INST] {U2} [/INST] {R2}</s>",
    ),
    # -- phi3
    ("phi3", {"prompt": P}, f"<|user|>\n{P}<|end|>\n<|assistant|>\n"),
    ("phi3", {"prompt": P, "response": R}, f"<|user|>\n{P}<|end|>\n<|assistant|>\n{R}<|end|>\n<|endoftext|>"),
    ("phi3", {"system": S, "prompt": P}, f"<|system|>\n{S}<|end|>\n<|user|>\n{P}<|end|>\n<|assistant|>\n"),
    (
        "phi3",
        {"messages": CONVERSATION},
        f"<|system|>\n{S}<|end|>\n<|user|>\n{P}<|end|>\n<|assistant|>\n{R}<|end|>\n<|user|>\n{U2}<|end|>\n<|assistant|>\n",
    ),
    # -- raw_completion
    ("raw_completion", {"prompt": P}, P),
    ("raw_completion", {"prompt": P, "response": R}, P + R),
    ("raw_completion", SINGLE, f"{S}\n\n{P}{R}"),
    ("raw_completion", {"messages": CONVERSATION}, f"{S}\n\n{P}{R}\n\n{U2}"),
]


@pytest.mark.parametrize(
    ("name", "record", "expected"), PINNED, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(PINNED)]
)
def test_pinned_rendering(name: str, record: dict, expected: str) -> None:
    assert TEMPLATE_REGISTRY.format(name, record) == expected


def test_every_builtin_is_pinned_single_multi_with_and_without_system() -> None:
    assert set(TEMPLATE_REGISTRY.list_names()) >= set(BUILTIN_TEMPLATES)
    for name in BUILTIN_TEMPLATES:
        records = [r for n, r, _ in PINNED if n == name]
        assert any("messages" in r for r in records), name
        assert any(r.get("system") or ("messages" in r) for r in records), name
        assert any("messages" not in r and not r.get("system") for r in records), name


def test_seed_snippet_runs_as_written() -> None:
    names = TEMPLATE_REGISTRY.list_names()
    text = TEMPLATE_REGISTRY.format(
        "llama3",
        {
            "system": "You are a helpful assistant.",
            "prompt": "What is LoRA?",
            "response": "LoRA is a parameter-efficient fine-tuning method...",
        },
    )
    assert "llama3" in names
    assert text.endswith("LoRA is a parameter-efficient fine-tuning method...<|eot_id|>")


@pytest.mark.parametrize("name", BUILTIN_TEMPLATES)
@pytest.mark.parametrize("system", [None, S])
def test_prompt_plus_completion_is_exact(name: str, system: str | None) -> None:
    with_response = {"system": system, "prompt": P, "response": R}
    without = {"system": system, "prompt": P}
    prompt, completion = TEMPLATE_REGISTRY.split(name, with_response)
    assert prompt == TEMPLATE_REGISTRY.format(name, without)
    assert prompt + completion == TEMPLATE_REGISTRY.format(name, with_response)
    assert R in completion and P not in completion


@pytest.mark.parametrize(
    ("name", "completion"),
    [
        ("alpaca", R + "</s>"),
        ("chatml", R + "<|im_end|>\n"),
        ("llama3", R + "<|eot_id|>"),
        ("mistral", " " + R + "</s>"),
        ("phi3", R + "<|end|>\n<|endoftext|>"),
        ("raw_completion", R),
    ],
)
def test_completion_is_response_plus_end_of_turn(name: str, completion: str) -> None:
    assert TEMPLATE_REGISTRY.split(name, {"prompt": P, "response": R})[1] == completion


def test_multi_turn_split_keeps_history_in_prompt() -> None:
    record = {"messages": [*CONVERSATION, {"role": "assistant", "content": R2}]}
    prompt, completion = TEMPLATE_REGISTRY.split("chatml", record)
    assert completion == R2 + "<|im_end|>\n"
    assert prompt.endswith(f"<|im_start|>user\n{U2}<|im_end|>\n<|im_start|>assistant\n") and R in prompt


def test_llama3_trims_content_like_the_official_template() -> None:
    text = TEMPLATE_REGISTRY.format("llama3", {"prompt": "  hi \n", "response": " there "})
    assert "\n\nhi<|eot_id|>" in text and text.endswith("\n\nthere<|eot_id|>")
    assert TEMPLATE_REGISTRY.split("llama3", {"prompt": "hi", "response": " there "})[1] == "there<|eot_id|>"


def test_empty_system_means_no_system() -> None:
    assert TEMPLATE_REGISTRY.format("chatml", {"system": "", "prompt": P}) == TEMPLATE_REGISTRY.format(
        "chatml", {"prompt": P}
    )


def test_input_is_appended_for_formats_without_an_input_slot() -> None:
    text = TEMPLATE_REGISTRY.format("chatml", {"prompt": P, "input": "ctx"})
    assert text == f"<|im_start|>user\n{P}\n\nctx<|im_end|>\n<|im_start|>assistant\n"


# -- the official templates, in Hugging Face's Jinja dialect, render the same bytes --------------------
# Written from each model's tokenizer_config.json chat_template (Meta-Llama-3-8B-Instruct,
# Mistral-7B-Instruct-v0.2, Phi-3-mini-4k-instruct) and the ChatML spec, to cross-check the
# hand-written Python renderers on many conversations.

OFFICIAL_JINJA = {
    "chatml": (
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        "",
        "",
    ),
    "llama3": (
        "{% set loop_messages = messages %}{% for message in loop_messages %}"
        "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
        " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
        "<|begin_of_text|>",
        "<|eot_id|>",
    ),
    "mistral": (
        "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
        "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}"
        "{{- bos_token }}{%- for message in loop_messages %}"
        "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{- raise_exception('roles must alternate') }}{%- endif %}"
        "{%- if message['role'] == 'user' %}{%- if loop.first and system_message is defined %}"
        "{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"
        "{%- else %}{{- ' [INST] ' + message['content'] + ' [/INST]' }}{%- endif %}"
        "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token }}{%- endif %}{%- endfor %}",
        "<s>",
        "</s>",
    ),
    "phi3": (
        "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}"
        "{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
        "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}",
        "<s>",
        "<|endoftext|>",
    ),
}

CONVERSATIONS = [
    [{"role": "user", "content": "hi"}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
    [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "a\nb"},
        {"role": "assistant", "content": "c"},
    ],
    [
        {"role": "user", "content": "1"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "3"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "5"},
    ],
    [
        {"role": "system", "content": "s"},
        {"role": "user", "content": " padded "},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": "y"},
        {"role": "assistant", "content": "z"},
    ],
]


@pytest.mark.parametrize("name", sorted(OFFICIAL_JINJA))
@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=range(len(CONVERSATIONS)))
def test_builtin_matches_official_jinja(name: str, conversation: list[dict[str, str]]) -> None:
    source, bos, eos = OFFICIAL_JINJA[name]
    official = JinjaTemplate(source, name=f"official-{name}", bos_token=bos, eos_token=eos)
    ours = TEMPLATE_REGISTRY.format(name, {"messages": conversation})
    generation = conversation[-1]["role"] == "user"
    assert ours == official.render(conversation, add_generation_prompt=generation)


# -- registration ---------------------------------------------------------------------------------


def test_register_jinja_string_and_object() -> None:
    TEMPLATE_REGISTRY.register(
        "test-jinja",
        "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}",
    )
    TEMPLATE_REGISTRY.register("test-phi3-tiny", Phi3Template(name="test-phi3-tiny", eos_token="</s>"))
    try:
        assert "test-jinja" in TEMPLATE_REGISTRY.list_names()
        assert TEMPLATE_REGISTRY.format("test-jinja", {"prompt": "hi"}) == "[user] hi\n[assistant] "
        assert TEMPLATE_REGISTRY.split("test-jinja", {"prompt": "hi", "response": "yo"}) == (
            "[user] hi\n[assistant] ",
            "yo\n",
        )
        assert TEMPLATE_REGISTRY.format("test-phi3-tiny", {"prompt": "hi", "response": "yo"}).endswith(
            "yo<|end|>\n</s>"
        )
        with pytest.raises(PluginError, match="already registered"):
            TEMPLATE_REGISTRY.register("test-jinja", "{{ 1 }}")
        TEMPLATE_REGISTRY.register("test-jinja", "{{ messages[0].content }}", replace=True)
        assert TEMPLATE_REGISTRY.format("test-jinja", {"prompt": "hi"}) == "hi"
    finally:
        TEMPLATE_REGISTRY.unregister("test-jinja")
        TEMPLATE_REGISTRY.unregister("test-phi3-tiny")


def test_registration_errors() -> None:
    with pytest.raises(DataError, match="invalid Jinja"):
        TEMPLATE_REGISTRY.register("test-bad", "{% for %}")
    with pytest.raises(PluginError, match="reserved"):
        TEMPLATE_REGISTRY.register("tokenizer", "{{ 1 }}")
    with pytest.raises(PluginError, match="render"):
        TEMPLATE_REGISTRY.register("test-bad", object())  # type: ignore[arg-type]
    assert "test-bad" not in TEMPLATE_REGISTRY.list_names()


def test_jinja_raise_exception_is_a_data_error() -> None:
    tpl = JinjaTemplate("{{ raise_exception('no system please') }}", name="strict")
    with pytest.raises(DataError, match="no system please"):
        tpl.render([{"role": "user", "content": "x"}], add_generation_prompt=True)


# -- bad records ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ({}, "needs a text 'prompt'"),
        ({"prompt": 3}, "needs a text 'prompt'"),
        ({"prompt": "x", "response": 5}, "'response' must be text"),
        ({"messages": []}, "non-empty list"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "role must be one of"),
        ({"messages": [{"role": "user", "content": None}]}, "content must be text"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "expected a user message"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}, "alternate"),
        ({"messages": [{"role": "system", "content": "s"}]}, "at least one user turn"),
        ({"messages": [{"role": "user", "content": "a"}], "prompt": "p"}, "not both"),
    ],
)
def test_bad_records_are_data_errors(record: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        TEMPLATE_REGISTRY.format("chatml", record)


def test_unknown_template_lists_available() -> None:
    with pytest.raises(DataError, match="unknown template 'nope'; available: alpaca, chatml"):
        TEMPLATE_REGISTRY.format("nope", {"prompt": "x"})


def test_split_needs_a_response() -> None:
    with pytest.raises(DataError, match="ends with an assistant response"):
        TEMPLATE_REGISTRY.split("chatml", {"prompt": "x"})


def test_split_refuses_a_template_that_rewrites_the_prompt() -> None:
    tpl = JinjaTemplate("{{ messages | length }}{% if add_generation_prompt %}>{% endif %}", name="counter")
    with pytest.raises(DataError, match="cannot be split"):
        TEMPLATE_REGISTRY.split(tpl, {"prompt": "x", "response": "y"})


# -- template: tokenizer ----------------------------------------------------------------------------


def _tiny_tokenizer(chat_template: str | None):
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    vocab = {"[UNK]": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", eos_token="<|im_end|>"
    )
    fast.chat_template = chat_template
    return fast


def test_render_with_tokenizer_uses_its_chat_template() -> None:
    tokenizer = _tiny_tokenizer(OFFICIAL_JINJA["chatml"][0])
    record = {"system": S, "prompt": P, "response": R}
    assert render_with_tokenizer(tokenizer, record) == TEMPLATE_REGISTRY.format("chatml", record)
    assert render_with_tokenizer(tokenizer, {"prompt": P}) == TEMPLATE_REGISTRY.format(
        "chatml", {"prompt": P}
    )
    template = TEMPLATE_REGISTRY.resolve("tokenizer", tokenizer)
    assert isinstance(template, TokenizerTemplate)
    assert TEMPLATE_REGISTRY.split(template, record) == TEMPLATE_REGISTRY.split("chatml", record)


def test_tokenizer_without_chat_template_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="has no chat_template"):
        render_with_tokenizer(_tiny_tokenizer(None), {"prompt": P})
    with pytest.raises(DataError, match="needs the model's tokenizer"):
        TEMPLATE_REGISTRY.resolve("tokenizer")


def test_record_to_messages_generation_flag() -> None:
    assert record_to_messages({"prompt": "x"}) == ([{"role": "user", "content": "x"}], True)
    assert record_to_messages({"prompt": "x", "response": "y"})[1] is False
