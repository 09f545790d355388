"""Verdict types, tolerant parsing, position-bias reconciliation, and the offline judges."""

from __future__ import annotations

import subprocess
import sys

import pytest

from provenir.core.errors import JudgeError
from provenir.eval.judge import (
    CachedJudge,
    LLMJudge,
    Preference,
    RewardJudge,
    RubricResult,
    StubJudge,
    agreement_rate,
    combine_orders,
    score_pairwise_batch,
)
from provenir.eval.judge.parsing import VerdictParseError, pairwise_from_text, rubric_from_text
from provenir.plugins.registry import PluginRegistry
from provenir.rewards.primitives import ExactMatchReward, FormatReward

# ----------------------------------------------------------------------------- types


def test_preference_repr_matches_seed_and_validates() -> None:
    pref = Preference(preferred="a", confidence=0.91, rationale="Response A is more precise...")
    assert (
        repr(pref) == "Preference(preferred='a', confidence=0.91, rationale='Response A is more precise...')"
    )
    assert pref.swapped().preferred == "b" and pref.swapped().swapped() == pref
    with pytest.raises(JudgeError, match="preferred"):
        Preference("c", 0.5)  # type: ignore[arg-type]
    for bad in (1.5, -0.1, float("nan"), True):
        with pytest.raises(JudgeError, match="confidence"):
            Preference("a", bad)
    assert Preference.from_dict(pref.to_dict()) == pref


def test_rubric_result_is_a_mapping_on_the_1_to_10_scale() -> None:
    result = RubricResult({"clarity": 10, "accuracy": 1})
    assert result["clarity"] == 10.0 and set(result) == {"clarity", "accuracy"} and len(result) == 2
    assert result.mean == 5.5
    assert result.normalized() == {"clarity": 1.0, "accuracy": 0.0}
    assert RubricResult.from_dict(result.to_dict()) == result
    with pytest.raises(JudgeError, match="clarity"):
        RubricResult({"clarity": 11})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"preferred": "a", "confidence": 0.9, "rationale": "x"}', "a"),
        ('```json\n{"preferred": "B", "confidence": 0.7, "rationale": "x"}\n```', "b"),
        ('I think {"preferred": " Tie ", "confidence": 0.5, "rationale": "same"} is fair.', "tie"),
        ('Notes {"aside": 1} then {"preferred": "a", "confidence": 1, "rationale": "x"}', "a"),
    ],
)
def test_pairwise_parsing_tolerates_fences_case_and_prose(text: str, expected: str) -> None:
    assert pairwise_from_text(text).preferred == expected


@pytest.mark.parametrize(
    "text",
    [
        "Response A is clearly better.",  # prose only: never turned into a verdict
        '{"preferred": "a", "confidence": 0.9, "rationale": "cut',  # broken JSON
        '{"preferred": "c", "confidence": 0.9}',  # outside the enum
        '{"preferred": "a", "confidence": 91}',  # a percentage is not in [0, 1]
        '{"preferred": "a"}',  # missing confidence
        "[1, 2, 3]",
    ],
)
def test_pairwise_parsing_rejects_what_is_not_a_valid_verdict(text: str) -> None:
    with pytest.raises(VerdictParseError):
        pairwise_from_text(text)


def test_rubric_parsing_requires_every_criterion() -> None:
    ok = (
        '{"scores": [{"criterion": "Clarity", "score": 7, "rationale": "ok"}, '
        '{"criterion": "x", "score": 2}]}'
    )
    result = rubric_from_text(ok, ["clarity"])
    assert dict(result) == {"clarity": 7.0}
    assert rubric_from_text('{"scores": {"clarity": 3}}', ["clarity"])["clarity"] == 3.0
    with pytest.raises(VerdictParseError, match="does not score"):
        rubric_from_text(ok, ["clarity", "conciseness"])
    with pytest.raises(VerdictParseError, match="1, 10"):
        rubric_from_text('{"scores": {"clarity": 0}}', ["clarity"])


def test_combine_orders_rules() -> None:
    a, b, tie = Preference("a", 0.8, "A"), Preference("b", 0.6, "B"), Preference("tie", 0.4, "T")
    agreed = combine_orders(a, Preference("a", 0.6, "A2"))
    assert (agreed.preferred, agreed.confidence, agreed.agreed) == ("a", pytest.approx(0.7), True)
    half = combine_orders(tie, b)
    assert (half.preferred, half.confidence, half.agreed) == ("b", pytest.approx(0.25), False)
    biased = combine_orders(a, b)
    assert (biased.preferred, biased.confidence, biased.agreed) == ("tie", 0.0, False)
    assert agreement_rate([agreed, half, biased, Preference("a", 1.0)]) == pytest.approx(1 / 3)
    assert agreement_rate([Preference("a", 1.0)]) is None


