"""``provenir eval``: score a trained run, or a predictions file, with confidence intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provenir.cli.options import RUN_HELP, ExecutorOption, JsonFlag, OutputDir, RayAddress, RayWorkers

if TYPE_CHECKING:
    from provenir.eval.harness import ContinuousInterval


def eval_command(
    run: Annotated[str | None, typer.Argument(help=RUN_HELP + " Its model is evaluated.")] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Dataset file (JSONL/JSON/CSV/Parquet or builtin:<name>); default: the run's eval data."
        ),
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(help="JSONL predictions to score against --data instead of a run's model."),
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated metric names (default: the run's eval.metrics).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Where to write eval.json for --predictions.")] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="Baseline eval.json: run the regression gate against it.")
    ] = None,
    tolerance: Annotated[float, typer.Option(help="Regression gate tolerance.")] = 0.02,
    relative: Annotated[bool, typer.Option(help="Tolerance is relative to the baseline value.")] = False,
    max_new_tokens: Annotated[int | None, typer.Option(help="Tokens generated per prompt.")] = None,
    batch_size: Annotated[int, typer.Option(help="Prompts generated per batch.")] = 8,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | auto (default: the run's device).")] = None,
    interval: Annotated[
        str,
        typer.Option(
            help="Interval of continuous metrics (F1, BLEU, ROUGE): percentile or bca (bias-corrected and "
            "accelerated bootstrap, scipy.stats.bootstrap). Binary metrics always get Wilson's."
        ),
    ] = "percentile",
    tasks: Annotated[
        str | None,
        typer.Option(
            help="lm-eval tasks (registered names, task YAML files or folders), comma-separated: "
            "run each on the run's base model and on base + adapter and compare them paired."
        ),
    ] = None,
    limit: Annotated[
        float | None, typer.Option(help="With --tasks: items per task (below 1: a fraction).")
    ] = None,
    num_fewshot: Annotated[int | None, typer.Option(help="With --tasks: few-shot examples.")] = None,
    attach: Annotated[bool, typer.Option(help="Attach the summary to the run's manifest.")] = True,
    executor: ExecutorOption = None,
    ray_address: RayAddress = None,
    ray_workers: RayWorkers = None,
    output_dir: OutputDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Print a metrics table with confidence intervals and save eval.json.

    With a RUN, loads the run's base model and adapter, generates on the eval data,
    writes eval.json into the run folder and attaches the summary to the (re-sealed)
    manifest. With --predictions and --data, scores the file without any model. With
    --tasks, runs lm-evaluation-harness tasks on the base model and on base + adapter and
    prints, per task, both scores and their paired difference with its interval and p-value.
    """
    from provenir.core.errors import EvaluationError
    from provenir.core.extras import check_extras
    from provenir.core.store import RunStore

    if predictions is not None and (run is not None or data is None):
        raise EvaluationError("--predictions needs --data and no RUN argument")
    if predictions is None and run is None:
        raise EvaluationError("give a RUN to evaluate, or --predictions with --data")
    # Checked before the model generates anything: a missing package is one line, not a late traceback.
    if predictions is not None:
        check_extras("eval")
    else:
        check_extras("train", "eval")
    if interval not in ("percentile", "bca"):
        raise EvaluationError(f"--interval must be percentile or bca, got {interval!r}")
    continuous: ContinuousInterval = "bca" if interval == "bca" else "percentile"
    manifest = RunStore(output_dir).resolve(run) if run is not None else None
    if tasks is not None:
        if manifest is None or predictions is not None or data is not None or baseline is not None:
            raise EvaluationError("--tasks evaluates a RUN; it takes no --predictions, --data or --baseline")
        _eval_tasks(manifest, tasks, limit, num_fewshot, batch_size, device, attach, as_json)
        return

    from provenir.eval.harness import MultiMetricEvaluator
    from provenir.eval.run_evaluation import evaluate_predictions_file
    from provenir.train.evaluation import evaluate_run

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    if predictions is not None:
        result = evaluate_predictions_file(
            predictions,
            data or "",
            evaluator=MultiMetricEvaluator(names, keep_predictions=True, continuous_interval=continuous),
        )
        where = result.save(out or predictions.with_name("eval.json"))
    else:
        from provenir.scale.executor import executor_config, open_executor

        assert manifest is not None
        config = executor_config(executor=executor, address=ray_address, workers=ray_workers)
        with open_executor(config) as runner:
            result, where = evaluate_run(
                manifest,
                data_path=data,
                metrics=names,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                device=device,
                attach=attach,
                continuous_interval=continuous,
                executor=runner,
            )
    if not as_json:
        typer.echo(result.format_table())
        typer.echo(f"wrote {where}")
    body: dict[str, Any] = {"eval": result.to_dict(include_scores=False), "path": str(where)}
    if baseline is not None:
        from provenir.eval.harness import EvalResult
        from provenir.eval.regression import RegressionGate
        from provenir.train.evaluation import audited_gate

        gate = RegressionGate(tolerance, mode="relative" if relative else "absolute")
        audit_dir = RunStore.of_manifest_file(manifest).audit_dir if manifest is not None else None
        run_id = result.extra.get("run_id")
        # A tripped gate raises (one line, exit 2) after the table above was printed.
        decision = audited_gate(
            gate,
            result,
            EvalResult.load(baseline),
            audit_dir,
            run_id=run_id,
            manifest_path=manifest,
            baseline_path=baseline,
        )
        body["gate"] = decision.to_dict()
        if not as_json:
            typer.echo(decision.message())
            for sentence in decision.detectability():
                typer.echo(f"  {sentence}")
    if as_json:
        typer.echo(json.dumps(body, sort_keys=True, default=str))


def register(app: typer.Typer) -> None:
    """Attach the ``eval`` command to ``app``."""
    app.command("eval")(eval_command)


def _eval_tasks(
    manifest: Path,
    tasks: str,
    limit: float | None,
    num_fewshot: int | None,
    batch_size: int,
    device: str | None,
    attach: bool,
    as_json: bool,
) -> None:
    """``provenir eval RUN --tasks ...``: lm-eval tasks, base vs tuned, one table per task."""
    from provenir.train.lm_eval_tasks import evaluate_tasks

    comparisons = evaluate_tasks(
        manifest,
        [t for t in tasks.split(",") if t.strip()],
        limit=int(limit) if limit is not None and limit >= 1 else limit,
        num_fewshot=num_fewshot,
        batch_size=batch_size,
        device=device,
        attach=attach,
    )
    if as_json:
        body = {"tasks": {name: c.to_dict() for name, c in comparisons.items()}}
        typer.echo(json.dumps(body, sort_keys=True, default=str))
        return
    for comparison in comparisons.values():
        typer.echo(comparison.format_table())
        typer.echo("")
    typer.echo(f"wrote {len(comparisons)} task results under the run's lm_eval/ folder")
