"""Two runs side by side: what changed in the config and inputs, and how the metrics moved.

``RUN_A`` is the baseline and ``RUN_B`` the candidate. Evaluation metrics go through
:meth:`~provenir.eval.regression.RegressionGate.compare`, so each delta carries the paired test
(McNemar for exact match, paired bootstrap otherwise) when both runs kept per-item scores for
the same items (their ``eval.json``)::

    from provenir.reporting.artifacts import load_run
    from provenir.reporting.compare import compare_runs

    comparison = compare_runs(load_run(run_a), load_run(run_b))
    print(comparison.gate.message() if comparison.gate else "no evaluation to compare")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provenir.eval.regression import GateDecision, RegressionGate
from provenir.reporting.artifacts import RunArtifacts

if TYPE_CHECKING:
    from rich.console import Group

#: Manifest fields that identify inputs and outputs; equal values mean "same thing".
IDENTITY_FIELDS = ("config_hash", "dataset_hash", "eval_dataset_hash", "adapter_hash", "seed", "git_sha")
# Wall-clock and CPU times differ on every run; comparing them as metrics only adds noise.
_TIMING_METRICS = ("train_runtime_s", "train_cpu_s")
_MISSING = object()


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"peft": {"rank": 16}}`` -> ``{"peft.rank": 16}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


@dataclass
class ConfigChange:
    """One config key whose value differs (``None`` stands for "absent" only via ``present_*``)."""

    key: str
    a: Any
    b: Any
    present_a: bool = True
    present_b: bool = True


@dataclass
class Comparison:
    """Everything :func:`compare_runs` found."""

    run_a: str
    run_b: str
    name_a: str
    name_b: str
    config_changes: list[ConfigChange]
    identity: dict[str, tuple[Any, Any]]
    training_metrics: dict[str, tuple[float | None, float | None]]
    gate: GateDecision | None
    notes: list[str] = field(default_factory=list)

    @property
    def same_config(self) -> bool:
        """True when the resolved configs are equal (``output_dir`` aside)."""
        return not self.config_changes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``provenir compare --json``)."""
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "config_changes": [
                {"key": c.key, "a": c.a if c.present_a else None, "b": c.b if c.present_b else None}
                for c in self.config_changes
            ],
            "identity": {k: {"a": a, "b": b, "same": a == b} for k, (a, b) in self.identity.items()},
            "training_metrics": {
                k: {"a": a, "b": b, "delta": (b - a) if a is not None and b is not None else None}
                for k, (a, b) in self.training_metrics.items()
            },
            "gate": self.gate.to_dict() if self.gate is not None else None,
            "notes": list(self.notes),
        }

    def renderable(self, *, full_values: bool = False) -> Group:
        """Rich tables for the terminal: identity, config diff, training metrics, eval deltas.

        Hashes are shortened to fit a terminal unless ``full_values`` (for piped output).
        """
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        a_label, b_label = f"A {self.run_a[:8]}", f"B {self.run_b[:8]}"
        parts: list[Any] = [
            Text(f"A = {self.run_a} ({self.name_a}), baseline\nB = {self.run_b} ({self.name_b}), candidate")
        ]
        ident = Table(title="inputs and outputs", title_justify="left")
        for col in ("field", a_label, b_label, ""):
            ident.add_column(col)
        for key, (a, b) in self.identity.items():
            ident.add_row(
                key,
                _short(a, full_values),
                _short(b, full_values),
                Text("same", "green") if a == b else Text("differs", "yellow"),
            )
        parts.append(ident)
        if self.config_changes:
            cfg = Table(title="config differences", title_justify="left")
            for col in ("key", a_label, b_label):
                cfg.add_column(col, overflow="fold")
            for c in self.config_changes:
                cfg.add_row(
                    c.key,
                    _value(c.a) if c.present_a else "(absent)",
                    _value(c.b) if c.present_b else "(absent)",
                )
            parts.append(cfg)
        else:
            parts.append(Text("config: identical (output_dir aside)", style="green"))
        if self.training_metrics:
            tm = Table(title="training metrics", title_justify="left")
            for col in ("metric", a_label, b_label, "delta"):
                tm.add_column(col, justify="right" if col != "metric" else "left")
            for key, (a, b) in self.training_metrics.items():
                delta = f"{b - a:+.4g}" if a is not None and b is not None else "-"
                tm.add_row(key, _num(a), _num(b), delta)
            parts.append(tm)
        if self.gate is not None:
            ev = Table(title="evaluation (B vs baseline A)", title_justify="left")
            for col in ("metric", a_label, b_label, "delta", "delta CI", "test", "p", "verdict"):
                ev.add_column(col, justify="left" if col in ("metric", "test", "verdict") else "right")
            for mc in self.gate.comparisons.values():
                ci = (
                    f"[{mc.delta_ci_lower:+.3f}, {mc.delta_ci_upper:+.3f}]"
                    if mc.delta_ci_lower is not None and mc.delta_ci_upper is not None
                    else "-"
                )
                style = "red" if mc.tripped else ("green" if mc.verdict == "improvement" else "")
                ev.add_row(
                    mc.name,
                    _num(mc.baseline),
                    _num(mc.new),
                    f"{mc.delta:+.4f}" if mc.delta is not None else "-",
                    ci,
                    mc.test or "-",
                    f"{mc.p_value:.3g}" if mc.p_value is not None else "-",
                    Text(mc.verdict, style),
                )
            parts.append(ev)
            parts.append(Text(self.gate.message(), style="green" if self.gate.passed else "red"))
        for note in self.notes:
            parts.append(Text(f"note: {note}", style="yellow"))
        return Group(*parts)


