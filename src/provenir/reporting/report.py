"""``provenir report``: one self-contained HTML file that shows a run the way people judge it.

Summary and hashes, the manifest's verification status, loss and learning-rate curves,
evaluation per checkpoint with confidence bands, the final metric table with intervals, the
regression-gate verdict against a baseline, the lineage graph, the data summary (scans when
present) and the environment::

    from provenir.reporting.report import write_report

    write_report("artifacts/manifests/<run_id>.json", "report.html", baseline="<baseline run id>")

The file makes no network request: plots are SVG ``data:`` images, styles are inline, and a
Content-Security-Policy forbids any other source. Every string from a manifest or config is
HTML-escaped by the (autoescaping) template.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provenir.core.atomic import atomic_write_text
from provenir.core.errors import ConfigError, EvaluationError
from provenir.core.inputs import FileSetPin, RowsPin
from provenir.core.manifest import ManifestVerification, RunManifest
from provenir.core.signers import SignerPolicy
from provenir.eval.regression import GateDecision, RegressionGate
from provenir.governance.model_card import evaluation_dataset
from provenir.reporting.artifacts import RunArtifacts, load_run

__all__ = ["build_report_html", "render_report", "report_context", "write_report", "write_plot_images"]


def data_uri(data: bytes, mime: str = "image/svg+xml") -> str:
    """``data:<mime>;base64,...``: an image that travels inside the HTML (and, as an <img>, runs no script)."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _yes_no(value: bool | None) -> str:
    return "not checked" if value is None else ("yes" if value else "NO")


#: What the report shows for a config key the manifest's config does not hold.
NOT_IN_CONFIG = "not recorded in this manifest's config"


def _not_in_schema(m: RunManifest) -> str:
    return f"not recorded in this manifest (schema {m.schema_version})"


def _cfg(cfg: dict[str, Any], key: str) -> Any:
    """``cfg[key]``, or why it cannot be shown (a manifest's config is whatever was sealed)."""
    return cfg.get(key, NOT_IN_CONFIG)


def _summary_rows(run: RunArtifacts) -> list[tuple[str, Any]]:
    m, cfg = run.manifest, run.manifest.config
    peft = cfg.get("peft")
    if not isinstance(peft, dict):
        peft_text = NOT_IN_CONFIG
    elif peft.get("enabled", True):
        quant = (
            "4-bit NF4 (QLoRA)"
            if peft.get("load_in_4bit")
            else ("8-bit" if peft.get("load_in_8bit") else "none")
        )
        peft_text = (
            f"LoRA r={peft.get('rank')} alpha={peft.get('alpha')} dropout={peft.get('dropout')} "
            f"targets={', '.join(map(str, peft.get('target_modules') or []))}"
            f"{' rsLoRA' if peft.get('use_rslora') else ''}; base quantisation {quant}"
        )
    else:
        peft_text = "full fine-tuning (no adapter)"
    git = m.git_sha or "not recorded (the run did not start in a git checkout, or git was unavailable)"
    if m.git_sha and m.git_dirty:
        git += " (uncommitted changes)"
    device = m.environment.get("device")
    if device is None:
        # The run driver records the device the backend reports only once training returns.
        device = f"not recorded (the run is {m.status}); configured: {_cfg(cfg, 'device')}"
    rows: list[tuple[str, Any]] = [
        ("model", _cfg(cfg, "model_name_or_path")),
        ("algorithm", m.algorithm),
        ("backend", m.backend),
        ("PEFT", peft_text),
        ("seed", m.seed),
        (
            "steps · batch · lr",
            (
                f"{_cfg(cfg, 'max_steps')} steps"
                if cfg.get("max_steps") is not None or cfg.get("num_train_epochs") is None
                else f"{cfg['num_train_epochs']} epochs"
            )
            + f" · batch {_cfg(cfg, 'batch_size')} × accum "
            f"{_cfg(cfg, 'gradient_accumulation_steps')} · lr {_cfg(cfg, 'learning_rate')} "
            f"({_cfg(cfg, 'lr_scheduler_type')}) · {_cfg(cfg, 'precision')}",
        ),
        ("device", device),
        ("started", m.timestamp),
        ("finished", m.finished_at or f"not finished (status {m.status})"),
        ("git commit", git),
    ]
    if m.provenance:
        rows.append(("parent run", f"{m.provenance[-1]} ({m.relation or 'derived'})"))
    if m.resumed_from:
        rows.append(("resumed from", m.resumed_from))
    return rows


