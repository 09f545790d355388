"""Variant generators: new wordings of a failed prompt, whose reference answer stays the same.

A generator is anything with a ``name`` and ``generate_variants(prompt, reference, n)``
(:class:`VariantGenerator`, a Protocol: no base class). Two ship with Provenir, both offline:

* :class:`RuleParaphraser` (``rules``): deterministic, seeded templated paraphrases: question
  forms ("What is X?" -> "Can you tell me what X is?"), synonyms, clause reordering, framings.
* :class:`ModelParaphraser` (``model``): paraphrases sampled from a local causal LM through a
  few-shot prompt (:func:`provenir.train.policy.sample`); torch loads on first use.

Example::

    RuleParaphraser(seed=0).generate_variants("What is the capital of Canada?", None, 2)
    # ['Tell me the capital of Canada.', 'Can you tell me what the capital of Canada is?']

Generators may return fewer than ``n`` variants, or poor ones: the quality filter decides.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from provenir.flywheel.config import GenerationConfig, ModelGeneratorConfig

__all__ = ["ModelParaphraser", "RuleParaphraser", "VariantGenerator", "build_generators"]


@runtime_checkable
class VariantGenerator(Protocol):
    """Produces up to ``n`` rewordings of ``prompt`` that keep ``reference`` a correct answer."""

    name: str

    def generate_variants(self, prompt: str, reference: str | None, n: int) -> list[str]:
        """Up to ``n`` distinct variants of ``prompt`` (never ``prompt`` itself)."""
        ...


# Whole-word synonym swaps, applied case-insensitively; kept small and meaning-preserving.
_SYNONYMS: dict[str, str] = {
    "big": "large",
    "small": "little",
    "fast": "quick",
    "quick": "fast",
    "color": "colour",
    "explain": "describe",
    "describe": "explain",
    "write": "compose",
    "give": "provide",
    "show": "demonstrate",
    "list": "enumerate",
    "plus": "added to",
    "minus": "take away",
    "times": "multiplied by",
    "capital": "capital city",
    "opposite": "antonym",
    "backwards": "in reverse",
    "largest": "biggest",
    "smallest": "tiniest",
    "begin": "start",
    "end": "finish",
    "help": "assist",
    "use": "utilise",
    "simple": "easy",
    "difficult": "hard",
}
_SYNONYM_RE = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, _SYNONYMS), key=len, reverse=True)) + r")\b", re.IGNORECASE
)
_QUESTION = re.compile(r"^(what|who|where|which)\s+(is|are|was|were)\s+(.+?)\s*\?$", re.IGNORECASE)
_WH = re.compile(r"^(how|why|when|where|what|who|which)\b.+\?$", re.IGNORECASE)
_YESNO = re.compile(r"^(is|are|does|do|can|could|should|will|would|did|has|have)\b.+\?$", re.IGNORECASE)
_IMPERATIVE = re.compile(r"^([A-Z][a-z]+)\b(.+?)[.!]?$")
_FRAMES = (
    "Question: {p}\nAnswer briefly.",
    "Please answer the following. {p}",
    "{p} Keep the answer short.",
    "Here is something I need help with: {p}",
)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _swap_synonyms(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        word = m.group(0)
        new = _SYNONYMS[word.lower()]
        return _upper_first(new) if word[:1].isupper() else new

    return _SYNONYM_RE.sub(repl, text)


def _question_forms(p: str) -> list[str]:
    m = _QUESTION.match(p)
    if m:
        wh, verb, rest = m.group(1).lower(), m.group(2).lower(), m.group(3)
        return [
            f"Can you tell me {wh} {rest} {verb}?",
            f"Tell me {wh} {rest} {verb}.",
            f"I would like to know {wh} {rest} {verb}.",
            f"Do you know {wh} {rest} {verb}?",
        ] + ([f"Name {rest}."] if wh == "what" and rest.lower().startswith("the ") else [])
    if _WH.match(p) or _YESNO.match(p):
        body = _lower_first(p[:-1].rstrip())
        return [f"I have a question: {body}?", f"Could you answer this: {body}?", f"Quick question, {body}?"]
    m = _IMPERATIVE.match(p)
    if m:
        body = _lower_first(p.rstrip(".! "))
        return [f"Please {body}.", f"Could you {body}?", f"I need you to {body}.", f"Can you {body}?"]
    return []


def _reorder_clauses(p: str) -> list[str]:
    # "If X, Y?" -> "Y, if X?": only for exactly two comma-separated clauses, where the swap reads.
    end = p[-1] if p[-1:] in "?.!" else ""
    parts = [s.strip() for s in p.rstrip("?.!").split(",")]
    if len(parts) != 2 or not all(parts):
        return []
    first, second = parts
    return [f"{_upper_first(second)}, {_lower_first(first)}{end}"]


class RuleParaphraser:
    """Deterministic templated paraphrases, shuffled by a seed.

    Every candidate rewrite of ``prompt`` (question forms, clause reordering, framings, each
    also with synonyms swapped) is built, duplicates and the prompt itself removed, and ``n`` are
    drawn with a RNG seeded by ``(seed, prompt)``: the same prompt gets the same variants
    whatever else is generated, which keeps a resumed flywheel identical to an uninterrupted one.
    """

    name = "rules"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def candidates(self, prompt: str) -> list[str]:
        """Every rewrite the rules can make of ``prompt``, in a fixed order (unique, not ``prompt``)."""
        p = " ".join(prompt.split())
        base = _question_forms(p) + _reorder_clauses(p) + [f.format(p=p) for f in _FRAMES]
        swapped = _swap_synonyms(p)
        if swapped != p:
            base = [swapped, *base, *(_question_forms(swapped) + [f.format(p=swapped) for f in _FRAMES[:2]])]
        seen = {p}
        out = []
        for c in base:
            if c not in seen:
                seen.add(c)
                out.append(c)
        return out

    def generate_variants(self, prompt: str, reference: str | None, n: int) -> list[str]:
        """``n`` rewrites drawn from :meth:`candidates` (fewer when there are fewer)."""
        digest = hashlib.sha256(f"{self.seed}\0{prompt}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        pool = self.candidates(prompt)
        return rng.sample(pool, min(n, len(pool)))

    def __repr__(self) -> str:
        return f"RuleParaphraser(seed={self.seed})"


#: Few-shot prompt for :class:`ModelParaphraser`; the model continues after "Rewrite:".
PARAPHRASE_PROMPT = (
    "Rewrite each question in different words, keeping its meaning.\n"
    "Question: What is the capital of France?\nRewrite: Which city is the capital of France?\n"
    "Question: Spell the word cat backwards.\nRewrite: Write the word cat in reverse order.\n"
    "Question: {prompt}\nRewrite:"
)


class ModelParaphraser:
    """Paraphrases sampled from a local causal LM (the policy, or any base model plus adapter).

    The model is loaded on the first call (``load_policy``) and kept. Sampling is seeded per
    prompt, like :class:`RuleParaphraser`, so results do not depend on batch composition.
    Only the first line of each completion is kept; empty ones and copies of the prompt are
    dropped, so fewer than ``n`` may come back.
    """

    name = "model"

    def __init__(
        self,
        config: ModelGeneratorConfig | None = None,
        *,
        seed: int = 0,
        model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        self.config = config if config is not None else ModelGeneratorConfig.model_validate({})
        self.seed = seed
        self._model, self._tokenizer = model, tokenizer

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (given to the constructor, or loaded by a call)."""
        return self._model is not None

    def load(self) -> tuple[Any, Any]:
        """The model and tokenizer, loaded on the first call and kept."""
        if self._model is None:
            from pathlib import Path

            from provenir.core.config import RunConfig
            from provenir.train.generation import load_policy

            run_config = RunConfig.from_dict(
                {"model_name_or_path": self.config.model_name_or_path, "device": self.config.device}
            )
            weights = Path(self.config.weights_dir) if self.config.weights_dir else None
            self._model, self._tokenizer, _ = load_policy(run_config, weights)
        return self._model, self._tokenizer

    def generate_variants(self, prompt: str, reference: str | None, n: int) -> list[str]:
        """Up to ``n`` sampled paraphrases of ``prompt``."""
        return self.generate_many([prompt], n)[0]

    def generate_many(self, prompts: Sequence[str], n: int) -> list[list[str]]:
        """Variants for several prompts; each prompt is sampled with its own seed."""
        from provenir.train.policy import sample

        model, tokenizer = self.load()
        out = []
        for prompt in prompts:
            digest = hashlib.sha256(f"{self.seed}\0{prompt}".encode()).digest()
            texts = sample(
                model,
                tokenizer,
                [PARAPHRASE_PROMPT.format(prompt=" ".join(prompt.split()))],
                self.config,
                n=n,
                seed=int.from_bytes(digest[:4], "big"),
            )[0]
            variants: list[str] = []
            for text in texts:
                line = text.strip().split("\n", 1)[0].strip()
                if line and line != prompt.strip() and line not in variants:
                    variants.append(line)
            out.append(variants)
        return out

    def __repr__(self) -> str:
        return f"ModelParaphraser(model={self.config.model_name_or_path!r}, seed={self.seed})"


def build_generators(config: GenerationConfig, seed: int = 0) -> list[VariantGenerator]:
    """The generators named in ``config.generators``, in order."""
    built: list[VariantGenerator] = []
    for name in dict.fromkeys(config.generators):  # a name listed twice would only duplicate variants
        built.append(RuleParaphraser(seed) if name == "rules" else ModelParaphraser(config.model, seed=seed))
    return built
