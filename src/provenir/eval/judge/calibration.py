"""Judge calibration: how far a judge agrees with human preference labels, and how length sways it.

Human labels are JSONL rows ``{"id", "prompt", "a", "b", "preferred": "a" | "b" | "tie"}`` (an
optional ``"reference"`` is given to reference-based judges such as ``reward``). Every pair is
judged in both presentation orders; the two verdicts are reconciled by
:func:`~provenir.eval.judge.combine_orders` and the reconciled verdict is compared with the human
one. A judge that already asks both orders itself (remote judges with ``position_swap``) is asked
once per pair, and its ``Preference.agreed`` says whether its two orders agreed. The report holds:

* accuracy with a Wilson interval, Cohen's kappa and the linearly weighted kappa (``b < tie < a``);
* the confusion matrix (human x judge) with example ids per cell;
* order consistency: the share of items whose two presentation orders gave the same verdict;
* a length-bias slope: logistic regression of "judge prefers a" on ``len(a) - len(b)``;
* the raw win rate of ``a`` and AlpacaEval's length-controlled win rate.

Reports are stored by the run store under ``judge_calibrations/<judge>-<labels>.json`` with the
SHA-256 of their canonical JSON, so RLAIF and the flywheel can refuse a judge whose recorded kappa
is below ``judge.min_kappa`` (:func:`require_min_kappa`).

Example::

    labels = load_labels("human.jsonl")
    report = calibrate(StubJudge(), labels, JudgeSpec("stub"))
    stored = store_calibration(report, RunStore("artifacts"))
    report.kappa, report.length_bias.slope, stored.path
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provenir.core.atomic import atomic_write_json
from provenir.core.errors import ConfigError, DataError, JudgeError, ManifestTamperedError
from provenir.core.hashing import sha256_file, sha256_json
from provenir.core.manifest import utc_now
from provenir.core.store import RunStore
from provenir.eval.judge.batch import score_pairwise_batch
from provenir.eval.judge.calibration_stats import (
    ORDERED_LABELS,
    WIN_VALUE,
    LengthBias,
    cohen_kappa,
    length_bias,
    length_controlled_win_rate,
)
from provenir.eval.judge.position import combine_orders
from provenir.eval.judge.verdict import CHOICES, Preference
from provenir.eval.wilson import wilson_interval

__all__ = [
    "CalibrationReport",
    "JudgeSpec",
    "LabelRow",
    "LabelSet",
    "OrderedVerdicts",
    "StoredCalibration",
    "calibrate",
    "find_calibration",
    "load_labels",
    "require_min_kappa",
    "store_calibration",
]

REPORT_FORMAT = 1
#: Label order in the printed confusion matrix (best for ``a`` first).
DISPLAY_ORDER: tuple[str, ...] = ("a", "tie", "b")
LengthUnit = Literal["chars", "words"]


# -- human labels ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelRow:
    """One human preference: which of ``a`` and ``b`` answers ``prompt`` better (or a tie)."""

    id: str
    prompt: str
    a: str
    b: str
    preferred: str
    reference: str | None = None


@dataclass(frozen=True)
class LabelSet:
    """The validated rows of a labels file and the SHA-256 of its bytes."""

    path: str
    sha256: str
    rows: tuple[LabelRow, ...]

    def references(self) -> dict[str, str]:
        """prompt -> reference, for reference-based judges."""
        return {r.prompt: r.reference for r in self.rows if r.reference is not None}


def load_labels(path: str | os.PathLike[str]) -> LabelSet:
    """Read and validate a human labels JSONL file; any bad row is a one-line :class:`DataError`.

    Each row needs ``id`` (string or integer, unique), ``prompt``, ``a``, ``b`` (strings) and
    ``preferred`` (``a``, ``b`` or ``tie``); ``reference`` (string) is optional, and one prompt
    may not carry two different references.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"labels file not found: {p}")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{p}: not UTF-8 text") from None
    rows: list[LabelRow] = []
    seen: dict[str, int] = {}
    references: dict[str, str] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{p}: line {lineno}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise DataError(f"{where}: must be a JSON object, got {type(data).__name__}")
        row = _label_row(data, where)
        if row.id in seen:
            raise DataError(f"{where}: field 'id': {row.id!r} already used on line {seen[row.id]}")
        seen[row.id] = lineno
        if row.reference is not None and references.setdefault(row.prompt, row.reference) != row.reference:
            raise DataError(f"{where}: field 'reference' differs from an earlier row with the same prompt")
        rows.append(row)
    if not rows:
        raise DataError(f"{p}: no label rows")
    return LabelSet(str(p), sha256_file(p), tuple(rows))