def _final_section(run: RunArtifacts) -> dict[str, Any] | None:
    from provenir.reporting.plots import figure_bytes, final_metrics_chart

    result = run.eval_result
    if result is None:
        return None
    rows = []
    for name, mr in result.metrics.items():
        corpus = "—"
        if mr.corpus is not None:
            corpus = f"{mr.corpus:.4f} [{_fmt(mr.corpus_ci_lower)}, {_fmt(mr.corpus_ci_upper)}]"
        rows.append(
            {
                "name": name,
                "mean": _fmt(mr.mean),
                "ci": f"[{mr.ci_lower:.4f}, {mr.ci_upper:.4f}]",
                "interval": mr.interval,
                "n": mr.n,
                "corpus": corpus,
            }
        )
    fig = final_metrics_chart(result)
    has_file = (run.run_dir / "eval.json").is_file()
    return {
        "pct": round(result.confidence * 100),
        "computed_on": evaluation_dataset(run.manifest, result.extra).describe(),
        "rows": rows,
        "chart": data_uri(figure_bytes(fig)) if fig is not None else None,
        "source": "eval.json in the run folder" if has_file else "the evaluation summary in the manifest",
    }


_VERDICT_CSS = {
    "regression": "bad",
    "missing": "bad",
    "drop_not_significant": "warn",
    "improvement": "ok",
    "gain_not_significant": "ok",
    "within_tolerance": "ok",
}


def gate_against(run: RunArtifacts, baseline: RunArtifacts, gate: RegressionGate) -> GateDecision:
    """The regression gate's decision for ``run`` against ``baseline`` (raises if either lacks an eval)."""
    missing = [label for label, r in (("this run", run), ("the baseline", baseline)) if r.eval_result is None]
    if missing:
        raise EvaluationError(f"no evaluation for {' and '.join(missing)}: run `provenir eval` first")
    assert run.eval_result is not None and baseline.eval_result is not None
    return gate.compare(run.eval_result, baseline.eval_result)


def _gate_section(run: RunArtifacts, baseline: RunArtifacts, gate: RegressionGate) -> dict[str, Any]:
    section: dict[str, Any] = {
        "baseline_id": baseline.manifest.run_id,
        "baseline_name": baseline.manifest.name,
        "decision": None,
        "reason": None,
        "rows": [],
    }
    try:
        decision = gate_against(run, baseline, gate)
    except EvaluationError as exc:
        section["reason"] = str(exc)
        return section
    section["decision"] = decision
    for c in decision.comparisons.values():
        ci = "—"
        if c.delta_ci_lower is not None and c.delta_ci_upper is not None:
            ci = f"[{c.delta_ci_lower:+.4f}, {c.delta_ci_upper:+.4f}]"
        section["rows"].append(
            {
                "name": c.name,
                "baseline": _fmt(c.baseline),
                "new": _fmt(c.new),
                "delta": f"{c.delta:+.4f}" if c.delta is not None else "—",
                "ci": ci,
                "test": c.test or (c.note or "none"),
                "p": f"{c.p_value:.3g}" if c.p_value is not None else "—",
                "verdict": c.verdict + (" (trips the gate)" if c.tripped else ""),
                "css": "bad" if c.tripped else _VERDICT_CSS.get(c.verdict, "warn"),
            }
        )
    return section


