"""Running a policy: sampling from it and evaluating it, shared by RLAIF, the flywheel and ``provenir eval``.

Lives in ``train`` because it loads models (:mod:`provenir.train.generation`); the scoring is
:mod:`provenir.eval`, which never imports torch.

::

    result = evaluate_policy(config, Path("runs/<id>/adapter"), rows, ["exact_match"], max_new_tokens=32)
    result.metrics["exact_match"].mean
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenir.core.config import RunConfig
from provenir.core.sampling import SamplingConfig
from provenir.eval.bootstrap import DEFAULT_RESAMPLES
from provenir.eval.harness import ContinuousInterval, EvalResult, MultiMetricEvaluator

if TYPE_CHECKING:
    from provenir.scale.executor import Executor

__all__ = ["evaluate_policy", "sample"]


def sample(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    config: SamplingConfig,
    *,
    n: int,
    seed: int,
    strip: bool = True,
) -> list[list[str]]:
    """``n`` sampled completions per prompt, with ``config``'s settings and ``seed`` (see ``generate``)."""
    from provenir.train.generation import generate

    # SamplingConfig's fields are generate's own arguments; a pipeline's subclass adds others.
    settings = config.model_dump(include=set(SamplingConfig.model_fields))
    return generate(
        model, tokenizer, prompts, num_return_sequences=n, do_sample=True, seed=seed, strip=strip, **settings
    )


def evaluate_policy(
    config: RunConfig,
    weights_dir: Path | None,
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int = 8,
    n_bootstrap: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    continuous_interval: ContinuousInterval = "percentile",
    executor: Executor | None = None,
) -> EvalResult:
    """Generate greedily with ``config``'s model (plus a run's ``weights_dir``) on ``rows`` and score it.

    Prompts are rendered with ``config.data.template``; predictions are kept in the result.
    ``continuous_interval``: ``"percentile"`` or ``"bca"`` bootstrap for continuous metrics.
    ``executor`` (:mod:`provenir.scale.executor`) generates the batches elsewhere, on workers
    that each load the model once; the predictions are the same.
    """
    if executor is not None and executor.name != "local":
        from provenir.scale.generation import generate_rows

        outputs = generate_rows(
            executor, config, weights_dir, rows, max_new_tokens=max_new_tokens, batch_size=batch_size
        )
        predictions = [texts[0] for texts in outputs]
    else:
        from provenir.data.templates.rendering import template_prompt
        from provenir.train.generation import generate_predictions, load_policy

        model, tokenizer, _ = load_policy(config, weights_dir)
        prompts = [template_prompt(config.data.template, tokenizer, dict(r)) for r in rows]
        predictions = generate_predictions(
            model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size
        )
    evaluator = MultiMetricEvaluator(
        list(metrics),
        n_bootstrap=n_bootstrap,
        seed=seed,
        keep_predictions=True,
        continuous_interval=continuous_interval,
    )
    return evaluator.evaluate(list(rows), predictions)
