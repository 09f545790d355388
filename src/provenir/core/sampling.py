"""SamplingConfig: how a policy samples text, shared by RLAIF's candidates and the flywheel's paraphrases."""

from __future__ import annotations

from pydantic import Field

from provenir.core.config import ConfigSection

__all__ = ["SamplingConfig"]


class SamplingConfig(ConfigSection):
    """Sampling settings (``temperature``, ``top_p``, ``max_new_tokens``, ``batch_size``).

    A pipeline's generation section extends it with its own fields (how many samples, which
    model) and may change a default (RLAIF samples 24 new tokens, the flywheel 32).
    """

    temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(32, gt=0, description="Tokens generated per sample.")
    batch_size: int = Field(8, gt=0, description="Prompts per generation batch.")