def _data_rows(run: RunArtifacts) -> tuple[list[tuple[str, Any]], list[tuple[str, str, int]]]:
    m = run.manifest
    data_cfg = m.config.get("data") or {}
    scans = m.scans or {}
    inputs = m.inputs
    missing = _not_in_schema(m)
    sources = [p for p in (inputs.datasets if inputs is not None else []) if p.role == "train"]
    split = data_cfg.get("eval_split") or 0
    configured = data_cfg.get("eval_path") or (
        f"{split:g} of the training rows held out (seed {m.seed})" if split else "none"
    )
    if not data_cfg:
        configured = NOT_IN_CONFIG
    if inputs is None:
        eval_rows: Any = missing
    else:
        eval_rows = inputs.eval_rows.count if inputs.eval_rows is not None else "none (no eval rows held out)"
    if run.eval_result is not None:
        evaluated: Any = evaluation_dataset(m, run.eval_result.extra).describe()
    else:
        evaluated = "not evaluated (no eval.json in the run folder and no evaluation in the manifest)"
    max_samples = data_cfg.get("max_samples", NOT_IN_CONFIG) if data_cfg else NOT_IN_CONFIG
    rows: list[tuple[str, Any]] = [
        ("data path", m.data_path or ", ".join(p.uri for p in sources) or "not recorded in this manifest"),
        ("dataset hash", m.dataset_hash or "not recorded in this manifest"),
        ("training rows", inputs.training_rows.count if inputs is not None else missing),
        ("eval data (configured)", configured),
        ("eval dataset hash", m.eval_dataset_hash or "none (no eval data configured)"),
        ("eval rows", eval_rows),
        ("evaluation data", evaluated),
        ("max samples", "all" if max_samples is None else max_samples),
        ("template (configured)", data_cfg.get("template", NOT_IN_CONFIG)),
    ]
    if run.eval_result is not None:
        rows.append(("evaluated items", run.eval_result.n))
    mode = data_cfg.get("contamination_check", "off")
    recorded = (m.extra or {}).get("contamination") or scans.get("contamination")
    if isinstance(recorded, dict):
        methods = recorded.get("methods")
        if isinstance(methods, dict):
            per_method = ", ".join(
                f"{name} {info.get('count')}" for name, info in methods.items() if isinstance(info, dict)
            )
            text = (
                f"{recorded.get('contaminated')} of {recorded.get('eval_checked')} checked eval rows occur in the "
                f"training data (by check: {per_method}; n-gram size {recorded.get('n')})"
            )
        else:  # recorded before the exact / near-duplicate checks existed
            text = (
                f"{recorded.get('contaminated')} of {recorded.get('eval_checked')} checkable eval rows share a "
                f"{recorded.get('n')}-gram with the training data"
            )
        rows.append(("contamination", text))
    elif mode == "off":
        rows.append(("contamination check", "off"))
    elif mode == "refuse":
        rows.append(
            (
                "contamination check",
                "refuse: training only starts when no eval row overlaps the training data",
            )
        )
    else:
        rows.append(("contamination check", f"{mode}: the result is not recorded in the manifest"))
    scan_rows: list[tuple[str, str, int]] = []
    if m.scans is None:
        rows.append(("PII / secret scan", "not run (data.scan: off)"))
    else:
        rows.append(
            (
                "PII / secret scan",
                f"action {scans.get('action')}; {scans.get('rows_scanned')} rows scanned; "
                f"PII found: {'yes' if scans.get('has_pii') else 'no'}; secrets found: "
                f"{'yes' if scans.get('has_secrets') else 'no'}",
            )
        )
        for kind in ("pii", "secrets"):
            for typ, count in sorted(((scans.get(kind) or {}).get("counts") or {}).items()):
                if count:  # detectors that found nothing would only bury the findings
                    scan_rows.append((kind, str(typ), int(count)))
    return rows, scan_rows


def _file_set_rows(label: str, pin: FileSetPin) -> list[tuple[str, Any]]:
    revision = pin.resolved_revision or pin.requested_revision
    if pin.requested_revision and pin.resolved_revision and pin.requested_revision != pin.resolved_revision:
        revision = f"{pin.requested_revision} → {pin.resolved_revision}"
    return [
        (f"{label} source", pin.source),
        (f"{label} kind", pin.kind),
        (f"{label} revision", revision or f"none ({pin.kind}: no hub revision)"),
        (f"{label} digest", pin.digest),
        (f"{label} files", len(pin.files)),
    ]


def _rows_pin_rows(label: str, pin: RowsPin, run_id: str) -> list[tuple[str, Any]]:
    return [
        (label, pin.count),
        (f"{label} sha256", pin.sha256),
        (f"{label} file", f"runs/{run_id}/{pin.path}"),
    ]


def _inputs_section(run: RunArtifacts) -> dict[str, Any]:
    """The manifest's ``inputs``: what the run consumed, pinned by content (schema 2 and later)."""
    m = run.manifest
    inputs = m.inputs
    if inputs is None:
        return {"missing": _not_in_schema(m), "rows": [], "sources": [], "notes": []}
    why = "; ".join(inputs.notes) or "no reason recorded"
    rows: list[tuple[str, Any]] = (
        _file_set_rows("base model", inputs.model)
        if inputs.model
        else [("base model", f"not pinned ({why})")]
    )
    if inputs.init_adapter is not None:
        rows += _file_set_rows("initial adapter", inputs.init_adapter)
    t = inputs.chat_template
    if t is not None:
        rows += [
            ("chat template", t.name),
            ("chat template origin", t.origin + (f" (version {t.version})" if t.version else "")),
            ("chat template sha256", t.sha256),
        ]
    else:
        rows.append(("chat template", f"not pinned ({why})"))
    rows += _rows_pin_rows("training rows", inputs.training_rows, m.run_id)
    if inputs.eval_rows is not None:
        rows += _rows_pin_rows("eval rows", inputs.eval_rows, m.run_id)
    else:
        rows.append(("eval rows", "none (no eval rows held out)"))
    ck = inputs.resumed_checkpoint
    if ck is not None:
        rows += [
            ("resumed checkpoint", ck.name),
            ("resumed checkpoint digest", ck.digest),
            ("resumed checkpoint files", len(ck.files)),
        ]
    else:
        rows.append(("resumed checkpoint", "none (the run did not resume)"))
    sources = [
        {
            "role": p.role,
            "uri": p.uri,
            "selector": ", ".join(
                f"{k} {v}"
                for k, v in (("revision", p.revision), ("config", p.config), ("split", p.split))
                if v
            )
            or "—",
            "weight": "—" if p.weight is None else f"{p.weight:g}",
            "sha256": p.sha256,
            "rows": p.rows,
            "rows_used": "all (no mixture)" if p.rows_used is None else p.rows_used,
        }
        for p in inputs.datasets
    ]
    return {"missing": None, "rows": rows, "sources": sources, "notes": list(inputs.notes)}


