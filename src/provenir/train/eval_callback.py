"""EvalCallback: generate with the model being trained, score it, log it, stop when it stops improving.

::

    from provenir.eval.harness import MultiMetricEvaluator
    from provenir.train.eval_callback import EvalCallback, EvalCallbackConfig

    callback = EvalCallback(
        config=EvalCallbackConfig(
            eval_every_n_steps=100,
            early_stopping_patience=3,
            regression_tolerance=0.02,
        ),
        evaluator=MultiMetricEvaluator(),
        eval_dataset=eval_ds,
    )
    trainer.add_callback(callback)

Every ``eval_every_n_steps`` optimiser steps (and once at the end of training) the callback
renders each eval row's prompt, generates greedily in left-padded batches with the trainer's
own model, scores the generations against the rows' references with the evaluator, and appends
``eval/<metric>`` (mean, ``_ci_lower``, ``_ci_upper``) to ``state.log_history`` so every
reporting integration sees it. An evaluation improves when the tracked metric's mean beats the
best so far; after ``early_stopping_patience`` evaluations in a row without improvement the
callback sets ``control.should_training_stop``. Each evaluation is also compared with the best
one through :class:`~provenir.eval.regression.RegressionGate` at ``regression_tolerance``; a
tripped gate is logged (``eval/regressed``) and, with ``stop_on_regression``, stops training at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

from provenir.core.errors import EvaluationError
from provenir.eval.harness import EvalResult, MultiMetricEvaluator
from provenir.eval.regression import RegressionGate
from provenir.train.generation import generate_predictions

__all__ = ["EvalCallback", "EvalCallbackConfig", "EvalRecord", "generate_predictions"]


@dataclass
class EvalCallbackConfig:
    """When to evaluate during training and when to stop.

    Attributes:
        eval_every_n_steps: evaluate every N optimiser steps (default 100).
        early_stopping_patience: stop after this many evaluations in a row without improvement
            of ``metric``; ``None`` (default) never stops early.
        regression_tolerance: a drop of ``metric`` below the best evaluation larger than this
            (absolute, 0..1 scale) counts as a regression (default 0.02).
        stop_on_regression: stop training at the first regression (default False).
        metric: the metric that decides improvement; default the evaluator's first metric.
        max_new_tokens: tokens generated per eval prompt (default 32).
        batch_size: prompts generated per batch (default 8).
        template: prompt template name used in training (``alpaca``, ``chatml``, ..., or
            ``tokenizer``) to render each row's prompt; ``None`` uses the raw ``prompt`` field.
        eval_on_train_end: evaluate once more when training ends (default True).
    """

    eval_every_n_steps: int = 100
    early_stopping_patience: int | None = None
    regression_tolerance: float = 0.02
    stop_on_regression: bool = False
    metric: str | None = None
    max_new_tokens: int = 32
    batch_size: int = 8
    template: str | None = None
    eval_on_train_end: bool = True

    def __post_init__(self) -> None:
        if self.eval_every_n_steps <= 0:
            raise EvaluationError("eval_every_n_steps must be > 0")
        if self.early_stopping_patience is not None and self.early_stopping_patience <= 0:
            raise EvaluationError("early_stopping_patience must be > 0 (or None to never stop early)")
        if self.regression_tolerance < 0:
            raise EvaluationError("regression_tolerance must be >= 0")
        if self.max_new_tokens <= 0 or self.batch_size <= 0:
            raise EvaluationError("max_new_tokens and batch_size must be > 0")


@dataclass
class EvalRecord:
    """One evaluation during training."""

    step: int
    result: EvalResult
    score: float
    improved: bool
    regressed: bool
    predictions: list[str] = field(repr=False, default_factory=list)


class EvalCallback(TrainerCallback):
    """A ``transformers.TrainerCallback`` evaluating generations during training (see module doc).

    Args:
        config: :class:`EvalCallbackConfig`.
        evaluator: default ``MultiMetricEvaluator(["exact_match", "token_f1"])``.
        eval_dataset: rows with ``prompt`` and a reference (see :mod:`provenir.eval.harness`).
        tokenizer: default the trainer's ``processing_class``.
        prompt_formatter: ``row -> prompt text``; overrides ``config.template``.
    """

    def __init__(
        self,
        config: EvalCallbackConfig | None = None,
        evaluator: MultiMetricEvaluator | None = None,
        eval_dataset: Sequence[Mapping[str, Any]] | Any = None,
        *,
        tokenizer: Any | None = None,
        prompt_formatter: Callable[[Mapping[str, Any]], str] | None = None,
    ) -> None:
        self.config = config or EvalCallbackConfig()
        self.evaluator = evaluator or MultiMetricEvaluator(["exact_match", "token_f1"])
        if eval_dataset is None:
            raise EvaluationError("EvalCallback needs an eval_dataset")
        self.rows = [dict(r) for r in eval_dataset]
        if not self.rows:
            raise EvaluationError("EvalCallback: the eval dataset is empty")
        if any("prompt" not in r for r in self.rows):
            raise EvaluationError("EvalCallback: every eval row needs a 'prompt' field")
        names = [m.name for m in self.evaluator.metrics]
        self.metric = self.config.metric or names[0]
        if self.metric not in names:
            raise EvaluationError(
                f"EvalCallback: metric {self.metric!r} is not computed by the evaluator ({names})"
            )
        self.tokenizer = tokenizer
        self.prompt_formatter = prompt_formatter
        self.gate = RegressionGate(self.config.regression_tolerance, metrics=[self.metric])
        self.history: list[EvalRecord] = []
        self.best: EvalRecord | None = None
        self.bad_evals = 0
        self.stopped_early = False

    # -- TrainerCallback hooks ----------------------------------------------------------------

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Evaluate every ``eval_every_n_steps`` steps; ask the trainer to stop when warranted."""
        if state.global_step > 0 and state.global_step % self.config.eval_every_n_steps == 0:
            self._evaluate(state, control, kwargs)
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Final evaluation, unless the last step was just evaluated."""
        already = self.history and self.history[-1].step == state.global_step
        if self.config.eval_on_train_end and not already:
            self._evaluate(state, control, kwargs)
        return control

    # -- evaluation -----------------------------------------------------------------------------

    def _prompt(self, row: Mapping[str, Any], tokenizer: Any) -> str:
        if self.prompt_formatter is not None:
            return self.prompt_formatter(row)
        if self.config.template is not None:
            from provenir.data.templates.rendering import template_prompt

            return template_prompt(self.config.template, tokenizer, dict(row))
        return str(row["prompt"])

    def evaluate_model(self, model: Any, tokenizer: Any) -> tuple[EvalResult, list[str]]:
        """Generate on the eval rows with ``model`` and score the generations."""
        prompts = [self._prompt(r, tokenizer) for r in self.rows]
        predictions = generate_predictions(
            model,
            tokenizer,
            prompts,
            max_new_tokens=self.config.max_new_tokens,
            batch_size=self.config.batch_size,
        )
        return self.evaluator.evaluate(self.rows, predictions), predictions

    def _evaluate(self, state: Any, control: Any, kwargs: dict[str, Any]) -> None:
        model = kwargs.get("model")
        tokenizer = self.tokenizer or kwargs.get("processing_class") or kwargs.get("tokenizer")
        if model is None or tokenizer is None:
            raise EvaluationError(
                "EvalCallback: the trainer passed no model or tokenizer; pass tokenizer= explicitly"
            )
        result, predictions = self.evaluate_model(model, tokenizer)
        score = result.metrics[self.metric].mean
        improved = self.best is None or score > self.best.score
        regressed = self.best is not None and not self.gate.compare(result, self.best.result).passed
        record = EvalRecord(state.global_step, result, score, improved, regressed, predictions)
        self.history.append(record)
        if improved:
            self.best, self.bad_evals = record, 0
        else:
            self.bad_evals += 1

        entry: dict[str, Any] = {"step": state.global_step}
        for name, m in result.metrics.items():
            entry[f"eval/{name}"] = m.mean
            entry[f"eval/{name}_ci_lower"] = m.ci_lower
            entry[f"eval/{name}_ci_upper"] = m.ci_upper
        entry["eval/regressed"] = regressed
        state.log_history.append(entry)

        patience = self.config.early_stopping_patience
        if (patience is not None and self.bad_evals >= patience) or (
            regressed and self.config.stop_on_regression
        ):
            self.stopped_early = True
            control.should_training_stop = True
