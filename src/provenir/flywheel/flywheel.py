"""DataFlywheel: eval failures -> variants -> quality filter -> augmented training set.

::

    from provenir.flywheel import DataFlywheel, FlywheelConfig

    config = FlywheelConfig.from_yaml("examples/flywheel_offline.yaml")
    result = DataFlywheel(config).run()
    print(result.augmented_path, result.augmented_sha256, result.counts)

Stages and the files they leave in ``<output_dir>/flywheel/<name>/``:

=============  ===================  =======================================================
stage          output               contents
=============  ===================  =======================================================
``mine``       ``failures.jsonl``   items scoring under ``mining.threshold`` on ``mining.metric``
``generate``   ``candidates.jsonl`` every variant, with its failure and generator
``filter``     ``accepted.jsonl``   variants that passed (``rejected.jsonl``: the rest, with reasons)
``augment``    ``augmented.jsonl``  training rows + accepted variants, each with ``provenance``
=============  ===================  =======================================================

``summary.json`` records the inputs' hashes, counts per stage and the output's SHA-256;
``flywheel_state.json`` makes the run resumable stage by stage: per completed stage, its output
path (relative to the flywheel folder), the output's SHA-256 and a *fingerprint*, the hash of
the stage's parameters and its inputs' hashes (:class:`~provenir.core.stages.StageLedger`). A
stage is reused only while its fingerprint is unchanged and its output still hashes the same.
The store's audit log (``<output_dir>/audit``, what ``provenir audit`` reads) gets
``flywheel_started``, one ``flywheel_stage_completed`` per stage (``status``: completed or
skipped) and ``flywheel_completed``.

``executor: ray`` (config section, or ``provenir flywheel --executor ray``) samples the
``model`` generator's paraphrases and asks the judge on Ray actors that each load the model, or
build the judge, once (:mod:`provenir.scale.generation`); the files are the local run's, byte
for byte. The stages that ran there record where (``executor`` in their ``flywheel_state.json``
entry and in ``summary.json``); the executor is in no fingerprint, so switching it resumes the
same folder. A local run records nothing new.

A variant row is ``{prompt, response, provenance}`` where ``provenance`` names the failure that
produced it (``failure_index``: 0-based row of the mined dataset, ``failure_key``: the
evaluation's item key), the original prompt, the generator, the failure's score and the filter
scores (``judge``, ``max_similarity``). The training loader ignores the extra column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from provenir.core.atomic import atomic_write_json
from provenir.core.errors import DataError, EvaluationError
from provenir.core.hashing import sha256_file, sha256_json
from provenir.core.jsonl import read_jsonl, write_jsonl
from provenir.core.manifest import utc_now
from provenir.core.progress import ProgressBar
from provenir.core.stages import StageLedger
from provenir.core.store import RunStore
from provenir.eval.judge.calibration import JudgeSpec, require_min_kappa
from provenir.flywheel.config import FlywheelConfig
from provenir.flywheel.generators import ModelParaphraser, VariantGenerator, build_generators
from provenir.flywheel.mining import Failure, mine_failures
from provenir.flywheel.quality import Candidate, QualityFilter
from provenir.scale.executor import Executor, LocalExecutor, open_executor

__all__ = ["STAGES", "DataFlywheel", "FlywheelResult"]

#: Stage names, in order.
STAGES: tuple[str, ...] = ("mine", "generate", "filter", "augment")
SUMMARY_FILENAME = "summary.json"
#: The stage ledger (resumability), in the flywheel folder.
STATE_FILENAME = "flywheel_state.json"
STATE_SCHEMA_VERSION = 1


@dataclass
class FlywheelResult:
    """What a run produced: the augmented set, its hash, counts per stage, and what was reused."""

    folder: Path
    augmented_path: Path
    augmented_sha256: str
    summary_path: Path
    counts: dict[str, dict[str, Any]]
    stages_run: list[str] = field(default_factory=list)
    stages_skipped: list[str] = field(default_factory=list)

    def format_table(self) -> str:
        """One line per stage: ran or reused, and its counts."""
        lines = [f"{'stage':<10} {'status':<8} counts", "-" * 48]
        for stage in STAGES:
            status = "reused" if stage in self.stages_skipped else "ran"
            counts = ", ".join(
                f"{k}={v}" for k, v in self.counts.get(stage, {}).items() if not isinstance(v, dict)
            )
            lines.append(f"{stage:<10} {status:<8} {counts}")
        return "\n".join(lines)


class DataFlywheel:
    """Runs the four stages of :data:`STAGES`, skipping those already done with the same inputs.

    Args:
        config: the :class:`FlywheelConfig`.
        generators: override the generators built from ``config.generation`` (any
            :class:`~provenir.flywheel.generators.VariantGenerator`).
        judge: override the judge built from ``config.filter.judge`` (any ``LLMJudge``).
        actor: who is recorded in the audit log (default: ``$PROVENIR_ACTOR`` or the OS user).

    A stage's fingerprint covers its config section, the generators' names and its inputs'
    hashes; an injected ``judge`` object is not part of it, so after swapping one in, delete
    ``flywheel_state.json`` (or change a ``filter`` setting) to re-run the filter.
    """

    def __init__(
        self,
        config: FlywheelConfig,
        *,
        generators: Sequence[VariantGenerator] | None = None,
        judge: Any = None,
        actor: str | None = None,
    ) -> None:
        self.config = config
        self.generators = (
            list(generators) if generators is not None else build_generators(config.generation, config.seed)
        )
        if not self.generators:
            raise DataError("the flywheel needs at least one variant generator")
        self._judge = judge
        self.actor = actor
        self.folder = Path(config.output_dir) / "flywheel" / config.name
        #: Where paraphrasing and judging run; opened by :meth:`run`.
        self.executor: Executor = LocalExecutor()
        # The stages of this run that used a non-local executor (their records say so).
        self._remote: set[str] = set()

    # -- public ----------------------------------------------------------------------------

    def run(self, *, progress: bool | None = None) -> FlywheelResult:
        """Run (or resume) every stage and write ``summary.json``.

        ``progress``: show rich progress bars (default: only on a terminal).
        """
        with open_executor(self.config.executor) as executor:
            self.executor = executor
            self._remote = set()
            try:
                return self._run(progress)
            finally:
                self.executor = LocalExecutor()

    def _run(self, progress: bool | None) -> FlywheelResult:
        from provenir.data.loading import load_rows
        from provenir.governance.audit import AuditLogger

        cfg = self.config
        if self._judge is None:
            require_min_kappa(
                JudgeSpec.of(cfg.filter.judge), cfg.filter.judge.min_kappa, RunStore(cfg.output_dir)
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        ledger = StageLedger(
            self.folder / STATE_FILENAME, {"schema_version": STATE_SCHEMA_VERSION, "stages": {}}
        )
        audit = AuditLogger(RunStore(cfg.output_dir).audit_dir)
        run_id = f"flywheel:{cfg.name}"
        audit.log(
            "flywheel_started",
            actor=self.actor,
            run_id=run_id,
            # The executor only decides where stages run: the hash stays what it was before it existed.
            config_sha256=sha256_json(cfg.model_dump(mode="json", exclude={"output_dir", "executor"})),
        )

        eval_loaded = load_rows(cfg.mining.eval_data)
        inputs: dict[str, str] = {"eval_data": eval_loaded.dataset_hash}
        for key in ("eval_result", "predictions"):
            value = getattr(cfg.mining, key)
            if value is not None:
                if not Path(value).is_file():
                    raise EvaluationError(f"mining.{key}: file not found: {value}")
                inputs[key] = sha256_file(value)
        train_path = cfg.augment.train_path or cfg.mining.eval_data
        train_loaded = eval_loaded if train_path == cfg.mining.eval_data else load_rows(train_path)
        if not train_loaded.rows:
            raise DataError(f"{train_path}: the training set to augment is empty")
        inputs["train"] = train_loaded.dataset_hash

        counts: dict[str, dict[str, Any]] = {}
        ran: list[str] = []
        skipped: list[str] = []
        upstream = sha256_json(inputs)
        show = progress

        def stage(name: str, params: Any, body: Callable[[], tuple[Path, dict[str, Any]]]) -> str:
            nonlocal upstream
            fingerprint = sha256_json({"stage": name, "params": params, "input": upstream})
            rec = ledger.completed(name, "stages", fingerprint=fingerprint)
            if rec is not None:
                skipped.append(name)
                status = "skipped"
            else:
                output, stage_counts = body()
                fields: dict[str, Any] = {"fingerprint": fingerprint, **ledger.output(output)}
                if name in self._remote:
                    fields["executor"] = self.executor.record().to_dict()
                rec = ledger.record(
                    name, {**fields, "completed_at": utc_now(), "counts": stage_counts}, "stages"
                )
                ran.append(name)
                status = "completed"
            counts[name] = rec["counts"]
            audit.log(
                "flywheel_stage_completed",
                actor=self.actor,
                run_id=run_id,
                stage=name,
                status=status,
                output=rec["path"],
                sha256=rec["sha256"],
                counts=rec["counts"],
            )
            upstream = rec["sha256"]
            return str(rec["path"])

        stage("mine", cfg.section_hash("mining"), lambda: self._mine(eval_loaded.rows))
        failures = [Failure.from_dict(r) for r in read_jsonl(self.folder / "failures.jsonl")]
        gen_params = {
            "config": cfg.section_hash("generation"),
            "generators": [g.name for g in self.generators],
        }
        stage("generate", gen_params, lambda: self._generate(failures, show))
        candidates = [Candidate.from_dict(r) for r in read_jsonl(self.folder / "candidates.jsonl")]
        stage("filter", cfg.section_hash("filter"), lambda: self._filter(failures, candidates, show))
        accepted = [Candidate.from_dict(r) for r in read_jsonl(self.folder / "accepted.jsonl")]
        # The training rows are an input of this stage only: fold their hash into its fingerprint.
        stage(
            "augment",
            {"config": cfg.section_hash("augment"), "train": inputs["train"]},
            lambda: self._augment(train_loaded.rows, failures, accepted),
        )

        augmented = self.folder / "augmented.jsonl"
        stages = ledger.stages("stages")
        augmented_sha = stages["augment"]["sha256"]
        summary: dict[str, Any] = {
            "name": cfg.name,
            "created_at": utc_now(),
            "config": cfg.model_dump(mode="json", exclude={"executor"}),
            "inputs": {
                "eval_data": cfg.mining.eval_data,
                "train": train_path,
                **{
                    k: getattr(cfg.mining, k)
                    for k in ("eval_result", "predictions")
                    if getattr(cfg.mining, k)
                },
            },
            "input_sha256": inputs,
            "stages": {
                name: {"path": rec["path"], "sha256": rec["sha256"], "counts": rec["counts"]}
                for name, rec in stages.items()
            },
            "stages_run": ran,
            "stages_skipped": skipped,
            "output": {"path": "augmented.jsonl", "sha256": augmented_sha},
        }
        where = {name: rec["executor"] for name, rec in stages.items() if "executor" in rec}
        if where:  # a local run's summary keeps the form it always had
            summary["executor"] = where
        summary_path = atomic_write_json(self.folder / SUMMARY_FILENAME, summary)
        audit.log(
            "flywheel_completed",
            actor=self.actor,
            run_id=run_id,
            output_sha256=augmented_sha,
            stages_run=ran,
            stages_skipped=skipped,
            rows=counts["augment"].get("rows"),
        )
        return FlywheelResult(self.folder, augmented, augmented_sha, summary_path, counts, ran, skipped)

    # -- stages ------------------------------------------------------------------------------

    def _mine(self, rows: list[dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
        from provenir.eval.harness import EvalResult

        m = self.config.mining
        if m.eval_result is not None:
            result = EvalResult.load(m.eval_result)
        else:
            from provenir.eval.harness import MultiMetricEvaluator
            from provenir.eval.run_evaluation import read_predictions

            # Only the per-item scores matter here, so one bootstrap resample is enough.
            result = MultiMetricEvaluator([m.metric], n_bootstrap=1, keep_predictions=True).evaluate(
                rows, read_predictions(m.predictions or "")
            )
        failures = mine_failures(
            rows,
            result,
            metric=m.metric,
            threshold=m.threshold,
            prompt_field=m.prompt_field,
            max_failures=m.max_failures,
        )
        path = write_jsonl(self.folder / "failures.jsonl", [f.to_dict() for f in failures])
        return path, {
            "items": len(rows),
            "failures": len(failures),
            "metric": m.metric,
            "threshold": m.threshold,
        }

    def _generate(self, failures: list[Failure], show: bool | None) -> tuple[Path, dict[str, Any]]:
        n = self.config.generation.variants_per_failure
        rows: list[dict[str, Any]] = []
        per_generator: dict[str, int] = {}
        with ProgressBar("generating variants", len(failures) * len(self.generators), show=show) as bar:
            by_generator: dict[str, list[list[str]]] = {}
            for gen in self.generators:
                if isinstance(gen, ModelParaphraser):
                    prompts = [f.prompt for f in failures]
                    if self.executor.name != "local" and not gen.loaded:
                        from provenir.scale.generation import paraphrase_prompts

                        # Each worker loads the model once; prompts are seeded one by one.
                        by_generator[gen.name] = paraphrase_prompts(
                            self.executor, gen.config, prompts, n=n, seed=gen.seed
                        )
                        self._remote.add("generate")
                    else:
                        # One model load for every prompt.
                        by_generator[gen.name] = gen.generate_many(prompts, n)
                    bar.advance(len(failures))
                    continue
                out = []
                for f in failures:
                    out.append(list(gen.generate_variants(f.prompt, f.reference, n)))
                    bar.advance(1)
                by_generator[gen.name] = out
        # Grouped by failure (then generator), so the filter sees each failure's variants together.
        for i, f in enumerate(failures):
            for gen in self.generators:
                for text in by_generator[gen.name][i]:
                    if not isinstance(text, str):
                        raise DataError(
                            f"generator {gen.name!r} returned {type(text).__name__}, expected str"
                        )
                    rows.append(Candidate(f.index, f.key, f.prompt, gen.name, text).to_dict())
                    per_generator[gen.name] = per_generator.get(gen.name, 0) + 1
        path = write_jsonl(self.folder / "candidates.jsonl", rows)
        return path, {"candidates": len(rows), "per_generator": per_generator}

    def _filter(
        self, failures: list[Failure], candidates: list[Candidate], show: bool | None
    ) -> tuple[Path, dict[str, Any]]:
        from provenir.flywheel.judging import build_judge

        judge_config = self.config.filter.judge
        originals = [f.prompt for f in failures]
        if self.executor.name != "local":
            from provenir.scale.generation import judge_rubric

            # Each worker builds the judge once (an injected judge is shipped to it as it is).
            builder = (
                partial(_given, self._judge)
                if self._judge is not None
                else partial(build_judge, judge_config, originals)
            )
            quality = QualityFilter(
                self.config.filter,
                score_many=partial(judge_rubric, self.executor, builder, criteria=judge_config.criteria),
            )
            self._remote.add("filter")
        else:
            judge = self._judge if self._judge is not None else build_judge(judge_config, originals)
            quality = QualityFilter(self.config.filter, judge)
        with ProgressBar("filtering variants", len(candidates), show=show) as bar:
            outcome = quality.apply(candidates, advance=bar.advance)
        write_jsonl(self.folder / "rejected.jsonl", [c.to_dict() for c in outcome.rejected])
        path = write_jsonl(self.folder / "accepted.jsonl", [c.to_dict() for c in outcome.accepted])
        return path, {
            "candidates": len(candidates),
            "accepted": len(outcome.accepted),
            "rejected": len(outcome.rejected),
            "rejected_by_reason": outcome.reasons,
        }

    def _augment(
        self, train_rows: list[dict[str, Any]], failures: list[Failure], accepted: list[Candidate]
    ) -> tuple[Path, dict[str, Any]]:
        a = self.config.augment
        by_index = {f.index: f for f in failures}
        rows: list[dict[str, Any]] = list(train_rows)
        for c in accepted:
            f = by_index.get(c.failure_index)
            if f is None or f.key != c.failure_key:
                raise DataError(
                    f"accepted variant {c.text!r} names failure {c.failure_index} "
                    "that the mine stage did not produce; delete the flywheel folder and re-run"
                )
            row: dict[str, Any] = {a.prompt_field: c.text, a.response_field: f.reference}
            if f.system is not None:
                row["system"] = f.system
            row["provenance"] = {
                "source": "flywheel",
                "flywheel": self.config.name,
                "failure_index": f.index,
                "failure_key": f.key,
                "original_prompt": f.prompt,
                "failure_score": f.score,
                "metric": self.config.mining.metric,
                "generator": c.generator,
                "filter_scores": dict(c.scores),
            }
            rows.append(row)
        path = write_jsonl(self.folder / "augmented.jsonl", rows)
        return path, {"original_rows": len(train_rows), "variants": len(accepted), "rows": len(rows)}


def _given(judge: Any) -> Any:
    """A judge handed to the flywheel, as a worker's factory returns it."""
    return judge
