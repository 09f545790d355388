"""The RLAIF loop: generate -> judge -> pairs -> DPO -> evaluate -> gate -> next iteration.

Each iteration is a child run with its own manifest (``relation: rlaif``) whose ``provenance``
lists the earlier iterations' run ids. Candidates, judgments and pairs are JSONL files under
``<output_dir>/rlaif/<name>/iter-<k>/``, hashed and referenced from the iteration's manifest.
``state.json`` records every completed stage with its output hash, so an interrupted pipeline
continues from the last completed stage (a stage whose output no longer hashes the same runs
again). If the regression gate trips, the loop stops and the adapter that last passed it is
kept.

The gate compares each iteration with the one it continued from, which lets an iteration that
merely did not get worse pass. So every iteration is also compared with the base model by the
same paired test (McNemar or paired bootstrap, see :mod:`provenir.eval.regression`), and the
result names a best run only when an iteration beat the base model significantly on every gated
metric; otherwise it says that no iteration improved.

The DPO reference model is the base model (TRL disables the adapter for reference log-probs),
so every iteration is regularised towards the original model, not the previous iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import combinations
from pathlib import Path
from typing import Any

from provenir.core.atomic import atomic_write_json
from provenir.core.config import RunConfig
from provenir.core.errors import ConfigError, DataError
from provenir.core.hashing import sha256_file, sha256_json
from provenir.core.jsonl import read_jsonl, write_jsonl
from provenir.core.manifest import RunManifest
from provenir.core.redaction import redact_text
from provenir.core.stages import StageLedger
from provenir.core.store import RunStore
from provenir.data.loading import read_rows, split_rows
from provenir.eval.harness import EVAL_FILENAME, EvalResult
from provenir.eval.regression import RegressionGate
from provenir.governance.attestation import attest_if_configured
from provenir.governance.audit import AuditLogger
from provenir.rlaif.config import RLAIFConfig
from provenir.scale.executor import Executor, LocalExecutor, open_executor


def _same(judge: Any) -> Any:
    """A judge object as its own builder (a pickled copy on each worker)."""
    return judge


STAGES = ("generate", "judge", "pairs", "train", "eval", "gate")


@dataclass
class IterationSummary:
    """One row of the pipeline's summary table."""

    iteration: int
    run_id: str | None = None
    prompts: int = 0
    candidates: int = 0
    judged: int = 0
    pairs: int = 0
    agreement_rate: float | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    gate_passed: bool | None = None
    gate_message: str = ""
    #: Per gated metric, the paired comparison with the base model: ``delta``, ``test``,
    #: ``p_value``, ``significant`` and the gate's ``verdict`` (``improvement`` when significant).
    vs_baseline: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: True when every gated metric rose significantly over the base model.
    improved: bool | None = None


