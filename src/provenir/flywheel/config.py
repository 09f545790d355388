"""FlywheelConfig: one typed config for mine failures -> generate variants -> filter -> augment.

YAML layout (every section optional except ``mining.eval_data``; defaults run offline)::

    name: flywheel-demo
    output_dir: artifacts                    # the flywheel lives in <output_dir>/flywheel/<name>
    seed: 0
    mining:
      eval_data: builtin:sft-sample          # the rows that were scored (prompt + reference/response)
      eval_result: runs/<id>/eval.json       # either an eval.json with per-item scores ...
      predictions: preds.jsonl               # ... or predictions, scored here with `metric`
      metric: token_f1
      threshold: 0.5                         # items scoring below this are failures
    generation:
      generators: [rules]                    # rules (templated paraphrases) and/or model
      variants_per_failure: 4
    filter:
      judge: {name: reward, reward: token_f1}
      min_judge_score: 2.0                   # on the 1-10 rubric scale
      max_similarity: 0.8                    # n-gram Jaccard above this is a near-duplicate
    augment:
      train_path: builtin:sft-sample         # default: mining.eval_data
    executor: {executor: local}              # or ray: {executor: ray, ray: {num_workers: 2}}

Mining the final held-out test set and training on its variants leaks the test set into
training; point ``mining.eval_data`` at a training or development split.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from provenir.core.config import TINY_MODEL_ID, ConfigSection, ExecutorConfig
from provenir.core.hashing import sha256_json
from provenir.core.sampling import SamplingConfig
from provenir.eval.judge.config import JudgeConfig

__all__ = [
    "AugmentConfig",
    "FilterConfig",
    "FlywheelConfig",
    "FlywheelJudgeConfig",
    "GenerationConfig",
    "MiningConfig",
    "ModelGeneratorConfig",
]


class MiningConfig(ConfigSection):
    """Where the scored items come from and what counts as a failure."""

    eval_data: str = Field(
        ...,
        min_length=1,
        description="Dataset that was scored: file, folder or builtin:<name>, one row per item.",
    )
    eval_result: str | None = Field(
        None, description="eval.json with per-item scores for eval_data (from `provenir eval`)."
    )
    predictions: str | None = Field(
        None,
        description="Predictions JSONL for eval_data, scored here with `metric` (instead of eval_result).",
    )
    metric: str = Field("token_f1", min_length=1, description="Metric whose per-item score decides failures.")
    threshold: float = Field(0.5, description="Items scoring strictly below this are failures.")
    max_failures: int | None = Field(None, gt=0, description="Keep only the N lowest-scoring failures.")
    prompt_field: str = Field("prompt", min_length=1, description="Column of eval_data holding the prompt.")

    @model_validator(mode="after")
    def _one_source(self) -> MiningConfig:
        if (self.eval_result is None) == (self.predictions is None):
            raise ValueError("set exactly one of eval_result (an eval.json) or predictions (a JSONL file)")
        return self


class ModelGeneratorConfig(SamplingConfig):
    """The local policy that samples paraphrases (generator ``model``), and how it samples."""

    model_name_or_path: str = Field(
        TINY_MODEL_ID, min_length=1, description="Base model (local path or built-in)."
    )
    weights_dir: str | None = Field(
        None, description="A run's adapter/ or model/ folder on top of the base model."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to generate.")


GeneratorName = Literal["rules", "model"]


def _default_generators() -> list[GeneratorName]:
    return ["rules"]


class GenerationConfig(ConfigSection):
    """How variants of each failed prompt are produced."""

    generators: list[GeneratorName] = Field(
        default_factory=_default_generators,
        min_length=1,
        description="rules: seeded templated paraphrases (question forms, synonyms, clause order); "
        "model: paraphrases sampled from a local model. Each is asked for variants_per_failure.",
    )
    variants_per_failure: int = Field(
        4, gt=0, description="Variants requested from each generator per failure."
    )
    model: ModelGeneratorConfig = Field(default_factory=ModelGeneratorConfig)


class FlywheelJudgeConfig(JudgeConfig):
    """The judge that scores each variant as a paraphrase of its original prompt.

    With ``name: reward`` the reference is the original prompt: the metric measures how much of
    it the variant kept.
    """

    criteria: list[str] = Field(
        default_factory=lambda: ["keeps the meaning and answer of the original"],
        min_length=1,
        description="Rubric criteria; the variant's judge score is their mean (1-10).",
    )


class FilterConfig(ConfigSection):
    """The quality filter every variant must pass."""

    judge: FlywheelJudgeConfig = Field(default_factory=FlywheelJudgeConfig)
    min_judge_score: float = Field(
        2.0, ge=1, le=10, description="Drop variants whose judge score is below this."
    )
    ngram: int = Field(3, gt=0, description="Words per n-gram for near-duplicate detection.")
    max_similarity: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Drop a variant whose n-gram Jaccard similarity to its original or to an accepted variant "
        "is at least this (exact duplicates after normalisation are always dropped).",
    )
    scan_pii: bool = Field(True, description="Drop variants in which the PII scanner finds anything.")
    scan_secrets: bool = Field(True, description="Drop variants in which the secret scanner finds anything.")
    max_accepted_per_failure: int | None = Field(
        None, gt=0, description="Keep at most N variants per failure (highest judge score first)."
    )


class AugmentConfig(ConfigSection):
    """The augmented training set: original training rows plus accepted variants."""

    train_path: str | None = Field(None, description="Training rows to augment; default: mining.eval_data.")
    prompt_field: str = Field("prompt", min_length=1, description="Prompt column written for variants.")
    response_field: str = Field("response", min_length=1, description="Response column written for variants.")


class FlywheelConfig(ConfigSection):
    """The whole flywheel. See the module docstring for the YAML layout."""

    name: str = Field(
        "flywheel", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Flywheel name (folder)."
    )
    output_dir: str = Field("artifacts", min_length=1, description="Artifacts root.")
    seed: int = Field(0, ge=0, description="Seed of every generator (rules and sampling).")
    mining: MiningConfig
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    executor: ExecutorConfig = Field(
        default_factory=ExecutorConfig,
        description="Where model paraphrasing and judging run (local or ray); never changes a result, "
        "so it is in no stage fingerprint or config hash.",
    )

    def section_hash(self, *sections: str) -> str:
        """SHA-256 of the named sections (plus the seed): what a stage's output depends on."""
        dumped = self.model_dump(mode="json")
        return sha256_json({"seed": self.seed, **{s: dumped[s] for s in sections}})