def _label_row(data: Mapping[str, Any], where: str) -> LabelRow:
    known = {"id", "prompt", "a", "b", "preferred", "reference"}
    extra = sorted(set(data) - known)
    if extra:
        raise DataError(
            f"{where}: unknown field {extra[0]!r} (expected id, prompt, a, b, preferred, reference)"
        )
    for name in ("id", "prompt", "a", "b", "preferred"):
        if name not in data:
            raise DataError(f"{where}: field {name!r} is missing")
    raw_id = data["id"]
    if (
        isinstance(raw_id, bool)
        or not isinstance(raw_id, str | int)
        or (isinstance(raw_id, str) and not raw_id)
    ):
        raise DataError(f"{where}: field 'id' must be a non-empty string or an integer, got {raw_id!r}")
    for name in ("prompt", "a", "b"):
        if not isinstance(data[name], str):
            raise DataError(f"{where}: field {name!r} must be a string, got {type(data[name]).__name__}")
    if data["preferred"] not in CHOICES:
        raise DataError(f"{where}: field 'preferred' must be a, b or tie, got {data['preferred']!r}")
    reference = data.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise DataError(f"{where}: field 'reference' must be a string, got {type(reference).__name__}")
    return LabelRow(str(raw_id), data["prompt"], data["a"], data["b"], data["preferred"], reference)


# -- the judge's identity -------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeSpec:
    """What decides a configured judge's verdicts: its registered name, model and (for ``reward``) reward.

    Caching, concurrency, URLs and thresholds are left out: they do not change a verdict, so a
    calibration stays valid across them. RLAIF's and the flywheel's judge sections map onto the
    same spec (:meth:`of`), so a calibration made by the CLI is found by both.
    """

    name: str
    model: str | None = None
    reward: str | None = None

    @classmethod
    def of(cls, section: Any) -> JudgeSpec:
        """The spec of a judge config section (anything with ``name``, ``model`` and ``reward``)."""
        name = section.name
        return cls(
            name,
            getattr(section, "model", None),
            getattr(section, "reward", None) if name == "reward" else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the hashed identity)."""
        return {"name": self.name, "model": self.model, "reward": self.reward}

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`to_dict`."""
        return sha256_json(self.to_dict())

    def describe(self) -> str:
        """``reward (reward=token_f1)``: the spec on one line."""
        extra = ", ".join(f"{k}={v}" for k, v in self.to_dict().items() if k != "name" and v is not None)
        return f"{self.name!r}" + (f" ({extra})" if extra else "")


# -- the report -----------------------------------------------------------------------------------


