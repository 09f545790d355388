"""Generation and pairwise judging fanned out over workers that load the model (or judge) once.

Rows are cut into the generation batches one process would use; each batch renders its prompts,
generates with the batch's own seed (:func:`provenir.train.generation.batch_seed`, derived from
the index of its first row, never from the worker) and comes back in input order. So the
predictions and samples of ``executor: ray`` are the local run's, byte for byte::

    with open_executor(config) as ex:
        predictions = generate_rows(ex, run_config, adapter_dir, rows, max_new_tokens=32)

The flywheel's model paraphrases (:func:`paraphrase_prompts`) and rubric scores
(:func:`judge_rubric`) fan out the same way: each worker loads the paraphrasing model, or builds
the judge, once; both are seeded per prompt or are functions of the item alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from provenir.core.config import RunConfig
from provenir.scale.executor import Executor


@dataclass(frozen=True)
class _LoadPolicy:
    """A worker's one-time state: the policy's model and tokenizer."""

    config: RunConfig
    weights_dir: str | None

    def __call__(self) -> tuple[Any, Any]:
        from provenir.train.generation import load_policy

        model, tokenizer, _ = load_policy(self.config, Path(self.weights_dir) if self.weights_dir else None)
        return model, tokenizer


@dataclass(frozen=True)
class _GenerateBatch:
    """Render a batch's prompts with the run's template and generate, seeded by the batch's position."""

    template: str
    max_new_tokens: int
    batch_size: int
    settings: Mapping[str, Any]
    num_return_sequences: int
    seed: int | None
    strip: bool
    as_trained: bool

    def __call__(self, state: tuple[Any, Any], item: tuple[int, list[dict[str, Any]]]) -> list[list[str]]:
        from provenir.data.templates.rendering import template_prompt
        from provenir.train.generation import generate

        model, tokenizer = state
        start, rows = item
        prompts = [template_prompt(self.template, tokenizer, dict(r)) for r in rows]
        out = generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            num_return_sequences=self.num_return_sequences,
            seed=self.seed,
            strip=self.strip,
            first_index=start,
            **self.settings,
        )
        if self.as_trained:
            from provenir.rlaif.pipeline import _completion_text

            keep = _completion_text(self.template, tokenizer)
            out = [[keep(t) for t in texts] for texts in out]
        return out


def generate_rows(
    executor: Executor,
    config: RunConfig,
    weights_dir: str | Path | None,
    rows: Sequence[Mapping[str, Any]],
    *,
    max_new_tokens: int,
    batch_size: int = 8,
    sampling: Mapping[str, Any] | None = None,
    n: int = 1,
    seed: int | None = None,
    strip: bool = True,
    as_trained: bool = False,
) -> list[list[str]]:
    """``n`` completions per row of ``config``'s model (plus ``weights_dir``), in row order.

    ``sampling`` holds ``temperature``/``top_p`` and turns sampling on (greedy without it);
    ``as_trained`` stores samples as an RLAIF preference pair must hold them.
    """
    settings: dict[str, Any] = {"do_sample": False}
    if sampling is not None:
        settings = {"do_sample": True, **sampling}
    call = _GenerateBatch(
        config.data.template, max_new_tokens, batch_size, settings, n, seed, strip, as_trained
    )
    batches = [
        (start, [dict(r) for r in rows[start : start + batch_size]])
        for start in range(0, len(rows), batch_size)
    ]
    factory = _LoadPolicy(config, str(weights_dir) if weights_dir is not None else None)
    outputs = executor.map_with_workers(factory, call, batches, stage="generate")
    return [texts for batch in outputs for texts in batch]


@dataclass(frozen=True)
class _BuildJudge:
    """A worker's judge, built once (its client, its cache folder)."""

    build: Any  # a picklable callable returning an LLMJudge

    def __call__(self) -> Any:
        return self.build()


def _judge_batch(judge: Any, items: list[tuple[str, str, str]], *, max_concurrency: int) -> list[Any]:
    from provenir.eval.judge import score_pairwise_batch

    return score_pairwise_batch(
        judge, items, max_concurrency=max_concurrency, progress=False, return_exceptions=True
    )


def judge_pairs(
    executor: Executor,
    build_judge: Any,
    items: Sequence[tuple[str, str, str]],
    *,
    max_concurrency: int,
    batch_size: int = 64,
) -> list[Any]:
    """Pairwise verdicts (or the judge's errors) for ``(prompt, a, b)`` items, in input order.

    ``build_judge`` is a picklable callable; each worker calls it once. Verdicts depend on the
    item alone (a judge is a function of the pair), so any split gives the same list.
    """
    batches = [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
    call = partial(_judge_batch, max_concurrency=max_concurrency)
    outputs = executor.map_with_workers(_BuildJudge(build_judge), call, batches, stage="judge")
    return [verdict for batch in outputs for verdict in batch]


@dataclass(frozen=True)
class _LoadParaphraser:
    """A worker's flywheel paraphraser, its model loaded once."""

    config: Any  # a provenir.flywheel.config.ModelGeneratorConfig
    seed: int

    def __call__(self) -> Any:
        from provenir.flywheel.generators import ModelParaphraser

        paraphraser = ModelParaphraser(self.config, seed=self.seed)
        paraphraser.load()
        return paraphraser


def _paraphrase_batch(paraphraser: Any, prompts: list[str], *, n: int) -> list[list[str]]:
    return paraphraser.generate_many(prompts, n)


def paraphrase_prompts(
    executor: Executor, config: Any, prompts: Sequence[str], *, n: int, seed: int
) -> list[list[str]]:
    """Up to ``n`` model paraphrases per prompt (the flywheel's ``model`` generator), in prompt order.

    ``config`` is the generator's :class:`~provenir.flywheel.config.ModelGeneratorConfig`; prompts
    go in batches of its ``batch_size``. Each prompt is sampled with a seed derived from ``seed``
    and the prompt alone (:class:`~provenir.flywheel.generators.ModelParaphraser`), so any split
    gives the same variants.
    """
    size = config.batch_size
    batches = [list(prompts[i : i + size]) for i in range(0, len(prompts), size)]
    call = partial(_paraphrase_batch, n=n)
    outputs = executor.map_with_workers(_LoadParaphraser(config, seed), call, batches, stage="generate")
    return [variants for batch in outputs for variants in batch]


def _rubric_batch(judge: Any, items: list[tuple[str, str]], *, criteria: tuple[str, ...]) -> list[float]:
    return [float(judge.score_rubric(prompt, response, list(criteria)).mean) for prompt, response in items]


def judge_rubric(
    executor: Executor,
    build_judge: Callable[[], Any],
    items: Sequence[tuple[str, str]],
    *,
    criteria: Sequence[str],
    batch_size: int = 16,
) -> list[float]:
    """The judge's mean rubric score of each ``(prompt, response)`` item, in input order.

    ``build_judge`` is a picklable callable; each worker calls it once. A rubric score depends on
    the item alone, so any split gives the same list; a judge's error propagates (as a local
    judge's would).
    """
    batches = [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
    call = partial(_rubric_batch, criteria=tuple(criteria))
    outputs = executor.map_with_workers(_BuildJudge(build_judge), call, batches, stage="judge")
    return [score for batch in outputs for score in batch]
