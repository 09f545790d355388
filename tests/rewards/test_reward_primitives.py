"""Reward primitives, their registry entries, and the TRL GRPO reward-function adapter."""

from __future__ import annotations

import importlib.util
import math
import pickle
from pathlib import Path

import pytest

from provenir.core.errors import ConfigError, EvaluationError
from provenir.plugins.registry import PluginRegistry
from provenir.rewards.primitives import (
    ClampedReward,
    ExactMatchReward,
    FormatReward,
    MaxReward,
    MinReward,
    NormalizedExactMatchReward,
    Reward,
    ThresholdGatedReward,
    WeightedSumReward,
    as_grpo_reward_func,
    completion_text,
)


class Const:
    def __init__(self, value: float) -> None:
        self.value = value

    def score(self, prediction: str, reference: str | None = None) -> float:
        return self.value


def test_seed_snippet_runs_as_written() -> None:
    prediction, reference = "[1, 2]", "[1, 2]"

    from provenir.rewards.primitives import ExactMatchReward, FormatReward, WeightedSumReward

    reward = WeightedSumReward(
        rewards=[
            (ExactMatchReward(), 0.7),
            (FormatReward(pattern=r"^\[.*\]$"), 0.3),
        ]
    )
    score = reward.score(prediction, reference)

    assert score == pytest.approx(1.0)
    assert reward.score("[3]", reference) == pytest.approx(0.3)
    assert reward.score("3", "3") == pytest.approx(0.7)


def test_exact_match_options_and_errors() -> None:
    assert ExactMatchReward().score(" Paris\n", "Paris") == 1.0
    assert ExactMatchReward().score("paris", "Paris") == 0.0
    assert ExactMatchReward(case_sensitive=False).score("paris", "Paris") == 1.0
    assert ExactMatchReward(strip=False).score("Paris\n", "Paris") == 0.0
    assert ExactMatchReward(normalize_whitespace=True).score("New   York", "New York") == 1.0
    with pytest.raises(EvaluationError, match="needs a reference"):
        ExactMatchReward().score("x")
    with pytest.raises(EvaluationError, match="string"):
        ExactMatchReward().score(3, "3")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reward", "text", "expected"),
    [
        (FormatReward(pattern=r"^\[.*\]$"), "[a,\nb]", 1.0),  # DOTALL: the list may span lines
        (FormatReward(pattern=r"^\[.*\]$"), "x [a]", 0.0),
        (FormatReward(pattern=r"answer: \d+"), "so the answer: 42.", 1.0),
        (FormatReward(mode="json"), '{"a": 1}', 1.0),
        (FormatReward(mode="json"), "```json\n[1, 2]\n```", 1.0),
        (FormatReward(mode="json", allow_fenced=False), "```json\n[1, 2]\n```", 0.0),
        (FormatReward(mode="json"), "{'a': 1}", 0.0),
        (FormatReward(mode="json", required_keys=["answer"]), '{"answer": 4}', 1.0),
        (FormatReward(mode="json", required_keys=["answer"]), '{"other": 4}', 0.0),
        (FormatReward(mode="json", required_keys=["answer"]), '["answer"]', 0.0),
        (FormatReward(mode="code_block"), "Here:\n```\nprint(1)\n```", 1.0),
        (FormatReward(mode="code_block", language="python"), "```python\nprint(1)\n```", 1.0),
        (FormatReward(mode="code_block", language="python"), "```js\nf()\n```", 0.0),
        (FormatReward(mode="code_block", pattern=r"def \w+"), "```python\ndef f(): pass\n```", 1.0),
        (FormatReward(mode="code_block"), "no code here", 0.0),
    ],
)
def test_format_reward_modes(reward: FormatReward, text: str, expected: float) -> None:
    assert reward.score(text) == expected


def test_format_reward_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="pattern="):
        FormatReward()
    with pytest.raises(ConfigError, match="invalid regular expression"):
        FormatReward(pattern="[unclosed")
    with pytest.raises(ConfigError, match="unknown mode"):
        FormatReward(mode="xml")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="required_keys"):
        FormatReward(pattern="x", required_keys=["a"])