def _hash_rows(m: RunManifest) -> list[tuple[str, str]]:
    """The manifest's top-level hashes, each with why it is absent when it is."""
    unfinished = f"none (the run is {m.status})" if m.status != "completed" else None
    return [
        ("manifest_hash", m.manifest_hash or "not sealed"),
        ("config_hash", m.config_hash),
        ("dataset_hash", m.dataset_hash or "not recorded in this manifest"),
        ("eval_dataset_hash", m.eval_dataset_hash or "none (no eval data configured)"),
        ("adapter_hash", m.adapter_hash or unfinished or "none (no weights file among the outputs)"),
    ]


def _env_rows(run: RunArtifacts) -> list[tuple[str, Any]]:
    env = run.manifest.environment or {}
    if not env:
        return [("environment", "not recorded in this manifest")]
    rows: list[tuple[str, Any]] = [
        (key, env[key]) for key in ("python", "implementation", "platform", "machine", "device") if key in env
    ]
    for name, ver in sorted((env.get("packages") or {}).items()):
        rows.append((name, ver or "not installed"))
    for key in sorted(
        set(env) - {"python", "implementation", "platform", "machine", "device", "packages", "executable"}
    ):
        rows.extend(_flat_rows(key, env[key]))
    return rows


def _flat_rows(key: str, value: Any) -> list[tuple[str, Any]]:
    """Nested environment records (``cpu``, ``torch``, per-GPU entries) as dotted ``key`` rows."""
    if isinstance(value, dict):
        if not value:
            return [(key, "—")]
        return [row for sub in sorted(value, key=str) for row in _flat_rows(f"{key}.{sub}", value[sub])]
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return [row for i, v in enumerate(value) for row in _flat_rows(f"{key}.{i}", v)]
    if isinstance(value, list):
        return [(key, ", ".join(map(str, value)) or "—")]
    return [(key, "none" if value is None else value)]


def _training_plots(run: RunArtifacts) -> list[tuple[str, str]]:
    from provenir.reporting.plots import figure_bytes, line_chart

    log = run.train_log
    specs = [
        (["loss", "eval_loss"], "training loss", "loss"),
        (["learning_rate"], "learning rate", "learning rate"),
        (["grad_norm"], "gradient norm (before clipping)", "norm"),
    ]
    out = []
    for keys, title, ylabel in specs:
        fig = line_chart(log, keys, title=title, ylabel=ylabel)
        if fig is not None:
            out.append((title, data_uri(figure_bytes(fig))))
    return out


def report_context(
    run: RunArtifacts,
    *,
    baseline: RunArtifacts | None = None,
    gate: RegressionGate | None = None,
) -> dict[str, Any]:
    """The values the report's sections show (``REPORT_BODY``'s template variables).

    The standalone report and the web console render the same context, so they cannot state
    different facts about a run.
    """
    try:
        import matplotlib  # noqa: F401  (imported here only to fail early with an actionable message)
    except ImportError as exc:
        raise ConfigError(f"reports need {exc.name} (pip install 'provenir[report]')") from None

    import provenir
    from provenir.reporting.lineage import build_lineage, lineage_svg
    from provenir.reporting.plots import eval_curves, figure_bytes

    m = run.manifest
    notes = list(run.notes)
    # A manifest file outside any store has no siblings to draw a lineage from.
    lineage = build_lineage(run.output_dir, m.run_id) if run.store.holds(run.manifest_file) else None
    show_lineage = lineage is not None and len(lineage.nodes) > 1
    eval_fig = eval_curves(run.train_log)
    data_rows, scan_rows = _data_rows(run)
    return {
        "m": m,
        "v": run.verification,
        "yes_no": _yes_no,
        "summary": _summary_rows(run),
        "hashes": _hash_rows(m),
        "inputs": _inputs_section(run),
        "outputs": sorted(m.outputs.items()),
        "training_plots": _training_plots(run),
        "train_metrics": [(k, f"{v:.6g}") for k, v in sorted(m.metrics.items()) if k not in ("train_rows",)],
        "eval_curve": data_uri(figure_bytes(eval_fig)) if eval_fig is not None else None,
        "final": _final_section(run),
        "gate": _gate_section(run, baseline, gate or RegressionGate()) if baseline is not None else None,
        "lineage_svg": data_uri(lineage_svg(lineage).encode("utf-8")) if show_lineage and lineage else None,
        "lineage_rows": lineage.walk() if show_lineage and lineage else [],
        "data_rows": data_rows,
        "scan_rows": scan_rows,
        "env_rows": _env_rows(run),
        "config_text": yaml.safe_dump(m.config, sort_keys=False, allow_unicode=True),
        "notes": notes,
        "version": getattr(provenir, "__version__", ""),
    }


