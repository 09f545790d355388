"""Evaluate predictions with several metrics at once, each with a confidence interval.

::

    from provenir.eval.harness import MultiMetricEvaluator

    result = MultiMetricEvaluator().evaluate(dataset, predictions)
    em = result.metrics["exact_match"]
    print(f"{em.mean:.3f}  [{em.ci_lower:.3f}, {em.ci_upper:.3f}]")

``dataset`` is a list of dicts or a ``datasets.Dataset``, one row per prediction, in the same
order. Each row's reference is read from, in this order of precedence:

* ``references``: a non-empty list of reference strings (several acceptable answers);
* ``reference``: one string;
* ``response``: one string (the SFT column, so a training eval split works as is).

``predictions`` is a list of strings. Binary metrics (exact match) get a Wilson score interval;
continuous ones (F1, BLEU, ROUGE) a seeded percentile bootstrap interval, or with
``continuous_interval="bca"`` a BCa interval (``scipy.stats.bootstrap``). Per-item scores are
kept, so :class:`~provenir.eval.regression.RegressionGate` can compare two results item by item;
``item_keys`` (a hash of each row's prompt and references) lets it check that the items match.
Rows with a ``cluster`` field (several samples of one prompt share it) keep it per item, so the
gate can use cluster-robust standard errors.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provenir.core.atomic import atomic_write_json
from provenir.core.errors import EvaluationError
from provenir.core.manifest import utc_now
from provenir.eval.bootstrap import (
    DEFAULT_RESAMPLES,
    bca_mean_ci,
    bootstrap_corpus_ci,
    bootstrap_mean_ci,
    corpus_values,
    percentile_interval,
    resampled_sums,
)
from provenir.eval.wilson import wilson_interval

__all__ = [
    "EVAL_FILENAME",
    "EvalResult",
    "MetricResult",
    "MultiMetricEvaluator",
    "extract_clusters",
    "extract_references",
]

#: File name of a saved evaluation inside a run folder.
EVAL_FILENAME = "eval.json"
EVAL_SCHEMA_VERSION = 1

IntervalKind = Literal["wilson", "bootstrap", "bca"]
ContinuousInterval = Literal["percentile", "bca"]


@dataclass
class MetricResult:
    """One metric over ``n`` items: the mean of per-item scores and its confidence interval.

    ``corpus`` (with its own bootstrap interval) is set for metrics the field reports at corpus
    level (BLEU); ``mean`` is always the mean of ``scores``.
    """

    name: str
    mean: float
    ci_lower: float
    ci_upper: float
    n: int
    interval: IntervalKind
    confidence: float = 0.95
    binary: bool = False
    scores: list[float] | None = field(default=None, repr=False)
    corpus: float | None = None
    corpus_ci_lower: float | None = None
    corpus_ci_upper: float | None = None

    def to_dict(self, include_scores: bool = True) -> dict[str, Any]:
        """JSON-ready dict; ``include_scores=False`` drops the per-item scores (summaries)."""
        out: dict[str, Any] = {
            "mean": self.mean,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "n": self.n,
            "interval": self.interval,
            "confidence": self.confidence,
            "binary": self.binary,
        }
        if self.corpus is not None:
            out.update(
                corpus=self.corpus, corpus_ci_lower=self.corpus_ci_lower, corpus_ci_upper=self.corpus_ci_upper
            )
        if include_scores and self.scores is not None:
            out["scores"] = list(self.scores)
        return out

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> MetricResult:
        """Inverse of :meth:`to_dict`; a clear error names a missing field."""
        try:
            return cls(
                name=name,
                mean=float(data["mean"]),
                ci_lower=float(data["ci_lower"]),
                ci_upper=float(data["ci_upper"]),
                n=int(data["n"]),
                interval=data.get("interval", "bootstrap"),
                confidence=float(data.get("confidence", 0.95)),
                binary=bool(data.get("binary", False)),
                scores=[float(s) for s in data["scores"]] if data.get("scores") is not None else None,
                corpus=data.get("corpus"),
                corpus_ci_lower=data.get("corpus_ci_lower"),
                corpus_ci_upper=data.get("corpus_ci_upper"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EvaluationError(f"metric {name!r}: not a valid metric result ({exc!r})") from None


@dataclass
class EvalResult:
    """The result of one evaluation: metrics by name, item count, and how the CIs were made."""

    metrics: dict[str, MetricResult]
    n: int
    item_keys: list[str] | None = field(default=None, repr=False)
    predictions: list[str] | None = field(default=None, repr=False)
    confidence: float = 0.95
    n_bootstrap: int = DEFAULT_RESAMPLES
    seed: int = 0
    created_at: str = field(default_factory=utc_now)
    extra: dict[str, Any] = field(default_factory=dict)
    clusters: list[str] | None = field(default=None, repr=False)

    def to_dict(self, include_scores: bool = True) -> dict[str, Any]:
        """``{"metrics": {name: {"mean", "ci_lower", "ci_upper", "n", "interval", ...}}, "n", ...}``."""
        out: dict[str, Any] = {
            "schema_version": EVAL_SCHEMA_VERSION,
            "metrics": {name: m.to_dict(include_scores) for name, m in self.metrics.items()},
            "n": self.n,
            "confidence": self.confidence,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
            "created_at": self.created_at,
        }
        if include_scores and self.item_keys is not None:
            out["item_keys"] = list(self.item_keys)
        if include_scores and self.predictions is not None:
            out["predictions"] = list(self.predictions)
        if include_scores and self.clusters is not None:
            out["clusters"] = list(self.clusters)
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    def summary(self) -> dict[str, Any]:
        """The compact form attached to a manifest: everything but per-item data."""
        return self.to_dict(include_scores=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalResult:
        """Inverse of :meth:`to_dict` (also accepts a :meth:`summary`)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("metrics"), Mapping):
            raise EvaluationError("not an evaluation result: expected a mapping with a 'metrics' mapping")
        metrics = {name: MetricResult.from_dict(name, m) for name, m in data["metrics"].items()}
        n = data.get("n")
        if n is None:
            n = max((m.n for m in metrics.values()), default=0)
        return cls(
            metrics=metrics,
            n=int(n),
            item_keys=list(data["item_keys"]) if data.get("item_keys") is not None else None,
            predictions=list(data["predictions"]) if data.get("predictions") is not None else None,
            confidence=float(data.get("confidence", 0.95)),
            n_bootstrap=int(data.get("n_bootstrap", DEFAULT_RESAMPLES)),
            seed=int(data.get("seed", 0)),
            created_at=str(data.get("created_at", "")),
            extra=dict(data.get("extra", {})),
            clusters=[str(c) for c in data["clusters"]] if data.get("clusters") is not None else None,
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``eval.json`` atomically (a reader never sees half a file)."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EvalResult:
        """Read a file written by :meth:`save`."""
        p = Path(path)
        if not p.is_file():
            raise EvaluationError(f"evaluation result not found: {p}")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EvaluationError(f"{p}: not valid JSON ({exc})") from None
        return cls.from_dict(data)

    def per_item(self) -> list[dict[str, float]]:
        """Per-item scores as one ``{metric: score}`` dict per item (metrics that kept scores)."""
        kept = {name: m.scores for name, m in self.metrics.items() if m.scores is not None}
        return [{name: scores[i] for name, scores in kept.items()} for i in range(self.n)]

    def format_table(self) -> str:
        """A plain-text table: metric, mean, CI, interval kind, n (and corpus score where set)."""
        pct = round(self.confidence * 100)
        header = f"{'metric':<20} {'mean':>7}  {f'{pct}% CI':<17} {'interval':<9} {'n':>6}"
        lines = [header, "-" * len(header)]
        for name, m in self.metrics.items():
            ci = f"[{m.ci_lower:.3f}, {m.ci_upper:.3f}]"
            line = f"{name:<20} {m.mean:>7.3f}  {ci:<17} {m.interval:<9} {m.n:>6}"
            if m.corpus is not None:
                line += f"   corpus {m.corpus:.3f} [{m.corpus_ci_lower:.3f}, {m.corpus_ci_upper:.3f}]"
            lines.append(line)
        return "\n".join(lines)


def _item_key(prompt: Any, references: list[str]) -> str:
    # Short content hash of what defines an item, to check two results scored the same items.
    blob = json.dumps([prompt, references], ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def extract_clusters(rows: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """Each row's ``cluster`` id (as a string), or None when no row has one; some but not all is an error."""
    marked = [row.get("cluster") is not None for row in rows]
    if not any(marked):
        return None
    if not all(marked):
        first = marked.index(False)
        raise EvaluationError(
            f"row {first}: no 'cluster' id, but other rows have one; give every row one or none"
        )
    return [str(row["cluster"]) for row in rows]


def extract_references(dataset: Iterable[Mapping[str, Any]]) -> tuple[list[list[str]], list[str]]:
    """References (a list per row) and item keys from a dataset, by the precedence in the module doc."""
    refs: list[list[str]] = []
    keys: list[str] = []
    for i, row in enumerate(dataset):
        if not isinstance(row, Mapping):
            raise EvaluationError(f"row {i}: expected a mapping (dict), got {type(row).__name__}")
        if row.get("references") is not None:
            value = row["references"]
            if isinstance(value, str) or not isinstance(value, Sequence) or not value:
                raise EvaluationError(f"row {i}: 'references' must be a non-empty list of strings")
            item = list(value)
        elif row.get("reference") is not None:
            item = [row["reference"]]
        elif row.get("response") is not None:
            item = [row["response"]]
        else:
            raise EvaluationError(
                f"row {i}: no reference found; "
                "expected a 'references' list, a 'reference' or a 'response' field"
            )
        if not all(isinstance(r, str) for r in item):
            raise EvaluationError(f"row {i}: every reference must be a string")
        refs.append(item)
        keys.append(_item_key(row.get("prompt"), item))
    return refs, keys


class MultiMetricEvaluator:
    """Compute several metrics, each with a confidence interval, on the same predictions.

    Args:
        metrics: registered metric names or :class:`~provenir.eval.metrics.MetricFn` objects;
            default ``exact_match, token_f1, bleu4, rouge_l``.
        confidence: two-sided confidence level of every interval (default 0.95).
        n_bootstrap: bootstrap resamples for continuous metrics (default 1000).
        seed: bootstrap seed; the same seed gives the same intervals.
        keep_predictions: store the predictions in the result (and so in ``eval.json``).
        continuous_interval: ``"percentile"`` (default) or ``"bca"`` for continuous metrics.
    """

    def __init__(
        self,
        metrics: Sequence[Any] | None = None,
        *,
        confidence: float = 0.95,
        n_bootstrap: int = DEFAULT_RESAMPLES,
        seed: int = 0,
        keep_predictions: bool = False,
        continuous_interval: ContinuousInterval = "percentile",
    ) -> None:
        from provenir.eval.metrics import DEFAULT_METRICS
        from provenir.plugins.registry import PluginRegistry

        if not 0.0 < confidence < 1.0:
            raise EvaluationError(f"confidence must be strictly between 0 and 1, got {confidence}")
        if n_bootstrap < 1:
            raise EvaluationError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
        if continuous_interval not in ("percentile", "bca"):
            raise EvaluationError(
                f"continuous_interval must be 'percentile' or 'bca', got {continuous_interval!r}"
            )
        resolved = []
        for m in DEFAULT_METRICS if metrics is None else metrics:
            resolved.append(PluginRegistry.create("metric", m) if isinstance(m, str) else m)
        if not resolved:
            raise EvaluationError("no metrics to compute: pass at least one metric")
        names = [m.name for m in resolved]
        if len(set(names)) != len(names):
            raise EvaluationError(f"metric names must be unique, got {names}")
        self.metrics = resolved
        self.confidence = confidence
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self.keep_predictions = keep_predictions
        self.continuous_interval: ContinuousInterval = continuous_interval

    def evaluate(self, dataset: Iterable[Mapping[str, Any]], predictions: Sequence[str]) -> EvalResult:
        """Score ``predictions`` against the references of ``dataset`` (row ``i`` pairs with ``i``)."""
        rows = list(dataset)
        refs, keys = extract_references(rows)
        return self.evaluate_texts(predictions, refs, item_keys=keys, clusters=extract_clusters(rows))

    def evaluate_texts(
        self,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        *,
        item_keys: Sequence[str] | None = None,
        clusters: Sequence[str] | None = None,
    ) -> EvalResult:
        """Score ``predictions[i]`` against the list of strings ``references[i]``.

        ``clusters``: one cluster id per item (items that share a prompt), kept in the result.
        """
        predictions = list(predictions)
        if not predictions and not references:
            raise EvaluationError("nothing to evaluate: the dataset and the predictions are empty")
        if len(predictions) != len(references):
            raise EvaluationError(
                f"{len(predictions)} predictions for {len(references)} dataset rows: "
                "they must pair up one to one"
            )
        if clusters is not None and len(clusters) != len(predictions):
            raise EvaluationError(
                f"{len(clusters)} cluster ids for {len(predictions)} items: give one per item"
            )
        for i, p in enumerate(predictions):
            if not isinstance(p, str):
                raise EvaluationError(f"prediction {i} is {type(p).__name__}, expected a string")
        items = {m.name: m.compute(predictions, references) for m in self.metrics}
        boot_means, boot_corpus = self._shared_bootstrap(items)
        results = {
            name: metric_result_from_scores(
                name,
                item.scores,
                binary=item.binary,
                confidence=self.confidence,
                n_bootstrap=self.n_bootstrap,
                seed=self.seed,
                corpus=item.corpus,
                corpus_stats=item.corpus_stats,
                corpus_fn=item.corpus_fn,
                bootstrap_means=boot_means.get(name),
                bootstrap_corpus=boot_corpus.get(name),
                continuous_interval=self.continuous_interval,
            )
            for name, item in items.items()
        }
        return EvalResult(
            metrics=results,
            n=len(predictions),
            item_keys=list(item_keys) if item_keys is not None else None,
            predictions=predictions if self.keep_predictions else None,
            confidence=self.confidence,
            n_bootstrap=self.n_bootstrap,
            seed=self.seed,
            clusters=[str(c) for c in clusters] if clusters is not None else None,
        )

    def _shared_bootstrap(self, items: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        # One set of resamples for every continuous metric and corpus score: the intervals are
        # those of separate seeded bootstraps, at the cost of one.
        import numpy as np

        n = len(next(iter(items.values())).scores)
        blocks, spans, start = [], {}, 0
        for name, item in items.items():
            if item.binary:
                continue
            block = [np.asarray(item.scores, dtype=np.float64)[:, None]]
            if item.corpus_stats is not None and item.corpus_fn is not None:
                block.append(np.asarray(item.corpus_stats, dtype=np.float64).reshape(n, -1))
            width = sum(b.shape[1] for b in block)
            blocks.extend(block)
            spans[name] = (start, width)
            start += width
        if not blocks:
            return {}, {}
        sums = resampled_sums(np.hstack(blocks), n_resamples=self.n_bootstrap, seed=self.seed)
        means, corpus = {}, {}
        for name, (lo, width) in spans.items():
            means[name] = sums[:, lo] / n
            if width > 1:
                corpus[name] = corpus_values(sums[:, lo + 1 : lo + width], items[name].corpus_fn)
        return means, corpus


def metric_result_from_scores(
    name: str,
    scores: Sequence[float],
    *,
    binary: bool,
    confidence: float = 0.95,
    n_bootstrap: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    corpus: float | None = None,
    corpus_stats: Any | None = None,
    corpus_fn: Any | None = None,
    bootstrap_means: Any | None = None,
    bootstrap_corpus: Any | None = None,
    continuous_interval: ContinuousInterval = "percentile",
) -> MetricResult:
    """A :class:`MetricResult` from per-item scores: Wilson interval if binary, else bootstrap.

    ``bootstrap_means``/``bootstrap_corpus``: resampled values already computed (shared
    resamples, see :meth:`MultiMetricEvaluator.evaluate_texts`); otherwise they are drawn here.
    ``continuous_interval="bca"``: a continuous mean gets :func:`~provenir.eval.bootstrap.bca_mean_ci`.
    """
    n = len(scores)
    if n == 0:
        raise EvaluationError(f"metric {name!r}: no scores (empty evaluation set)")
    scores = [float(s) for s in scores]
    if any(math.isnan(s) for s in scores):
        raise EvaluationError(f"metric {name!r}: a per-item score is NaN")
    mean = math.fsum(scores) / n
    if binary:
        if any(s not in (0.0, 1.0) for s in scores):
            raise EvaluationError(f"metric {name!r} is declared binary but has scores other than 0 and 1")
        lo, hi = wilson_interval(int(sum(scores)), n, confidence)
        interval: IntervalKind = "wilson"
    elif continuous_interval == "bca":
        lo, hi = bca_mean_ci(scores, confidence=confidence, n_resamples=n_bootstrap, seed=seed)
        interval = "bca"
    else:
        if bootstrap_means is not None:
            lo, hi = percentile_interval(bootstrap_means, confidence)
        else:
            lo, hi = bootstrap_mean_ci(scores, confidence=confidence, n_resamples=n_bootstrap, seed=seed)
        interval = "bootstrap"
    result = MetricResult(
        name=name,
        mean=mean,
        ci_lower=lo,
        ci_upper=hi,
        n=n,
        interval=interval,
        confidence=confidence,
        binary=binary,
        scores=scores,
    )
    if corpus is not None:
        result.corpus = float(corpus)
        if bootstrap_corpus is not None:
            result.corpus_ci_lower, result.corpus_ci_upper = percentile_interval(bootstrap_corpus, confidence)
        elif corpus_stats is not None and corpus_fn is not None:
            result.corpus_ci_lower, result.corpus_ci_upper = bootstrap_corpus_ci(
                corpus_stats, corpus_fn, confidence=confidence, n_resamples=n_bootstrap, seed=seed
            )
    return result