def _short(value: Any, full: bool = False) -> str:
    text = "-" if value is None else str(value)
    return text[:16] + "…" if len(text) > 20 and not full else text


def _value(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[ConfigChange]:
    """Keys whose values differ between two config dicts (``output_dir`` ignored, as in the hash)."""
    fa, fb = flatten(a), flatten(b)
    changes = []
    for key in sorted(set(fa) | set(fb)):
        if key == "output_dir":
            continue
        va, vb = fa.get(key, _MISSING), fb.get(key, _MISSING)
        if va != vb:
            changes.append(
                ConfigChange(
                    key,
                    None if va is _MISSING else va,
                    None if vb is _MISSING else vb,
                    va is not _MISSING,
                    vb is not _MISSING,
                )
            )
    return changes


def compare_runs(a: RunArtifacts, b: RunArtifacts, *, gate: RegressionGate | None = None) -> Comparison:
    """Compare run ``b`` (candidate) against run ``a`` (baseline)."""
    ma, mb = a.manifest, b.manifest
    identity = {k: (getattr(ma, k), getattr(mb, k)) for k in IDENTITY_FIELDS}
    training = {
        k: (ma.metrics.get(k), mb.metrics.get(k))
        for k in sorted(set(ma.metrics) | set(mb.metrics))
        if k not in _TIMING_METRICS
    }
    notes: list[str] = []
    for label, run in (("A", a), ("B", b)):
        if not run.verification.ok:
            notes.append(f"run {label} does not verify: " + "; ".join(run.verification.problems))
    decision = None
    if a.eval_result is None or b.eval_result is None:
        missing = [label for label, run in (("A", a), ("B", b)) if run.eval_result is None]
        notes.append(f"no evaluation for run {' and '.join(missing)}: run `provenir eval` to compare metrics")
    else:
        decision = (gate or RegressionGate()).compare(b.eval_result, a.eval_result)
        if decision.note:
            notes.append(decision.note)
    return Comparison(
        run_a=ma.run_id,
        run_b=mb.run_id,
        name_a=ma.name,
        name_b=mb.name,
        config_changes=config_diff(ma.config, mb.config),
        identity=identity,
        training_metrics=training,
        gate=decision,
        notes=notes,
    )
