"""Sampling from and evaluating a policy: the one path RLAIF, the flywheel and `provenir eval` share."""

from __future__ import annotations

from pathlib import Path

from provenir.core.config import RunConfig
from provenir.core.sampling import SamplingConfig
from provenir.eval.harness import MultiMetricEvaluator
from provenir.rlaif.config import GenerationConfig
from provenir.train.generation import generate_predictions, load_policy
from provenir.train.policy import evaluate_policy, sample

ROWS = [
    {"prompt": "What is 2 plus 3?", "reference": "2 plus 3 is 5."},
    {"prompt": "What is 7 plus 1?", "reference": "7 plus 1 is 8."},
]


def test_sample_is_seeded_and_takes_only_the_sampling_fields(tiny_model_path: Path) -> None:
    config = RunConfig(model_name_or_path=str(tiny_model_path), device="cpu")
    model, tokenizer, _ = load_policy(config)
    prompts = [r["prompt"] for r in ROWS]
    # A pipeline's section (here RLAIF's, with num_variants) samples exactly as its sampling fields say.
    section = GenerationConfig(max_new_tokens=6, num_variants=3)
    first = sample(model, tokenizer, prompts, section, n=3, seed=7)
    assert [len(v) for v in first] == [3, 3]
    assert sample(model, tokenizer, prompts, SamplingConfig(max_new_tokens=6), n=3, seed=7) == first
    assert sample(model, tokenizer, prompts, section, n=3, seed=8) != first


def test_evaluate_policy_scores_the_greedy_predictions(tiny_model_path: Path) -> None:
    config = RunConfig.from_dict(
        {"model_name_or_path": str(tiny_model_path), "device": "cpu", "data": {"template": "raw_completion"}}
    )
    result = evaluate_policy(config, None, ROWS, ["token_f1"], max_new_tokens=6, n_bootstrap=10)
    model, tokenizer, _ = load_policy(config)
    # raw_completion renders the prompt as is, so the same greedy predictions score the same.
    predictions = generate_predictions(model, tokenizer, [r["prompt"] for r in ROWS], max_new_tokens=6)
    expected = MultiMetricEvaluator(["token_f1"], n_bootstrap=10).evaluate(ROWS, predictions)
    assert result.predictions == predictions
    assert result.metrics["token_f1"].scores == expected.metrics["token_f1"].scores
