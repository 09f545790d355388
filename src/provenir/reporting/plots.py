"""The report's charts, drawn with matplotlib's Agg canvas into SVG (or PNG) bytes.

Figures are built as :class:`matplotlib.figure.Figure` on an Agg canvas rather than through
``pyplot``, so drawing a report never switches the backend of a process that uses matplotlib
for something else (a notebook, a GUI). SVG output is made reproducible: no creation date in
the metadata and a fixed id salt, so the same artifacts give the same report bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from provenir.eval.harness import EvalResult

_CI_SUFFIXES = ("_ci_lower", "_ci_upper")
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def new_figure(width: float = 6.4, height: float = 3.0) -> Figure:
    """A figure on its own Agg canvas (no pyplot, no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_bytes(fig: Figure, fmt: str = "svg") -> bytes:
    """Serialise ``fig`` as ``svg`` (text drawn as paths: no fonts needed) or ``png``."""
    import matplotlib

    buf = io.BytesIO()
    # path fonttype: the SVG needs no font from the viewer's machine and holds no <text> at all.
    with matplotlib.rc_context({"svg.hashsalt": "provenir-report", "svg.fonttype": "path"}):
        if fmt == "svg":
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        else:
            fig.savefig(buf, format=fmt, dpi=110, metadata={"Software": None})
    return buf.getvalue()


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def series(log: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of every log entry that has a finite ``key`` and a ``step``."""
    xs: list[float] = []
    ys: list[float] = []
    for entry in log:
        step, value = _finite(entry.get("step")), _finite(entry.get(key))
        if step is not None and value is not None:
            xs.append(step)
            ys.append(value)
    return xs, ys


def eval_metric_names(log: Sequence[dict[str, Any]]) -> list[str]:
    """Metric names logged during training as ``eval/<name>`` (with or without CI keys)."""
    names: list[str] = []
    for entry in log:
        for key, value in entry.items():
            if not key.startswith("eval/") or isinstance(value, bool):
                continue
            name = key[len("eval/") :]
            if name.endswith(_CI_SUFFIXES) or name in names or _finite(value) is None:
                continue
            names.append(name)
    return names


def line_chart(
    log: Sequence[dict[str, Any]], keys: Sequence[str], *, title: str, ylabel: str, log_y: bool = False
) -> Figure | None:
    """One line per key against the optimiser step; ``None`` when no key has a point."""
    fig = new_figure()
    ax = fig.add_subplot()
    drawn = 0
    for i, key in enumerate(keys):
        xs, ys = series(log, key)
        if not xs:
            continue
        drawn += 1
        ax.plot(
            xs,
            ys,
            marker="o" if len(xs) <= 30 else None,
            markersize=3,
            color=_COLORS[i % len(_COLORS)],
            label=key,
        )
    if not drawn:
        return None
    if log_y:
        ax.set_yscale("log")
    ax.set(title=title, xlabel="step", ylabel=ylabel)
    ax.grid(alpha=0.3)
    if drawn > 1:
        ax.legend(fontsize=8)
    return fig


def eval_curves(log: Sequence[dict[str, Any]]) -> Figure | None:
    """Each ``eval/<metric>`` mean against the step, with its logged confidence band shaded."""
    names = eval_metric_names(log)
    if not names:
        return None
    fig = new_figure(height=3.4)
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        color = _COLORS[i % len(_COLORS)]
        points = []
        for entry in log:
            step, mean = _finite(entry.get("step")), _finite(entry.get(f"eval/{name}"))
            if step is None or mean is None:
                continue
            lo = _finite(entry.get(f"eval/{name}_ci_lower"))
            hi = _finite(entry.get(f"eval/{name}_ci_upper"))
            points.append((step, mean, lo if lo is not None else mean, hi if hi is not None else mean))
        points.sort()
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], marker="o", markersize=4, color=color, label=name)
        ax.fill_between(
            xs, [p[2] for p in points], [p[3] for p in points], color=color, alpha=0.18, linewidth=0
        )
    ax.set(title="evaluation during training (shaded: confidence interval)", xlabel="step", ylabel="score")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def final_metrics_chart(result: EvalResult) -> Figure | None:
    """Each final metric's mean as a point with its confidence interval as a bar."""
    metrics = list(result.metrics.values())
    if not metrics:
        return None
    fig = new_figure(height=0.6 + 0.45 * len(metrics))
    ax = fig.add_subplot()
    ys = list(range(len(metrics)))[::-1]
    means = [m.mean for m in metrics]
    err = [[max(0.0, m.mean - m.ci_lower) for m in metrics], [max(0.0, m.ci_upper - m.mean) for m in metrics]]
    ax.errorbar(means, ys, xerr=err, fmt="o", color=_COLORS[0], capsize=4)
    ax.set_yticks(ys, [m.name for m in metrics])
    ax.set_ylim(-0.6, len(metrics) - 0.4)  # keep the outer points off the frame
    ax.set(title=f"final metrics ({round(result.confidence * 100)}% CI, n={result.n})", xlabel="score")
    ax.grid(axis="x", alpha=0.3)
    return fig
