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
    executor: {executor: local}              # or ray: {executor: ray, ray: {num_workers: 2}}
    dpo:                                     # a RunConfig: the policy and DPO settings
      model_name_or_path: provenir/tiny-llama
      max_steps: 10
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from provenir.core.config import ConfigSection, ExecutorConfig, RunConfig
from provenir.core.sampling import SamplingConfig
from provenir.eval.judge.config import JudgeConfig, build_judge


class GenerationConfig(SamplingConfig):
    """How the current policy samples candidate responses."""

    num_variants: int = Field(4, ge=2, description="Responses sampled per prompt (N).")
    max_new_tokens: int = Field(24, gt=0, description="Tokens generated per response.")


class JudgeSection(JudgeConfig):
    """Which judge ranks the candidates, and how it is called."""

    cache: bool = Field(True, description="Cache verdicts on disk (never failures).")
    max_concurrency: int = Field(16, gt=0, description="Pairs judged at once.")

    def build(self, references: Mapping[str, str], cache_dir: Path) -> Any:
        """The judge, cached in ``cache_dir`` when ``cache`` is on (see :func:`build_judge`)."""
        return build_judge(self, references, cache_dir=cache_dir if self.cache else None)


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
    executor: ExecutorConfig = Field(
        default_factory=ExecutorConfig,
        description="Where generation, judging and evaluation run (local or ray); never changes a result.",
    )
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