# ------------------------------------------------------------------------------ stub


def test_stub_judge_is_deterministic_and_order_consistent() -> None:
    judge = StubJudge()
    assert isinstance(judge, LLMJudge)
    long, short = "LoRA adds low-rank adapters to frozen weights.", "An adapter."
    forward, backward = (
        judge.score_pairwise("What is LoRA?", long, short),
        judge.score_pairwise("What is LoRA?", short, long),
    )
    assert (
        forward.preferred == "a" and backward.preferred == "b" and forward.confidence == backward.confidence
    )
    assert judge.score_pairwise("q", "x y", "y x").preferred == "tie"
    scores = judge.score_rubric("q", long, criteria=["factual accuracy", "clarity", "conciseness"])
    assert scores == judge.score_rubric("q", long, criteria=["factual accuracy", "clarity", "conciseness"])
    assert all(1 <= v <= 10 for v in scores.values())
    with pytest.raises(JudgeError):
        judge.score_rubric("q", long, criteria=[])
    with pytest.raises(JudgeError):
        judge.score_rubric("q", long, criteria="clarity")  # type: ignore[arg-type]
    with pytest.raises(JudgeError):
        judge.score_pairwise("q", None, "x")  # type: ignore[arg-type]


def test_batch_keeps_order_and_collects_or_raises_errors() -> None:
    items = [("q", "a " * i, "b " * (5 - i)) for i in range(10)]
    prefs = score_pairwise_batch(StubJudge(), items, max_concurrency=4, progress=False)
    assert prefs == [StubJudge().score_pairwise(*it) for it in items]

    class Flaky(StubJudge):
        def score_pairwise(self, prompt: str, a: str, b: str) -> Preference:
            if a == "boom":
                raise JudgeError("no verdict")
            return super().score_pairwise(prompt, a, b)

    bad = [*items[:3], ("q", "boom", "x"), *items[3:]]
    mixed = score_pairwise_batch(Flaky(), bad, max_concurrency=2, progress=False, return_exceptions=True)
    assert isinstance(mixed[3], JudgeError) and all(
        isinstance(p, Preference) for i, p in enumerate(mixed) if i != 3
    )
    with pytest.raises(JudgeError, match="item 3"):
        score_pairwise_batch(Flaky(), bad, max_concurrency=2, progress=False)
    with pytest.raises(JudgeError, match="needs prompt, a, b"):
        score_pairwise_batch(StubJudge(), [{"prompt": "q", "a": "x"}], progress=False)


def test_batch_progress_bar_renders(capsys: pytest.CaptureFixture[str]) -> None:
    score_pairwise_batch(StubJudge(), [("q", "a", "b b")] * 3, progress=True)
    assert "3/3" in capsys.readouterr().err


# ------------------------------------------------------------------------ reward judge


def test_reward_judge_prefers_the_reference_match_offline() -> None:
    judge = RewardJudge(ExactMatchReward(), references={"2+2?": "4"})
    pref = judge.score_pairwise("2+2?", "5", "4")
    assert (pref.preferred, pref.confidence, pref.agreed) == ("b", 1.0, None)
    assert judge.score_pairwise("2+2?", "4", "4").preferred == "tie"
    assert judge.score_pairwise("other", "x", "y", reference="y").preferred == "b"
    with pytest.raises(JudgeError, match="needs a reference"):
        judge.score_pairwise("unknown prompt", "4", "5")
    by_name = RewardJudge("exact_match", references=lambda p: "4")
    assert by_name.score_pairwise("anything", "4", "3").preferred == "a"
    rubric = RewardJudge(ExactMatchReward(), criterion_rewards={"format": FormatReward(mode="json")})
    scores = rubric.score_rubric("q", '{"x": 1}', ["correct", "format"], reference="nope")
    assert dict(scores) == {"correct": 1.0, "format": 10.0}


def test_registry_lists_every_judge_and_creates_them() -> None:
    assert {"stub", "cached", "anthropic", "openai", "reward"} <= set(PluginRegistry.list_names("judge"))
    assert isinstance(PluginRegistry.create("judge", "stub"), StubJudge)
    assert PluginRegistry.get("judge", "cached") is CachedJudge


def test_importing_judges_does_not_import_the_sdks() -> None:
    code = (
        "import sys, provenir, provenir.eval.judge, provenir.rewards.primitives; "
        "print(sorted(m for m in ('anthropic', 'openai', 'httpx2', 'rich', 'trl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