def _finite(x: float | None) -> float | None:
    # Canonical JSON has no NaN: an undefined statistic is stored as null.
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass(frozen=True)
class CalibrationReport:
    """A judge measured against human labels; see the module docstring for each statistic.

    ``kappa`` and ``weighted_kappa`` are ``None`` where undefined (the judge and the humans used one
    and the same label everywhere). ``items`` holds every pair's human label and both verdicts.
    """

    judge: JudgeSpec
    labels_path: str
    labels_sha256: str
    n: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    alpha: float
    kappa: float | None
    weighted_kappa: float | None
    confusion: dict[str, dict[str, dict[str, Any]]]
    order_consistency: float
    length_unit: LengthUnit
    length_bias: LengthBias
    win_rate: float
    length_controlled_win_rate: float | None
    human_win_rate: float
    items: list[dict[str, Any]] = field(repr=False)
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what is stored and hashed)."""
        return {
            "format": REPORT_FORMAT,
            "judge": {**self.judge.to_dict(), "spec_sha256": self.judge.sha256},
            "labels": {"path": self.labels_path, "sha256": self.labels_sha256, "n": self.n},
            "accuracy": {
                "value": self.accuracy,
                "ci_low": self.accuracy_ci[0],
                "ci_high": self.accuracy_ci[1],
                "alpha": self.alpha,
                "method": "wilson",
            },
            "kappa": self.kappa,
            "weighted_kappa": self.weighted_kappa,
            "weights": "linear",
            "label_order": list(ORDERED_LABELS),
            "confusion": self.confusion,
            "order_consistency": self.order_consistency,
            "length_bias": {"unit": self.length_unit, **self.length_bias.to_dict()},
            "win_rate": {
                "raw": self.win_rate,
                "length_controlled": self.length_controlled_win_rate,
                "human": self.human_win_rate,
            },
            "items": self.items,
            "created_at": self.created_at,
        }

    def format_text(self) -> str:
        """The report for a terminal: the statistics, then the confusion matrix (rows: human)."""

        def num(x: float | None, spec: str = ".3f") -> str:
            return "undefined" if x is None else format(x, spec)

        lo, hi = self.accuracy_ci
        lb = self.length_bias
        slope = (
            f"{lb.slope:+.4g} log-odds per {self.length_unit[:-1]} (SE {lb.se:.2g}, p = {lb.p_value:.3g})"
            if lb.slope is not None and lb.se is not None and lb.p_value is not None
            else f"not estimable: {lb.note}"
        )
        level = round(100 * (1 - self.alpha))
        lines = [
            f"judge {self.judge.describe()} vs {self.n} human labels ({self.labels_path})",
            f"accuracy           {self.accuracy:.3f}  [{lo:.3f}, {hi:.3f}] ({level}% Wilson)",
            f"kappa              {num(self.kappa)}",
            f"weighted kappa     {num(self.weighted_kappa)} (linear, b < tie < a)",
            f"order consistency  {self.order_consistency:.3f}",
            f"length bias        {slope}",
            f"win rate of a      {self.win_rate:.3f} raw, {num(self.length_controlled_win_rate)} "
            f"length-controlled, {self.human_win_rate:.3f} by humans",
            "",
            "confusion (rows: human, columns: judge; up to 5 ids per cell)",
            f"{'':10}" + "".join(f"{'judge ' + v:>12}" for v in DISPLAY_ORDER),
        ]
        for h in DISPLAY_ORDER:
            lines.append(
                f"{'human ' + h:<10}" + "".join(f"{self.confusion[h][v]['count']:>12}" for v in DISPLAY_ORDER)
            )
        for h in DISPLAY_ORDER:
            for v in DISPLAY_ORDER:
                ids = self.confusion[h][v]["ids"]
                if h != v and ids:
                    lines.append(f"  human {h} / judge {v}: {', '.join(ids)}")
        return "\n".join(lines)


def _length(text: str, unit: LengthUnit) -> int:
    return len(text) if unit == "chars" else len(text.split())


@dataclass(frozen=True)
class OrderedVerdicts:
    """One pair judged in both presentation orders.

    ``backward`` is the verdict with ``b`` shown first, relabelled so ``'a'`` is still ``a``; it is
    ``None`` when the judge already asked both orders itself (its verdict's ``agreed`` is set, as
    remote judges with ``position_swap`` do), so no call is spent twice.
    """

    forward: Preference
    backward: Preference | None

    @property
    def verdict(self) -> str:
        """The reconciled verdict (:func:`~provenir.eval.judge.combine_orders`)."""
        if self.backward is None:
            return self.forward.preferred
        return combine_orders(self.forward, self.backward).preferred

    @property
    def consistent(self) -> bool:
        """Whether both presentation orders gave the same verdict."""
        if self.backward is None:
            return bool(self.forward.agreed)
        return self.forward.preferred == self.backward.preferred


def judge_both_orders(
    judge: Any, rows: Sequence[LabelRow], *, max_concurrency: int | None = None, progress: bool | None = None
) -> list[OrderedVerdicts]:
    """Each pair judged as shown (a first), then swapped (b first) unless the judge swapped it itself."""
    forward = score_pairwise_batch(
        judge, [(r.prompt, r.a, r.b) for r in rows], max_concurrency=max_concurrency, progress=progress
    )
    # score_pairwise_batch raises on the first failure, so every slot holds a verdict.
    firsts = [v for v in forward if isinstance(v, Preference)]
    assert len(firsts) == len(rows)
    todo = [i for i, v in enumerate(firsts) if v.agreed is None]
    swapped = score_pairwise_batch(
        judge,
        [(rows[i].prompt, rows[i].b, rows[i].a) for i in todo],
        max_concurrency=max_concurrency,
        progress=progress,
    )
    backward: dict[int, Preference] = {}
    for i, v in zip(todo, swapped, strict=True):
        assert isinstance(v, Preference)
        backward[i] = v.swapped()
    return [OrderedVerdicts(v, backward.get(i)) for i, v in enumerate(firsts)]


def calibrate(
    judge: Any,
    labels: LabelSet,
    spec: JudgeSpec,
    *,
    alpha: float = 0.05,
    length_unit: LengthUnit = "chars",
    max_examples: int = 5,
    max_concurrency: int | None = None,
    progress: bool | None = None,
) -> CalibrationReport:
    """Judge every labelled pair in both orders and measure the judge against the human labels.

    Args:
        judge: any :class:`~provenir.eval.judge.LLMJudge`.
        labels: from :func:`load_labels`.
        spec: the judge's identity, under which the report is stored and looked up.
        alpha: one minus the confidence level of the accuracy interval.
        length_unit: ``chars`` or ``words`` (whitespace-separated) for the length difference.
        max_examples: ids listed per confusion-matrix cell.
    """
    if not 0 < alpha < 1:
        raise JudgeError(f"alpha must be in (0, 1), got {alpha}")
    if length_unit not in ("chars", "words"):
        raise JudgeError(f"length_unit must be chars or words, got {length_unit!r}")
    rows = labels.rows
    pairs = judge_both_orders(judge, rows, max_concurrency=max_concurrency, progress=progress)
    human = [r.preferred for r in rows]
    verdicts = [p.verdict for p in pairs]
    consistent = [p.consistent for p in pairs]
    diffs = [_length(r.a, length_unit) - _length(r.b, length_unit) for r in rows]
    n = len(rows)
    hits = sum(h == v for h, v in zip(human, verdicts, strict=True))

    confusion: dict[str, dict[str, dict[str, Any]]] = {
        h: {v: {"count": 0, "ids": []} for v in DISPLAY_ORDER} for h in DISPLAY_ORDER
    }
    for row, v in zip(rows, verdicts, strict=True):
        cell = confusion[row.preferred][v]
        cell["count"] += 1
        if len(cell["ids"]) < max_examples:
            cell["ids"].append(row.id)

    items = [
        {
            "id": r.id,
            "human": r.preferred,
            "judge": v,
            "forward": p.forward.preferred,
            "backward": None if p.backward is None else p.backward.preferred,
            "orders_agreed": p.consistent,
            "length_diff": d,
        }
        for r, v, p, d in zip(rows, verdicts, pairs, diffs, strict=True)
    ]
    return CalibrationReport(
        judge=spec,
        labels_path=labels.path,
        labels_sha256=labels.sha256,
        n=n,
        accuracy=hits / n,
        accuracy_ci=wilson_interval(hits, n, 1.0 - alpha),
        alpha=alpha,
        kappa=_finite(cohen_kappa(human, verdicts)),
        weighted_kappa=_finite(cohen_kappa(human, verdicts, weights="linear")),
        confusion=confusion,
        order_consistency=sum(consistent) / n,
        length_unit=length_unit,
        length_bias=length_bias(verdicts, diffs),
        win_rate=sum(WIN_VALUE[v] for v in verdicts) / n,
        length_controlled_win_rate=length_controlled_win_rate(verdicts, diffs),
        human_win_rate=sum(WIN_VALUE[h] for h in human) / n,
        items=items,
        created_at=utc_now(),
    )


# -- storing and finding reports ------------------------------------------------------------------


@dataclass(frozen=True)
class StoredCalibration:
    """A calibration report on disk: its path, the SHA-256 of its canonical JSON, and its content."""

    path: Path
    report_sha256: str
    report: dict[str, Any]

    @property
    def kappa(self) -> float | None:
        """The recorded Cohen's kappa (``None``: undefined)."""
        value = self.report.get("kappa")
        return float(value) if isinstance(value, int | float) else None