def build_report_html(
    run: RunArtifacts,
    *,
    baseline: RunArtifacts | None = None,
    gate: RegressionGate | None = None,
) -> str:
    """Render the report of an already loaded run (see :func:`render_report` for the usual entry)."""
    try:
        import jinja2
    except ImportError as exc:
        raise ConfigError(f"reports need {exc.name} (pip install 'provenir[report]')") from None

    from provenir.reporting.report_template import REPORT_TEMPLATE

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(REPORT_TEMPLATE)
    return template.render(**report_context(run, baseline=baseline, gate=gate))


@dataclass(frozen=True)
class Report:
    """A rendered report and the verification it shows (so a caller can act on a failure)."""

    html: str
    verification: ManifestVerification


def build_report(
    ref: str | os.PathLike[str],
    *,
    output_dir: str | os.PathLike[str] | None = None,
    baseline: str | os.PathLike[str] | None = None,
    tolerance: float = 0.02,
    policy: SignerPolicy | None = None,
    allow_path: bool = True,
) -> Report:
    """The report of a run id (looked up in ``output_dir``) or a manifest path, with its verdict.

    ``baseline`` is another run id or manifest (resolved in the same artifacts folder as the
    run); its evaluation is compared with this run's by :class:`RegressionGate` at ``tolerance``.
    A server passes ``allow_path=False`` so a request can only name run ids, never files.
    ``policy`` is the signer policy both runs are verified under (see :meth:`RunStore.verify`):
    a run that fails it is rendered with the failure on top, never as "signature valid".
    Raises :class:`~provenir.core.errors.ManifestError` for an unknown run.
    """
    run = load_run(ref, output_dir, policy=policy, allow_path=allow_path)
    base = (
        load_run(baseline, run.output_dir, policy=policy, allow_path=allow_path)
        if baseline is not None
        else None
    )
    return Report(build_report_html(run, baseline=base, gate=RegressionGate(tolerance)), run.verification)


def render_report(ref: str | os.PathLike[str], **kwargs: Any) -> str:
    """The report HTML (see :func:`build_report` for the arguments)."""
    return build_report(ref, **kwargs).html


def save_report(report: Report, out: str | os.PathLike[str] = "report.html") -> Path:
    """Write a built report atomically, readable like a plainly created file; returns its path."""
    path = atomic_write_text(out, report.html)
    # The atomic writer's temp file is private (0600); a report is meant to be shared, so give
    # it the permissions a plainly created file would get under the current umask.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return path


def write_report(
    ref: str | os.PathLike[str],
    out: str | os.PathLike[str] = "report.html",
    **kwargs: Any,
) -> Path:
    """Build (see :func:`build_report`) and write the report atomically; returns its path."""
    return save_report(build_report(ref, **kwargs), out)


def write_plot_images(
    ref: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    *,
    output_dir: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Write the report's training and evaluation charts as PNG files (for READMEs and slides)."""
    from provenir.core.atomic import atomic_write_bytes
    from provenir.reporting.plots import eval_curves, figure_bytes, final_metrics_chart, line_chart

    run = load_run(ref, output_dir)
    figures = {
        "loss.png": line_chart(run.train_log, ["loss", "eval_loss"], title="training loss", ylabel="loss"),
        "learning_rate.png": line_chart(run.train_log, ["learning_rate"], title="learning rate", ylabel="lr"),
        "eval_during_training.png": eval_curves(run.train_log),
        "final_metrics.png": final_metrics_chart(run.eval_result) if run.eval_result is not None else None,
    }
    return [
        atomic_write_bytes(Path(folder) / name, figure_bytes(fig, "png"))
        for name, fig in figures.items()
        if fig is not None
    ]