@dataclass
class RLAIFResult:
    """What the pipeline produced: per-iteration summaries and the adapter to keep.

    ``best_run_id`` / ``best_adapter`` name the iteration that beat the base model significantly
    on every gated metric (the highest such on those metrics); both are None when none did,
    and ``improved`` is then False.
    """

    iterations: list[IterationSummary]
    best_run_id: str | None
    best_adapter: str | None
    baseline: dict[str, dict[str, float]]
    stopped_because: str
    folder: Path
    improved: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``summary.json`` holds)."""
        return {
            "iterations": [asdict(i) for i in self.iterations],
            "best_run_id": self.best_run_id,
            "best_adapter": self.best_adapter,
            "improved": self.improved,
            "baseline": self.baseline,
            "stopped_because": self.stopped_because,
        }


def _completion_text(template: str, tokenizer: Any) -> Callable[[str], str]:
    """How a sampled text is stored so that DPO trains on the tokens the policy sampled.

    The pair's completion is re-rendered through the template. A template that writes its own
    separator before the answer (Mistral's space) gets the text without its leading space, or
    the separator would be doubled; one that writes none (``raw_completion``) keeps the space the
    model generated, or ``"?" + "12"`` would train a token the policy never produced after
    ``"? 12"`` (byte-level BPE folds the space into the word).
    """
    from provenir.data.templates.rendering import template_pair

    _, probe = template_pair(template, tokenizer, {"prompt": "p"}, "\x00")
    own_separator = probe[: probe.index("\x00")] != ""
    return (lambda t: t.strip()) if own_separator else (lambda t: t.rstrip())


class RLAIFPipeline:
    """Run (or continue) the loop described by an :class:`RLAIFConfig`.

    ``judge`` overrides the configured one (any :class:`~provenir.eval.judge.LLMJudge`).
    """

    def __init__(self, config: RLAIFConfig, judge: Any | None = None, progress: bool = True) -> None:
        self.config = config
        self.store = RunStore(config.output_dir)
        self.folder = self.store.root / "rlaif" / config.name
        self.audit = AuditLogger(self.store.audit_dir)
        self.progress = progress
        self._judge_override = judge
        #: Where generation, judging and evaluation run; opened by :meth:`run`.
        self.executor: Executor = LocalExecutor()
        self.train_rows, self.eval_rows = self._load_prompts()
        self.references = {r["prompt"]: r["reference"] for r in self.train_rows if r.get("reference")}
        self.ledger = self._load_ledger()
        #: The ledger's document: completed stages per iteration, baseline, best, stopped.
        self.state: dict[str, Any] = self.ledger.data

    # -- set-up ---------------------------------------------------------------------------------

    def _load_prompts(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        cfg = self.config
        rows = self._prompt_rows(cfg.prompts_path)
        if cfg.eval_path:
            held = self._prompt_rows(cfg.eval_path)
        else:
            rows, held = split_rows(rows, cfg.eval_split, cfg.seed)
        if not all(r.get("reference") for r in held):
            raise DataError("every held-out eval row needs a reference (column 'reference' or 'response')")
        overlap = {r["prompt"] for r in rows} & {r["prompt"] for r in held}
        if overlap:
            raise DataError(
                f"{len(overlap)} eval prompt(s) also appear in the generation prompts; eval must be held out"
            )
        return rows, held

    @staticmethod
    def _prompt_rows(path: str) -> list[dict[str, Any]]:
        out = []
        for i, row in enumerate(read_rows(path), start=1):
            prompt = row.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise DataError(f"{path}: row {i}: needs a non-empty 'prompt'")
            reference = row.get("reference", row.get("response"))
            out.append({"prompt": prompt, **({"reference": reference} if isinstance(reference, str) else {})})
        return out

    def _load_ledger(self) -> StageLedger:
        identity = sha256_json(
            {
                # min_kappa only admits or refuses the judge: setting it later continues the pipeline.
                # The executor only decides where stages run, never what they write.
                "config": self.config.model_dump(
                    mode="json",
                    exclude={"output_dir": True, "executor": True, "judge": {"min_kappa": True}},
                ),
                "prompts": self.train_rows,
                "eval": self.eval_rows,
            }
        )
        # Stage outputs are stored as the paths they were written to ("file"), as before.
        ledger = StageLedger(
            self.folder / "state.json",
            {"identity": identity, "iterations": {}, "baseline": None, "best": None, "stopped": None},
            output_key="file",
            relative_outputs=False,
        )
        if ledger.data.get("identity") != identity:
            raise ConfigError(
                f"{self.folder} holds a pipeline with another config or data; choose a new name or delete it"
            )
        return ledger

    def _done(self, k: int, stage: str) -> dict[str, Any] | None:
        """The recorded output of a completed stage, if its file still hashes the same."""
        return self.ledger.completed(stage, "iterations", str(k))

    def _record(self, k: int, stage: str, rec: dict[str, Any]) -> dict[str, Any]:
        if self.executor.name != "local" and stage in ("generate", "judge", "eval"):
            rec = {**rec, "executor": self.executor.record().to_dict()}
        rec = self.ledger.record(stage, rec, "iterations", str(k))
        self.audit.log(
            "rlaif_stage_completed",
            pipeline=self.config.name,
            iteration=k,
            stage=stage,
            run_id=rec.get("run_id"),
            sha256=rec.get("sha256"),
        )
        return rec

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> RLAIFResult:
        """Run the remaining stages of every iteration; returns (and saves) the summary."""
        with open_executor(self.config.executor) as executor:
            self.executor = executor
            try:
                return self._run()
            finally:
                self.executor = LocalExecutor()

    def _run(self) -> RLAIFResult:
        # numpy (the eval extra) loads here, not on import: the CLI names the missing extras first.
        from provenir.eval.judge.calibration import JudgeSpec, require_min_kappa

        cfg = self.config
        if self._judge_override is None:
            require_min_kappa(JudgeSpec.of(cfg.judge), cfg.judge.min_kappa, self.store)
        self.folder.mkdir(parents=True, exist_ok=True)
        judge = self._judge_override or cfg.judge.build(self.references, self.folder / "judge_cache")
        if self.state["baseline"] is None:
            baseline_eval = self._evaluate(None, self.folder / "baseline_eval.json")
            baseline_file = self.folder / "baseline_eval.json"
            self.state["baseline"] = {"file": str(baseline_file), "sha256": sha256_file(baseline_file)}
            self.state["best"] = {"run_id": None, "adapter": None, "eval": str(baseline_file)}
            self.ledger.save()
            self.audit.log(
                "rlaif_baseline_evaluated",
                pipeline=cfg.name,
                means={n: m.mean for n, m in baseline_eval.metrics.items()},
            )
        summaries: list[IterationSummary] = []
        stopped = self.state.get("stopped") or ""
        for k in range(1, cfg.n_iterations + 1):
            if self.state.get("stopped") and str(k) not in self.state["iterations"]:
                break
            summary, stop = self._iteration(k, judge)
            summaries.append(summary)
            if stop:
                stopped = stop
                self.state["stopped"] = stop
                self.ledger.save()
                break
        else:
            stopped = stopped or f"completed {cfg.n_iterations} iteration(s)"
        best = self._best(summaries)
        if best is None:
            stopped += "; no iteration beat the base model significantly"
        result = RLAIFResult(
            iterations=summaries,
            best_run_id=best.run_id if best else None,
            best_adapter=str(self.store.run_dir(best.run_id) / "adapter") if best and best.run_id else None,
            baseline=EvalResult.load(self.state["baseline"]["file"]).summary()["metrics"],
            stopped_because=stopped,
            folder=self.folder,
            improved=best is not None,
        )
        atomic_write_json(self.folder / "summary.json", result.to_dict())
        self.audit.log(
            "rlaif_completed",
            pipeline=cfg.name,
            best_run_id=result.best_run_id,
            improved=result.improved,
            stopped_because=stopped,
        )
        return result

    def _best(self, summaries: list[IterationSummary]) -> IterationSummary | None:
        """The iteration that passed its gate and beat the base model significantly, highest first."""
        winners = [s for s in summaries if s.gate_passed and s.improved]
        if not winners:
            return None
        metrics = self.config.gate.metrics
        # max keeps the first of equals; reversed so a later (further trained) iteration wins ties.
        return max(reversed(winners), key=lambda s: sum(s.metrics[m]["mean"] for m in metrics))

    def _iteration(self, k: int, judge: Any) -> tuple[IterationSummary, str | None]:
        it_dir = self.folder / f"iter-{k}"
        summary = IterationSummary(iteration=k, prompts=len(self.train_rows))
        parent = self.state["best"]

        gen = self._done(k, "generate") or self._record(
            k, "generate", self._generate(k, it_dir, parent["adapter"])
        )
        candidates = read_jsonl(gen["file"])
        summary.candidates = sum(len(c["variants"]) for c in candidates)

        jud = self._done(k, "judge") or self._record(k, "judge", self._judge(judge, candidates, it_dir))
        judgments = read_jsonl(jud["file"])
        summary.judged = len(judgments)
        summary.agreement_rate = jud.get("agreement_rate")

        prs = self._done(k, "pairs") or self._record(
            k, "pairs", self._pairs(judgments, it_dir, gen["sha256"], jud["sha256"])
        )
        summary.pairs = prs["count"]
        if prs["count"] == 0:
            return summary, f"iteration {k}: the judge produced no usable preference pairs"

        trn = self._done(k, "train") or self._record(
            k, "train", self._train(k, prs["file"], parent["adapter"])
        )
        summary.run_id = trn["run_id"]
        adapter = str(self.store.run_dir(trn["run_id"]) / "adapter")

        ev = self._done(k, "eval") or self._record(k, "eval", self._eval_run(trn["run_id"], adapter))
        new_eval = EvalResult.load(ev["file"])
        summary.metrics = new_eval.summary()["metrics"]

        gate = self._done(k, "gate") or self._record(
            k, "gate", self._gate(new_eval, EvalResult.load(parent["eval"]))
        )
        summary.gate_passed = gate["passed"]
        summary.gate_message = gate["message"]
        summary.vs_baseline, summary.improved = self._versus_baseline(new_eval)
        self._annotate_manifest(trn["run_id"], k, gen, jud, prs, gate)
        if not gate["passed"]:
            return (
                summary,
                f"iteration {k}: regression gate tripped; kept {parent['run_id'] or 'the base model'}",
            )
        self.state["best"] = {"run_id": trn["run_id"], "adapter": adapter, "eval": ev["file"]}
        self.ledger.save()
        return summary, None

    # -- stages ---------------------------------------------------------------------------------

    def _generate(self, k: int, it_dir: Path, adapter: str | None) -> dict[str, Any]:
        from provenir.data.templates.rendering import template_prompt
        from provenir.train.generation import load_policy
        from provenir.train.policy import sample

        g = self.config.generation
        if self.executor.name != "local":
            from provenir.scale.generation import generate_rows

            variants = generate_rows(
                self.executor,
                self.config.dpo,
                adapter,
                self.train_rows,
                max_new_tokens=g.max_new_tokens,
                batch_size=g.batch_size,
                sampling={"temperature": g.temperature, "top_p": g.top_p},
                n=g.num_variants,
                seed=self.config.seed + k,
                strip=False,
                as_trained=True,
            )
        else:
            model, tokenizer, _ = load_policy(self.config.dpo, Path(adapter) if adapter else None)
            prompts = [template_prompt(self.config.dpo.data.template, tokenizer, r) for r in self.train_rows]
            as_trained = _completion_text(self.config.dpo.data.template, tokenizer)
            outputs = sample(
                model, tokenizer, prompts, g, n=g.num_variants, seed=self.config.seed + k, strip=False
            )
            variants = [[as_trained(t) for t in v] for v in outputs]
        rows = [{**r, "variants": v} for r, v in zip(self.train_rows, variants, strict=True)]
        return {
            **self.ledger.output(write_jsonl(it_dir / "candidates.jsonl", rows)),
            "policy_adapter": adapter,
        }

    def _judge(self, judge: Any, candidates: list[dict[str, Any]], it_dir: Path) -> dict[str, Any]:
        from provenir.eval.judge import agreement_rate, score_pairwise_batch

        items, index = [], []
        for ci, c in enumerate(candidates):
            variants = c["variants"]
            if self.config.pairs.comparison == "all":
                pairs = list(combinations(range(len(variants)), 2))
            else:
                pairs = [(i, i + 1) for i in range(len(variants) - 1)]
            for i, j in pairs:
                if variants[i].strip() == variants[j].strip():
                    continue  # identical texts carry no preference; do not pay for a verdict
                if not variants[i].strip() or not variants[j].strip():
                    continue  # an empty sample cannot be a DPO row (the data layer refuses empty columns)
                items.append((c["prompt"], variants[i], variants[j]))
                index.append((ci, i, j))
        if self.executor.name != "local":
            from provenir.scale.generation import judge_pairs

            prefs = judge_pairs(
                self.executor, self._judge_builder(), items, max_concurrency=self.config.judge.max_concurrency
            )
        else:
            prefs = score_pairwise_batch(
                judge,
                items,
                max_concurrency=self.config.judge.max_concurrency,
                progress=self.progress,
                return_exceptions=True,
            )
        rows = []
        for (ci, i, j), pref in zip(index, prefs, strict=True):
            row: dict[str, Any] = {"candidate": ci, "a": i, "b": j}
            if isinstance(pref, BaseException):
                # Judgments are kept on disk: no judge's error text may carry a credential there.
                row["error"] = redact_text(str(pref))[0]
            else:
                row.update(
                    preferred=pref.preferred,
                    confidence=pref.confidence,
                    agreed=pref.agreed,
                    rationale=pref.rationale,
                )
            rows.append(row)
        return {
            **self.ledger.output(write_jsonl(it_dir / "judgments.jsonl", rows)),
            "agreement_rate": agreement_rate(prefs),
            "errors": sum("error" in r for r in rows),
        }

    def _judge_builder(self) -> Callable[[], Any]:
        """How a worker builds the pipeline's judge once (the override is shipped as it is)."""
        if self._judge_override is not None:
            return partial(_same, self._judge_override)
        return partial(self.config.judge.build, self.references, self.folder / "judge_cache")

    def _pairs(
        self, judgments: list[dict[str, Any]], it_dir: Path, cand_sha: str, jud_sha: str
    ) -> dict[str, Any]:
        rules = self.config.pairs
        candidates = read_jsonl(it_dir / "candidates.jsonl")
        by_prompt: dict[int, list[tuple[float, dict[str, Any]]]] = {}
        for ji, j in enumerate(judgments):
            if "error" in j or j["preferred"] == "tie" or j["confidence"] < rules.min_confidence:
                continue
            if rules.drop_disagreements and j.get("agreed") is False:
                continue
            c = candidates[j["candidate"]]
            win, lose = (j["a"], j["b"]) if j["preferred"] == "a" else (j["b"], j["a"])
            row = {
                "prompt": c["prompt"],
                "chosen": c["variants"][win],
                "rejected": c["variants"][lose],
                "confidence": j["confidence"],
                "judgment": ji,
            }
            by_prompt.setdefault(j["candidate"], []).append((j["confidence"], row))
        rows = []
        for ci in sorted(by_prompt):
            seen: set[tuple[str, str]] = set()
            for _, row in sorted(by_prompt[ci], key=lambda t: (-t[0], t[1]["judgment"])):
                key = (row["chosen"], row["rejected"])
                if key in seen:
                    continue
                seen.add(key)
                rows.append(row)
                if len(seen) == rules.max_pairs_per_prompt:
                    break
        return {
            **self.ledger.output(write_jsonl(it_dir / "pairs.jsonl", rows)),
            "count": len(rows),
            "candidates_sha256": cand_sha,
            "judgments_sha256": jud_sha,
        }

    def _train(self, k: int, pairs_file: str, adapter: str | None) -> dict[str, Any]:
        from provenir.train.runner import RunOptions, train

        base = self.config.dpo
        config = RunConfig.from_dict(
            {
                **base.model_dump(mode="json"),
                "name": f"{self.config.name}-iter{k}",
                "seed": self.config.seed,
                "output_dir": self.config.output_dir,
                "init_adapter": adapter,
                "data": {
                    **base.data.model_dump(mode="json"),
                    "path": pairs_file,
                    "eval_path": None,
                    "eval_split": 0.0,
                },
            }
        )
        parents = [
            self.state["iterations"][str(i)]["train"]["run_id"]
            for i in range(1, k)
            if "train" in self.state["iterations"].get(str(i), {})
        ]
        manifest = train(config, RunOptions(provenance=parents, relation="rlaif"))
        return {"run_id": manifest.run_id, "adapter_hash": manifest.adapter_hash}

    def _evaluate(self, adapter: str | None, out: Path) -> EvalResult:
        from provenir.train.policy import evaluate_policy

        result = evaluate_policy(
            self.config.dpo,
            Path(adapter) if adapter else None,
            self.eval_rows,
            self.config.eval_metrics,
            max_new_tokens=self.config.generation.max_new_tokens,
            batch_size=self.config.generation.batch_size,
            seed=self.config.seed,
            executor=self.executor,
        )
        result.save(out)
        return result

    def _eval_run(self, run_id: str, adapter: str) -> dict[str, Any]:
        from provenir.eval.run_evaluation import attach_to_manifest

        out = self.store.run_dir(run_id) / EVAL_FILENAME
        result = self._evaluate(adapter, out)
        attach_to_manifest(self.store.manifest_path(run_id), result, out)
        return {"file": str(out), "sha256": sha256_file(out), "run_id": run_id}

    def _gate(self, new: EvalResult, previous: EvalResult) -> dict[str, Any]:
        g = self.config.gate
        decision = RegressionGate(g.tolerance, mode=g.mode, metrics=g.metrics).compare(new, previous)
        from provenir.train.evaluation import gate_decision_fields

        self.audit.log("gate_decision", pipeline=self.config.name, **gate_decision_fields(decision))
        return {"passed": decision.passed, "message": decision.message(), "decision": decision.to_dict()}

    def _versus_baseline(self, new: EvalResult) -> tuple[dict[str, dict[str, Any]], bool]:
        """The gate's paired test of ``new`` against the base model, per gated metric."""
        g = self.config.gate
        baseline = EvalResult.load(self.state["baseline"]["file"])
        decision = RegressionGate(g.tolerance, mode=g.mode, metrics=g.metrics).compare(new, baseline)
        out = {
            name: {
                "delta": c.delta,
                "test": c.test,
                "p_value": c.p_value,
                "significant": c.significant,
                "verdict": c.verdict,
            }
            for name, c in decision.comparisons.items()
        }
        return out, all(c.verdict == "improvement" for c in decision.comparisons.values())

    def _annotate_manifest(
        self,
        run_id: str,
        k: int,
        gen: dict[str, Any],
        jud: dict[str, Any],
        prs: dict[str, Any],
        gate: dict[str, Any],
    ) -> None:
        """Reference the iteration's data files (with hashes) and the gate decision; re-seal."""
        path = self.store.manifest_path(run_id)
        manifest = RunManifest.load(path)
        manifest.verify()
        manifest.extra["rlaif"] = {
            "pipeline": self.config.name,
            "iteration": k,
            "policy_adapter": gen.get("policy_adapter"),
            "candidates": {"path": gen["file"], "sha256": gen["sha256"]},
            "judgments": {
                "path": jud["file"],
                "sha256": jud["sha256"],
                "agreement_rate": jud.get("agreement_rate"),
            },
            "pairs": {"path": prs["file"], "sha256": prs["sha256"], "count": prs["count"]},
            "gate": {"passed": gate["passed"], "message": gate["message"]},
        }
        if "executor" in gen or "executor" in jud:  # local runs keep the record they always had
            manifest.extra["rlaif"]["executor"] = {
                stage: rec["executor"]
                for stage, rec in (("generate", gen), ("judge", jud))
                if "executor" in rec
            }
        manifest.seal(self.config.dpo.manifest.signing_key_path).save(path)
        attest_if_configured(self.store, run_id)  # the re-sealed manifest gets fresh attestations