def calibration_path(store: RunStore, spec: JudgeSpec, labels_sha256: str) -> Path:
    """``<root>/judge_calibrations/<spec sha256[:16]>-<labels sha256[:16]>.json``."""
    return store.judge_calibrations_dir / f"{spec.sha256[:16]}-{labels_sha256[:16]}.json"


def store_calibration(report: CalibrationReport, store: RunStore) -> StoredCalibration:
    """Write ``report`` atomically with its SHA-256; a later calibration on the same labels replaces it."""
    body = report.to_dict()
    digest = sha256_json(body)
    path = calibration_path(store, report.judge, report.labels_sha256)
    atomic_write_json(path, {"report_sha256": digest, "report": body})
    return StoredCalibration(path, digest, body)


def _read_stored(path: Path) -> StoredCalibration:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        report, digest = data["report"], data["report_sha256"]
        intact = isinstance(report, dict) and sha256_json(report) == digest
    except (OSError, ValueError, KeyError, TypeError):
        intact = False
    if not intact:
        raise ManifestTamperedError(
            f"{path}: the calibration report does not match its recorded sha256; "
            "delete it and run `provenir judge calibrate` again"
        )
    return StoredCalibration(path, digest, report)


def find_calibration(store: RunStore, spec: JudgeSpec) -> StoredCalibration | None:
    """The newest stored calibration of ``spec`` (any label set), hash-checked; ``None`` if there is none."""
    folder = store.judge_calibrations_dir
    if not folder.is_dir():
        return None
    found = [_read_stored(p) for p in sorted(folder.glob(f"{spec.sha256[:16]}-*.json"))]
    found = [s for s in found if s.report.get("judge", {}).get("spec_sha256") == spec.sha256]
    if not found:
        return None
    return max(found, key=lambda s: str(s.report.get("created_at", "")))


def require_min_kappa(spec: JudgeSpec, min_kappa: float | None, store: RunStore) -> StoredCalibration | None:
    """Refuse (:class:`ConfigError`) a judge whose newest recorded kappa is below ``min_kappa``.

    ``min_kappa=None`` checks nothing. With a threshold, a judge never calibrated in ``store``, or
    one whose kappa is undefined, is refused as well: an unmeasured judge cannot meet a bar.
    """
    if min_kappa is None:
        return None
    stored = find_calibration(store, spec)
    if stored is None:
        raise ConfigError(
            f"judge.min_kappa is {min_kappa} but judge {spec.describe()} has no calibration in "
            f"{store.judge_calibrations_dir}; run `provenir judge calibrate --labels HUMAN.jsonl "
            f"--judge NAME_OR_CONFIG --output-dir {store.root}` first"
        )
    kappa = stored.kappa
    if kappa is None or kappa < min_kappa:
        shown = "undefined" if kappa is None else f"{kappa:.3f}"
        raise ConfigError(
            f"judge {spec.describe()} agrees with human labels at kappa {shown} ({stored.path}), "
            f"below judge.min_kappa {min_kappa}; use a better judge, better labels, or a lower min_kappa"
        )
    return stored
