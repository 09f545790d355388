"""RLAIFConfig: one typed config for the generate -> judge -> pairs -> DPO -> eval -> gate loop.

YAML layout (every section optional; defaults run fully offline on the built-in model)::

    name: rlaif-demo
    n_iterations: 2
    prompts_path: builtin:prompts-sample     # prompts (+ reference) to generate for
    eval_split: 0.25                         # held out from prompts_path, never generated for
    generation: {num_variants: 4, temperature: 1.0, top_p: 0.95, max_new_tokens: 24}
    judge: {name: reward, reward: token_f1}  # offline; or name: anthropic, model: ...
    pairs: {min_confidence: 0.05, max_pairs_per_prompt: 2}
    gate: {tolerance: 0.02, metrics: [token_f1]}
    dpo:                                     # a RunConfig: the policy and DPO settings
      model_name_or_path: provenir/tiny-llama
      max_steps: 10
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from provenir.core.config import ConfigSection, RunConfig


class GenerationConfig(ConfigSection):
    """How the current policy samples candidate responses."""

    num_variants: int = Field(4, ge=2, description="Responses sampled per prompt (N).")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(24, gt=0, description="Tokens generated per response.")
    batch_size: int = Field(8, gt=0, description="Prompts per generation batch.")


class JudgeSection(ConfigSection):
    """Which judge ranks the candidates."""

    name: str = Field(
        "reward", description="Registered judge: reward (offline) | stub | anthropic | openai | plugin."
    )
    model: str | None = Field(None, description="Model id for API judges.")
    reward: str = Field(
        "token_f1",
        description="With name: reward, a registered reward or eval metric to score against the reference.",
    )
    base_url: str | None = Field(None, description="API base URL (API judges).")
    cache: bool = Field(True, description="Cache verdicts on disk (never failures).")
    max_concurrency: int = Field(16, gt=0, description="Pairs judged at once.")
    min_kappa: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="Refuse the judge unless its stored calibration (`provenir judge calibrate`) has "
        "Cohen's kappa against human labels at least this high.",
    )


class PairsConfig(ConfigSection):
    """Rules turning verdicts into (chosen, rejected) pairs."""

    comparison: Literal["all", "adjacent"] = Field(
        "all", description="Judge every pair of variants, or only neighbours (N-1 per prompt)."
    )
    min_confidence: float = Field(0.0, ge=0, le=1, description="Drop verdicts below this confidence.")
    drop_disagreements: bool = Field(
        True, description="Drop verdicts whose two orders disagreed (position bias)."
    )
    max_pairs_per_prompt: int = Field(
        2, gt=0, description="Keep at most this many pairs per prompt (most confident first)."
    )


class GateSection(ConfigSection):
    """Regression gate between iterations."""

    tolerance: float = Field(0.02, ge=0, description="Allowed drop of each metric.")
    mode: Literal["absolute", "relative"] = Field(
        "absolute", description="Tolerance as an absolute drop or relative to the previous value."
    )
    metrics: list[str] = Field(
        default_factory=lambda: ["token_f1"], min_length=1, description="Metrics the gate checks."
    )


class RLAIFConfig(ConfigSection):
    """The whole pipeline. ``dpo`` is an ordinary :class:`RunConfig` (its data path is replaced per iteration)."""

    name: str = Field(
        "rlaif", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Pipeline name (folder name)."
    )
    seed: int = Field(0, ge=0, description="Seed for splitting, sampling and training.")
    output_dir: str = Field(
        "artifacts", description="Artifacts root; the pipeline lives in <output_dir>/rlaif/<name>."
    )
    n_iterations: int = Field(2, gt=0, description="Maximum iterations.")
    prompts_path: str = Field(
        "builtin:prompts-sample", description="Prompts (with optional reference) to generate for."
    )
    eval_path: str | None = Field(
        None, description="Held-out eval data; default: eval_split of prompts_path."
    )
    eval_split: float = Field(
        0.25, gt=0, lt=1, description="Fraction of prompts_path held out when eval_path is unset."
    )
    eval_metrics: list[str] = Field(default_factory=lambda: ["exact_match", "token_f1"], min_length=1)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    judge: JudgeSection = Field(default_factory=JudgeSection)
    pairs: PairsConfig = Field(default_factory=PairsConfig)
    gate: GateSection = Field(default_factory=GateSection)
    dpo: RunConfig = Field(
        default_factory=lambda: RunConfig(
            algorithm="dpo", max_steps=10, batch_size=4, learning_rate=5e-4, gradient_checkpointing=False
        )
    )

    @model_validator(mode="after")
    def _consistent(self) -> RLAIFConfig:
        if self.dpo.algorithm != "dpo":
            raise ValueError("dpo.algorithm must be dpo (the pipeline trains on preference pairs)")
        missing = [m for m in self.gate.metrics if m not in self.eval_metrics]
        if missing:
            raise ValueError(f"gate.metrics {missing} must also be in eval_metrics")
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RLAIFConfig:
        """Validate a mapping; the ``dpo`` section defaults its algorithm to dpo."""
        data = dict(data)
        if isinstance(data.get("dpo"), dict):
            data["dpo"] = {"algorithm": "dpo", **data["dpo"]}
        return super().from_dict(data)