def test_combinators() -> None:
    lo, mid, hi = Const(0.2), Const(0.5), Const(0.9)
    assert MinReward([lo, mid, hi]).score("x") == 0.2
    assert MaxReward([lo, mid, hi]).score("x") == 0.9
    assert WeightedSumReward([(hi, 2.0), (lo, -1.0)]).score("x") == pytest.approx(1.6)
    assert WeightedSumReward([(hi, 2.0), (lo, 2.0)], normalize=True).score("x") == pytest.approx(0.55)
    assert ClampedReward(WeightedSumReward([(hi, 2.0)])).score("x") == 1.0
    assert ClampedReward(Const(-3), low=-1, high=1).score("x") == -1.0
    gated = ThresholdGatedReward(ExactMatchReward(), gates=[(FormatReward(mode="json"), 1.0)])
    assert gated.score('{"a": 1}', '{"a": 1}') == 1.0
    assert gated.score("four", "four") == 0.0  # right answer, not JSON: gated out
    assert ThresholdGatedReward(mid, threshold=0.6).score("x") == 0.0
    assert ThresholdGatedReward(hi, threshold=0.6, floor=-1).score("x") == 0.9
    assert ThresholdGatedReward(hi, gates=[(lo, 0.5)], floor=-1).score("x") == -1


def test_combinator_errors() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        MinReward([])
    with pytest.raises(ConfigError, match="not a reward"):
        MaxReward([object()])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="finite"):
        WeightedSumReward([(Const(1), math.inf)])
    with pytest.raises(ConfigError, match="pairs"):
        WeightedSumReward([Const(1)])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="gates"):
        ThresholdGatedReward(Const(1))
    with pytest.raises(ConfigError, match="low <= high"):
        ClampedReward(Const(1), low=1, high=0)
    with pytest.raises(EvaluationError, match="finite"):
        MinReward([Const(float("nan"))]).score("x")


def test_registry_and_protocol() -> None:
    names = set(PluginRegistry.list_names("reward"))
    assert {"exact_match", "format", "weighted_sum", "min", "max", "threshold_gated", "clamped"} <= names
    assert isinstance(PluginRegistry.create("reward", "exact_match_strict"), ExactMatchReward)
    assert isinstance(PluginRegistry.create("reward", "exact_match"), NormalizedExactMatchReward)
    assert PluginRegistry.create("reward", "format", mode="json").score("[]") == 1.0
    assert isinstance(ExactMatchReward(), Reward)


@pytest.mark.parametrize(
    ("completion", "text"),
    [
        ("plain", "plain"),
        ([{"role": "assistant", "content": "chat"}], "chat"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "last"}], "last"),
        (
            [
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                }
            ],
            "ab",
        ),
    ],
)
def test_completion_text_reads_strings_and_chat_messages(completion: object, text: str) -> None:
    assert completion_text(completion) == text


def test_grpo_adapter_follows_trl_batch_signature() -> None:
    fn = as_grpo_reward_func(ExactMatchReward())
    assert fn.__name__ == "exact_match_strict"  # a leaf is logged under its registry name
    assert as_grpo_reward_func(NormalizedExactMatchReward()).__name__ == "exact_match"
    # Exactly how TRL 1.16 GRPOTrainer._calculate_rewards calls a custom reward function.
    rewards = fn(
        prompts=["2+2?", "capital of France?"],
        completions=[[{"role": "assistant", "content": "4"}], [{"role": "assistant", "content": "Lyon"}]],
        completion_ids=[[1], [2]],
        reference=["4", "Paris"],
        other_column=[1, 2],
        trainer_state=None,
        log_extra=lambda *a: None,
        log_metric=lambda *a: None,
    )
    assert rewards == [1.0, 0.0]
    assert pickle.loads(pickle.dumps(fn))(prompts=["p"], completions=["x"], reference=["x"]) == [1.0]

    by_name = as_grpo_reward_func("format", mode="json", name="json_ok")
    assert by_name.__name__ == "json_ok"
    assert by_name(prompts=["p", "p"], completions=['{"a": 1}', "nope"], trainer_state=None) == [1.0, 0.0]

    answer = as_grpo_reward_func(ExactMatchReward(), reference_column="answer")
    assert answer(prompts=["p"], completions=["x"], answer=["x"]) == [1.0]
    with pytest.raises(EvaluationError, match=r"no 'reference' column \(columns: \['answer'\]\)"):
        fn(prompts=["p"], completions=["x"], answer=["x"], trainer_state=None)
    with pytest.raises(EvaluationError, match="1 values in column"):
        fn(prompts=["p", "q"], completions=["x", "y"], reference=["x"])
    with pytest.raises(ConfigError):
        as_grpo_reward_func(ExactMatchReward(), mode="json")


def test_trl_grpo_trainer_still_calls_reward_funcs_this_way() -> None:
    # Guards the adapter against a TRL upgrade that changes the call. Reads the installed source
    # instead of importing it (importing trl pulls in torch: seconds).
    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("trl not installed")
    source = (Path(spec.submodule_search_locations[0]) / "trainer" / "grpo_trainer.py").read_text()
    call = " ".join(source.split())
    assert (
        "reward_func( prompts=prompts, completions=completions, completion_ids=completion_ids_list, "
        "**reward_kwargs )" in call
    )
    assert "reward_kwargs = {key: [example[key] for example in inputs] for key in keys}" in call
