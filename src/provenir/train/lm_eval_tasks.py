"""Standard benchmarks through lm-evaluation-harness: a run's base model vs base + adapter, paired.

::

    from provenir.train.lm_eval_tasks import evaluate_tasks, retention_comparisons

    out = evaluate_tasks("artifacts/manifests/<run_id>.json", ["arc_easy", "my_tasks/arith.yaml"], limit=200)
    acc = out["arc_easy"].tuned.metrics["acc"]
    print(acc.mean, acc.ci_lower, acc.ci_upper)              # Wilson interval over lm-eval's per-item 0/1
    print(out["arc_easy"].decision.comparisons["acc"].p_value)  # McNemar, tuned vs base on the same items

    decisions = retention_comparisons("artifacts/manifests/<run_id>.json", gate=RegressionGate(0.01))

A task is a name registered in lm-eval, a task YAML file, or a folder of task YAML files (every
task defined there); a file's or folder's folder is given to lm-eval's ``TaskManager`` as
``include_path``, so its ``include:`` siblings resolve. lm-eval's built-in index (thousands of
YAML files, seconds to scan) is only built when a registered name is asked for.

Both models are run by lm-eval's own ``simple_evaluate`` (``model="hf"``, the tuned one with
``peft=<run>/adapter``) with ``log_samples=True``: each task's per-item scores become a
:class:`~provenir.eval.harness.EvalResult` whose item keys are lm-eval's ``doc_id``, so
Provenir's intervals (Wilson for 0/1 metrics, bootstrap otherwise) and paired tests (McNemar,
paired bootstrap) apply. A metric whose lm-eval aggregate is not the mean of its per-item
scores (corpus BLEU, F1 over the set) is left out, with a note, rather than reported as a
different number than lm-eval's.

Stored per task under ``<run_dir>/lm_eval/<task>/``: ``base.json`` and ``tuned.json``
(EvalResult), lm-eval's raw per-sample records (``base_samples.jsonl``, ``tuned_samples.jsonl``)
and the resolved task config (``config.json``). The record (lm-eval's version, each task's config
SHA-256 and YAML SHA-256, the means) goes into the manifest (``extra.lm_eval``, re-sealed, every
file above recorded as an output), into ``lm_eval/summary.json``, and into the run's
``eval.json`` (``extra.lm_eval``) when the run has one.

Refused (:class:`EvaluationError`): base and tuned models that answer every item of every task
identically (the same log-likelihoods; generated texts for ``generate_until`` tasks): the
adapter was not applied, and a comparison would only measure the base model twice.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenir.core.atomic import atomic_write_json, atomic_write_text
from provenir.core.errors import EvaluationError, ManifestTamperedError
from provenir.core.hashing import sha256_file, sha256_json
from provenir.core.manifest import utc_now
from provenir.core.store import RunStore
from provenir.eval.bootstrap import DEFAULT_RESAMPLES
from provenir.eval.harness import EVAL_FILENAME, EvalResult, MetricResult, metric_result_from_scores
from provenir.eval.regression import GateDecision, RegressionGate

__all__ = [
    "LM_EVAL_DIR",
    "TaskComparison",
    "evaluate_tasks",
    "results_from_lm_eval",
    "retention_comparisons",
]

#: Folder, inside a run folder, that holds one subfolder of results per lm-eval task.
LM_EVAL_DIR = "lm_eval"
#: Key of the lm-eval record in ``manifest.extra`` and in ``eval.json``'s ``extra``.
RECORD_KEY = "lm_eval"

#: lm-eval metrics whose per-item score is a 0/1 outcome (Wilson intervals, McNemar tests).
BINARY_METRICS = frozenset({"acc", "acc_norm", "acc_mutual_info", "exact_match"})
_LOGLIKELIHOOD_TYPES = frozenset({"multiple_choice", "loglikelihood", "loglikelihood_rolling"})
# A task name becomes a folder name: nothing that could leave lm_eval/.
_TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass
class TaskComparison:
    """One lm-eval task on the run's base model and on base + adapter, item by item.

    ``decision`` is :class:`RegressionGate`'s default paired comparison of ``tuned`` against
    ``base`` (delta, its interval, McNemar or paired-bootstrap p-value per metric); use
    :func:`retention_comparisons` for a gate with other settings.
    """

    task: str
    base: EvalResult
    tuned: EvalResult
    task_hash: str
    output_type: str
    decision: GateDecision
    yaml_sha256: str | None = None
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def format_table(self) -> str:
        """The task's metrics: base and tuned with intervals, the paired delta with its interval and p."""
        pct = round(self.base.confidence * 100)
        dpct = round((1 - self.decision.alpha) * 100)
        title = f"{self.task} ({self.output_type}, {self.base.n} items, config sha256 {self.task_hash[:12]})"
        header = (
            f"{'metric':<24} {'base':>6} {f'{pct}% CI':<16} {'tuned':>6} {f'{pct}% CI':<16} "
            f"{'delta':>7} {f'{dpct}% CI':<18} {'p':>6}  test"
        )
        lines = [title, header, "-" * len(header)]
        for name, comp in self.decision.comparisons.items():
            b, t = self.base.metrics[name], self.tuned.metrics.get(name)
            if t is None or comp.delta is None:
                lines.append(f"{name:<24} {b.mean:>6.3f} {'':<16} {'missing':>6}")
                continue
            dci = (
                f"[{comp.delta_ci_lower:+.3f}, {comp.delta_ci_upper:+.3f}]"
                if comp.delta_ci_lower is not None and comp.delta_ci_upper is not None
                else ""
            )
            p = f"{comp.p_value:.3g}" if comp.p_value is not None else "-"
            lines.append(
                f"{name:<24} {b.mean:>6.3f} {f'[{b.ci_lower:.3f}, {b.ci_upper:.3f}]':<16} "
                f"{t.mean:>6.3f} {f'[{t.ci_lower:.3f}, {t.ci_upper:.3f}]':<16} "
                f"{comp.delta:>+7.3f} {dci:<18} {p:>6}  {comp.test or '-'}"
            )
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-item scores)."""
        return {
            "task": self.task,
            "task_hash": self.task_hash,
            "yaml_sha256": self.yaml_sha256,
            "output_type": self.output_type,
            "base": self.base.summary(),
            "tuned": self.tuned.summary(),
            "decision": self.decision.to_dict(),
            "notes": list(self.notes),
            "files": dict(self.files),
        }


@dataclass(frozen=True)
class _TaskSet:
    """What to hand lm-eval: task names, the folders to index, and whether its own tasks are needed."""

    names: list[str]
    include_paths: list[str]
    include_defaults: bool


def evaluate_tasks(
    manifest_path: str | os.PathLike[str],
    tasks: Sequence[str],
    *,
    limit: int | float | None = None,
    num_fewshot: int | None = None,
    batch_size: int = 8,
    device: str | None = None,
    attach: bool = True,
    n_bootstrap: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, TaskComparison]:
    """Run lm-eval ``tasks`` on a run's base model and on base + its adapter; compare them paired.

    ``tasks``: registered lm-eval names, task YAML files, or folders of them. ``limit`` and
    ``num_fewshot`` are lm-eval's (``limit`` below 1 is a fraction of each task). ``device``
    defaults to the run's. The manifest must verify; with ``attach`` the record is sealed into
    it (module docs). Without ``attach`` the files are written all the same (as ``evaluate_run``
    writes ``eval.json``), so a manifest that sealed earlier ones no longer verifies. Returns one :class:`TaskComparison` per lm-eval task (a group expands to
    its tasks). Raises :class:`EvaluationError` when the adapter changed no answer at all.
    """
    from provenir.core.extras import require_extra

    require_extra("lm_eval", "eval", purpose="lm-evaluation-harness tasks")
    stored = RunStore.of_manifest_file(manifest_path).open(manifest_path)
    manifest, rdir, store = stored.manifest, stored.run_dir, stored.store
    if not stored.verification.ok or manifest is None or rdir is None:
        problems = "; ".join(stored.verification.problems)
        raise ManifestTamperedError(f"{stored.manifest_file}: {problems}; not evaluating it")
    specs = [t.strip() for t in tasks if t.strip()]
    if not specs:
        raise EvaluationError("no lm-eval tasks given: name at least one task, YAML file or folder")
    base_args, tuned_args, run_device = _model_args(manifest.config, rdir, device)

    import lm_eval
    from lm_eval.tasks import TaskManager

    task_set = _resolve_tasks(specs, TaskManager)
    manager = TaskManager(
        include_path=task_set.include_paths or None, include_defaults=task_set.include_defaults
    )
    known = set(manager.all_tasks)
    unknown = [n for n in task_set.names if n not in known]
    if unknown:
        raise EvaluationError(
            f"unknown lm-eval task {', '.join(map(repr, unknown))}: give a registered task name, "
            "a task YAML file or a folder of them"
        )
    runs = {}
    for which, model_args in (("base", base_args), ("tuned", tuned_args)):
        try:
            runs[which] = lm_eval.simple_evaluate(
                model="hf",
                model_args=model_args,
                tasks=list(task_set.names),
                task_manager=manager,
                num_fewshot=num_fewshot,
                batch_size=batch_size,
                device=run_device,
                limit=limit,
                log_samples=True,
                bootstrap_iters=0,  # Provenir computes its own intervals from the per-item scores
            )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            # A dataset that is not available offline, a malformed task: one line, not lm-eval's trace.
            first = (str(exc).strip().splitlines() or [""])[0]
            raise EvaluationError(
                f"lm-eval could not run {', '.join(task_set.names)} on the {which} model: "
                f"{type(exc).__name__}: {first}"
            ) from exc
    version = str(lm_eval.__version__)
    _refuse_unapplied_adapter(runs["base"], runs["tuned"], tuned_args)

    comparisons: dict[str, TaskComparison] = {}
    for task in sorted(runs["base"]["samples"]):
        _check_task_name(task)
        comparisons[task] = _compare_task(
            task, runs, version=version, run_id=manifest.run_id, n_bootstrap=n_bootstrap, seed=seed
        )
    record = _write_results(rdir, comparisons, runs, version=version, limit=limit, num_fewshot=num_fewshot)
    if attach:
        _attach(stored.manifest_file, record)
    from provenir.governance.audit import AuditLogger

    AuditLogger(store.audit_dir).log(
        "lm_eval_completed",
        run_id=manifest.run_id,
        lm_eval_version=version,
        tasks={
            name: {
                "config_sha256": c.task_hash,
                "n": c.base.n,
                "base": {m: r.mean for m, r in c.base.metrics.items()},
                "tuned": {m: r.mean for m, r in c.tuned.metrics.items()},
            }
            for name, c in comparisons.items()
        },
    )
    if attach:
        from provenir.governance.attestation import attest_if_configured

        attest_if_configured(store, manifest.run_id)
    return comparisons


def retention_comparisons(
    source: str | os.PathLike[str] | Mapping[str, TaskComparison],
    tasks: Sequence[str] | None = None,
    *,
    gate: RegressionGate | None = None,
) -> dict[str, GateDecision]:
    """The paired decision, base vs tuned, per lm-eval task: did fine-tuning keep general ability?

    ``source``: a run's manifest path (the results :func:`evaluate_tasks` sealed into it are
    read back only after the manifest and every recorded file verify), or the mapping
    :func:`evaluate_tasks` returned. ``tasks``: task names (default: every evaluated task).
    ``gate``: the regression gate to apply (default :class:`RegressionGate`'s defaults). Each
    decision is ``gate.compare(tuned, base)``: it never raises on a regression; the caller
    decides what a tripped task means.
    """
    gate = gate or RegressionGate()
    pairs: dict[str, tuple[EvalResult, EvalResult]]
    if isinstance(source, Mapping):
        pairs = {name: (c.base, c.tuned) for name, c in source.items()}
    else:
        pairs = _stored_pairs(source)
    names = list(tasks) if tasks is not None else sorted(pairs)
    missing = [n for n in names if n not in pairs]
    if missing:
        raise EvaluationError(
            f"no lm-eval results for task {', '.join(map(repr, missing))}: "
            "run `provenir eval RUN --tasks ...` with it first"
        )
    decisions = {}
    for name in names:
        base, tuned = pairs[name]
        if base.extra.get("doc_hashes") != tuned.extra.get("doc_hashes"):
            raise EvaluationError(f"task {name}: base and tuned results were scored on different documents")
        decisions[name] = gate.compare(tuned, base)
    return decisions


def results_from_lm_eval(
    output: Mapping[str, Any],
    task: str,
    *,
    confidence: float = 0.95,
    n_bootstrap: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[EvalResult, list[str]]:
    """One task of a ``simple_evaluate(..., log_samples=True)`` output as an :class:`EvalResult`.

    Metrics are named as lm-eval names them, without the filter when it is ``none``
    (``acc``; ``exact_match,strict-match`` otherwise). Items are ordered by ``doc_id``, which is
    each item's key. Returns the result and notes on the metrics left out.
    """
    samples = output.get("samples", {}).get(task)
    if not samples:
        raise EvaluationError(f"lm-eval returned no per-sample records for task {task!r} (log_samples off?)")
    aggregates = output.get("results", {}).get(task, {})
    by_filter: dict[str, list[Mapping[str, Any]]] = {}
    for s in sorted(samples, key=lambda s: (s["filter"], s["doc_id"])):
        by_filter.setdefault(str(s["filter"]), []).append(s)
    first = next(iter(by_filter.values()))
    doc_ids = [int(s["doc_id"]) for s in first]
    metrics: dict[str, MetricResult] = {}
    notes: list[str] = []
    for filt, rows in by_filter.items():
        if [int(s["doc_id"]) for s in rows] != doc_ids:
            raise EvaluationError(f"task {task!r}: filter {filt!r} scored other documents than the others")
        for metric in rows[0]["metrics"]:
            name = metric if filt == "none" else f"{metric},{filt}"
            values = [s.get(metric) for s in rows]
            if not all(isinstance(v, numbers.Real) and not isinstance(v, complex) for v in values):
                notes.append(f"{name}: not a number per item (a corpus-level metric); left out")
                continue
            scores = [float(v) for v in values]  # type: ignore[arg-type]
            reported = aggregates.get(f"{metric},{filt}")
            mean = math.fsum(scores) / len(scores)
            if not isinstance(reported, numbers.Real) or not math.isclose(
                mean, float(reported), rel_tol=1e-9, abs_tol=1e-12
            ):
                notes.append(
                    f"{name}: lm-eval's aggregate {reported!r} is not the mean of its items; left out"
                )
                continue
            binary = metric in BINARY_METRICS and all(s in (0.0, 1.0) for s in scores)
            metrics[name] = metric_result_from_scores(
                name, scores, binary=binary, confidence=confidence, n_bootstrap=n_bootstrap, seed=seed
            )
    if not metrics:
        raise EvaluationError(f"task {task!r}: no metric with per-item scores ({'; '.join(notes)})")
    config = output.get("configs", {}).get(task, {})
    predictions = None
    if config.get("output_type") == "generate_until":
        predictions = [_text(s["filtered_resps"]) for s in first]
    result = EvalResult(
        metrics=metrics,
        n=len(doc_ids),
        item_keys=[str(d) for d in doc_ids],
        predictions=predictions,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        seed=seed,
        extra={
            "task": task,
            "output_type": config.get("output_type"),
            "doc_hashes": [str(s.get("doc_hash")) for s in first],
            "lm_eval_results": {k: v for k, v in aggregates.items() if isinstance(v, int | float | str)},
        },
    )
    return result, notes


def task_config_sha256(config: Mapping[str, Any]) -> str:
    """SHA-256 of a resolved task config (as ``simple_evaluate`` returns it) in canonical JSON."""
    return sha256_json(json.loads(json.dumps(config, default=str)))


# -- internals ---------------------------------------------------------------------------------


def _model_args(
    config_dict: Mapping[str, Any], rdir: Path, device: str | None
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """lm-eval ``hf`` model arguments for the base model and the tuned one, and the device."""
    from provenir.core.config import RunConfig
    from provenir.train.backends.trl_backend import resolve_device
    from provenir.train.model_files import model_folder

    config = RunConfig.from_dict(dict(config_dict))
    if device is not None:
        config = config.model_copy(update={"device": device})
    run_device = resolve_device(config)
    base: dict[str, Any] = {
        "pretrained": str(model_folder(config.model_name_or_path, config.model_revision)),
        "dtype": {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[config.precision],
    }
    if config.peft.load_in_4bit:
        base["load_in_4bit"] = True
    elif config.peft.load_in_8bit:
        base["load_in_8bit"] = True
    if config.peft.enabled:
        weights = rdir / "adapter"
        tuned = {**base, "peft": str(weights)}
    else:
        weights = rdir / "model"
        tuned = {**base, "pretrained": str(weights)}
    if not weights.is_dir():
        raise EvaluationError(f"the run has no {weights.name} folder at {weights}")
    return base, tuned, run_device


def _resolve_tasks(specs: Sequence[str], manager_cls: Any) -> _TaskSet:
    """Task names from names, YAML files and folders; the folders lm-eval must index."""
    names: list[str] = []
    include: list[str] = []
    files: dict[Path, str] = {}
    folders: dict[Path, str] = {}
    wants_defaults = False
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_file():
            if path.suffix not in (".yaml", ".yml"):
                raise EvaluationError(f"{spec}: a task file must be a .yaml file")
            files[path.resolve()] = spec
            include.append(str(path.resolve().parent))
        elif path.is_dir():
            folders[path.resolve()] = spec
            include.append(str(path.resolve()))
        elif "/" in spec or spec.endswith((".yaml", ".yml")):
            raise EvaluationError(f"task file or folder {spec} does not exist")
        else:
            wants_defaults = True
            names.append(spec)
    include = list(dict.fromkeys(include))
    if files or folders:
        # Indexing only the given folders is fast; their entries say which YAML defines which task.
        index = manager_cls(include_path=include, include_defaults=False).task_index
        for path, spec in {**files, **folders}.items():
            found = []
            for name, entry in index.items():
                where = entry.yaml_path.resolve() if entry.yaml_path is not None else None
                kind = entry.kind.name  # lm-eval's Kind enum: TASK, PY_TASK, GROUP, TAG
                if where is None or kind == "TAG":
                    continue
                in_file = path.is_file() and where == path
                in_folder = path.is_dir() and kind in ("TASK", "PY_TASK") and path in where.parents
                if in_file or in_folder:
                    found.append(name)
            if not found:
                raise EvaluationError(
                    f"{spec}: lm-eval found no task in it (a YAML file needs a 'task:' key)"
                )
            names.extend(sorted(found))
    return _TaskSet(list(dict.fromkeys(names)), include, wants_defaults)


def _check_task_name(task: str) -> None:
    if not _TASK_NAME.match(task):
        raise EvaluationError(f"lm-eval task name {task!r} cannot name a results folder")


def _responses(output: Mapping[str, Any]) -> dict[str, tuple[str, list[Any]]]:
    """Per task: its output type and each document's raw responses (before filters), by doc id."""
    out = {}
    for task, samples in output["samples"].items():
        kind = output.get("configs", {}).get(task, {}).get("output_type", "")
        # Every filter of a document holds the same raw responses: one per document is enough.
        by_doc = {s["doc_id"]: s["resps"] for s in samples}
        out[task] = (kind, [by_doc[d] for d in sorted(by_doc)])
    return out


def _refuse_unapplied_adapter(
    base: Mapping[str, Any], tuned: Mapping[str, Any], tuned_args: Mapping[str, Any]
) -> None:
    """Raise when the tuned model answered every item of every task exactly as the base model."""
    b, t = _responses(base), _responses(tuned)
    if any(b[task][1] != t.get(task, ("", None))[1] for task in b):
        return
    kinds = {kind for kind, _ in b.values()}
    what = " and ".join(
        sorted(
            ({"log-likelihoods"} if kinds & _LOGLIKELIHOOD_TYPES else set())
            | ({"generated texts"} if kinds - _LOGLIKELIHOOD_TYPES else set())
        )
    )
    items = sum(len(r) for _, r in b.values())
    weights = tuned_args.get("peft") or tuned_args.get("pretrained")
    raise EvaluationError(
        f"base and tuned models gave identical {what} on all {items} items of {', '.join(sorted(b))}: "
        f"the weights at {weights} were not applied or change nothing; not comparing them"
    )


def _compare_task(
    task: str,
    runs: Mapping[str, Mapping[str, Any]],
    *,
    version: str,
    run_id: str,
    n_bootstrap: int,
    seed: int,
) -> TaskComparison:
    config = runs["base"]["configs"].get(task, {})
    task_hash = task_config_sha256(config)
    if task_config_sha256(runs["tuned"]["configs"].get(task, {})) != task_hash:
        raise EvaluationError(f"task {task!r}: lm-eval resolved different configs for the two models")
    source = (config.get("metadata") or {}).get("config_source")
    yaml_sha = sha256_file(source) if isinstance(source, str) and Path(source).is_file() else None
    results: dict[str, EvalResult] = {}
    notes: list[str] = []
    for which in ("base", "tuned"):
        result, notes = results_from_lm_eval(runs[which], task, n_bootstrap=n_bootstrap, seed=seed)
        result.extra.update(
            model=which,
            run_id=run_id,
            lm_eval_version=version,
            task_config_sha256=task_hash,
            yaml_sha256=yaml_sha,
        )
        results[which] = result
    if results["base"].extra["doc_hashes"] != results["tuned"].extra["doc_hashes"]:
        raise EvaluationError(f"task {task!r}: lm-eval scored different documents for the two models")
    decision = RegressionGate(n_resamples=n_bootstrap, seed=seed).compare(results["tuned"], results["base"])
    return TaskComparison(
        task=task,
        base=results["base"],
        tuned=results["tuned"],
        task_hash=task_hash,
        output_type=str(config.get("output_type", "")),
        decision=decision,
        yaml_sha256=yaml_sha,
        notes=notes,
    )


def _jsonable(value: Any) -> Any:
    # numpy scalars and arrays appear in lm-eval's sample records.
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _jsonl(records: Sequence[Mapping[str, Any]]) -> str:
    return "".join(
        json.dumps(r, default=_jsonable, ensure_ascii=False, sort_keys=True) + "\n" for r in records
    )


def _text(resps: Any) -> str:
    value = resps[0] if isinstance(resps, list | tuple) and resps else resps
    return value if isinstance(value, str) else str(value)


def _write_results(
    rdir: Path,
    comparisons: Mapping[str, TaskComparison],
    runs: Mapping[str, Mapping[str, Any]],
    *,
    version: str,
    limit: int | float | None,
    num_fewshot: int | None,
) -> dict[str, Any]:
    """Write every task's files; return the record for the manifest (with the files' hashes)."""
    tasks: dict[str, Any] = {}
    for task, comp in comparisons.items():
        folder = rdir / LM_EVAL_DIR / task
        written = [
            comp.base.save(folder / "base.json"),
            comp.tuned.save(folder / "tuned.json"),
            atomic_write_text(folder / "base_samples.jsonl", _jsonl(runs["base"]["samples"][task])),
            atomic_write_text(folder / "tuned_samples.jsonl", _jsonl(runs["tuned"]["samples"][task])),
            atomic_write_text(
                folder / "config.json",
                json.dumps(runs["base"]["configs"].get(task, {}), default=str, indent=2, sort_keys=True)
                + "\n",
            ),
        ]
        comp.files = {p.relative_to(rdir).as_posix(): sha256_file(p) for p in written}
        tasks[task] = {
            "config_sha256": comp.task_hash,
            "yaml_sha256": comp.yaml_sha256,
            "output_type": comp.output_type,
            "lm_eval_version": version,
            "n": comp.base.n,
            "limit": limit,
            "num_fewshot": num_fewshot,
            "base": {m: r.mean for m, r in comp.base.metrics.items()},
            "tuned": {m: r.mean for m, r in comp.tuned.metrics.items()},
            "files": comp.files,
        }
    record = {"version": version, "evaluated_at": utc_now(), "tasks": tasks}
    summary = rdir / LM_EVAL_DIR / "summary.json"
    previous = _read_json(summary).get("tasks", {}) if summary.is_file() else {}
    record["tasks"] = {**previous, **tasks}  # tasks evaluated earlier stay recorded
    atomic_write_json(summary, record)
    return record


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _attach(manifest_file: Path, record: dict[str, Any]) -> None:
    """Seal the record and every lm_eval/ file into the (verified) manifest; update eval.json."""
    stored = RunStore.of_manifest_file(manifest_file).open(manifest_file, check_outputs=False)
    manifest = stored.manifest
    if manifest is None or not stored.verification.ok:
        problems = "; ".join(stored.verification.problems)
        raise ManifestTamperedError(f"{manifest_file}: {problems}; not attaching lm-eval results")
    rdir = stored.store.run_dir(manifest.run_id)
    for path in sorted((rdir / LM_EVAL_DIR).rglob("*")):
        if path.is_file():
            manifest.outputs[path.relative_to(rdir).as_posix()] = sha256_file(path)
    slim = {
        **record,
        "tasks": {t: {k: v for k, v in r.items() if k != "files"} for t, r in record["tasks"].items()},
    }
    manifest.extra[RECORD_KEY] = slim
    eval_path = rdir / EVAL_FILENAME
    if eval_path.is_file():
        result = EvalResult.load(eval_path)
        result.extra[RECORD_KEY] = slim
        result.save(eval_path)
        manifest.eval = result.summary()
        manifest.outputs[EVAL_FILENAME] = sha256_file(eval_path)
    key = (manifest.config.get("manifest") or {}).get("signing_key_path")
    manifest.seal(signing_key=key)
    manifest.save(manifest_file)


def _stored_pairs(manifest_path: str | os.PathLike[str]) -> dict[str, tuple[EvalResult, EvalResult]]:
    """Base and tuned results of every task sealed into the run's manifest, after verification."""
    stored = RunStore.of_manifest_file(manifest_path).open(manifest_path)
    manifest, rdir = stored.manifest, stored.run_dir
    if not stored.verification.ok or manifest is None or rdir is None:
        problems = "; ".join(stored.verification.problems)
        raise ManifestTamperedError(f"{stored.manifest_file}: {problems}; not reading its lm-eval results")
    recorded = (manifest.extra.get(RECORD_KEY) or {}).get("tasks", {})
    pairs = {}
    for task in recorded:
        _check_task_name(task)
        folder = rdir / LM_EVAL_DIR / task
        if f"{LM_EVAL_DIR}/{task}/base.json" not in manifest.outputs:
            raise EvaluationError(f"task {task}: its results are not recorded in the manifest")
        pairs[task] = (EvalResult.load(folder / "base.json"), EvalResult.load(folder / "tuned.json"))
    return pairs
