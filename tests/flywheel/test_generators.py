"""Variant generators: real, distinct rewordings, deterministic under a seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenir.data.loading import read_rows
from provenir.flywheel.config import GenerationConfig, ModelGeneratorConfig
from provenir.flywheel.generators import ModelParaphraser, RuleParaphraser, VariantGenerator, build_generators
from provenir.flywheel.quality import normalise

PROMPTS = [row["prompt"] for row in read_rows("builtin:sft-sample")]


def test_rule_variants_differ_from_every_original() -> None:
    gen = RuleParaphraser(seed=0)
    for prompt in PROMPTS:
        variants = gen.generate_variants(prompt, None, 4)
        assert len(variants) == 4, prompt
        assert len({normalise(v) for v in variants}) == 4, variants
        assert all(normalise(v) != normalise(prompt) for v in variants), (prompt, variants)


def test_rule_forms_are_real_paraphrases() -> None:
    cands = RuleParaphraser().candidates("What is the capital of Canada?")
    assert "Can you tell me what the capital of Canada is?" in cands
    assert "What is the capital city of Canada?" in cands  # synonym swap
    assert "Could you spell the word lamp in reverse?" in RuleParaphraser().candidates(
        "Spell the word lamp backwards."
    )
    assert "What should I wear, if it rains?" in RuleParaphraser().candidates(
        "If it rains, what should I wear?"
    )


def test_rules_are_seeded_per_prompt() -> None:
    a, b = RuleParaphraser(seed=1), RuleParaphraser(seed=1)
    assert [a.generate_variants(p, None, 3) for p in PROMPTS] == [
        b.generate_variants(p, None, 3) for p in PROMPTS
    ]
    # Per-prompt seeding: a prompt's variants do not depend on what was generated before it.
    assert RuleParaphraser(seed=1).generate_variants(PROMPTS[5], None, 3) == a.generate_variants(
        PROMPTS[5], None, 3
    )
    draws = {tuple(RuleParaphraser(seed=s).generate_variants(PROMPTS[1], None, 3)) for s in range(6)}
    assert len(draws) > 1


def test_build_generators_follows_the_config() -> None:
    gens = build_generators(GenerationConfig(generators=["rules", "model", "rules"]), seed=3)
    assert [g.name for g in gens] == ["rules", "model"]
    assert all(isinstance(g, VariantGenerator) for g in gens)


@pytest.mark.slow
def test_model_paraphraser_samples_from_the_tiny_model(tiny_model_path: Path) -> None:
    cfg = ModelGeneratorConfig(model_name_or_path=str(tiny_model_path), device="cpu", max_new_tokens=8)
    prompts = PROMPTS[:2]
    first = ModelParaphraser(cfg, seed=0).generate_many(prompts, 3)
    again = ModelParaphraser(cfg, seed=0).generate_many(prompts, 3)
    assert first == again  # seeded sampling
    assert any(first), "the model produced no usable text"
    for prompt, variants in zip(prompts, first, strict=True):
        assert all(isinstance(v, str) and v.strip() and v != prompt for v in variants)
        assert all("\n" not in v for v in variants)
