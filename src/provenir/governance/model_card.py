"""Hugging Face model cards generated from a run manifest and its evaluation.

::

    from provenir.governance.model_card import ModelCardGenerator

    card = ModelCardGenerator().generate(manifest, eval_result)
    card.save("MODEL_CARD.md")

The card is ``huggingface_hub.ModelCard`` text: YAML metadata (``base_model``, ``datasets``
when the training data is a hub id, ``license``, ``tags``, ``library_name`` and a ``model-index``
with every metric's mean; its 95% interval goes in the metric name and ``args``) followed by
sections on evaluation, training configuration, inputs (model files, chat template, data
sources, exact rows), scans, provenance (manifest hash, signature status, the command that
replays the run) and limitations. Nothing touches the network.

Every fact comes from the manifest or the evaluation record. Each metric names the data it was
computed on and that data's SHA-256, as the evaluation record states them
(:func:`evaluation_dataset`); the ``model-index`` dataset is that evaluation data, never the
training set. A run that did not complete gets no card unless ``allow_failed`` is passed, and
then the card says so in its first lines.

``eval_result`` may be ``None`` (the manifest's own ``eval`` is used if present), a dict
``{"metrics": {name: {"mean", "ci_lower", "ci_upper", "n"}}, "extra": {"data", "data_sha256",
"data_rows"}}`` (``extra`` optional), or an object whose ``to_dict()`` returns that dict
(``provenir.eval``'s result).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenir.core.atomic import atomic_write_text
from provenir.core.errors import GovernanceError
from provenir.core.inputs import FileSetPin
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore

DEFAULT_CARD_NAME = "MODEL_CARD.md"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
_FILE_SUFFIX = re.compile(r"\.(jsonl|json|csv|parquet|txt|arrow)$", re.IGNORECASE)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.md$")
#: ``extra["data"]`` of an evaluation of the run's own stored eval rows (``provenir eval RUN``);
#: the second spelling is what evaluations recorded before the rows' hash was recorded with them.
RUN_EVAL_ROWS = ("run eval rows", "run eval split")


def _one_line(value: Any, limit: int = 200) -> str:
    """Text safe inside a Markdown table cell: one line, no pipes or backticks, bounded."""
    text = " ".join(str(value).split()).replace("|", "\\|").replace("`", "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_hub_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_HUB_ID.match(value)) and not _FILE_SUFFIX.search(value)


@dataclass(frozen=True)
class EvalDataset:
    """What an evaluation's metrics were computed on, as its record (and the manifest) state it.

    ``name``: the path, hub id or ``builtin:<name>`` the evaluation read, or a description of
    the run's own stored eval rows; None when the record does not say. ``sha256``: that data's
    hash (the stored rows' hash for the run's own rows, the file's or hub rows' hash otherwise);
    None when not recorded. ``missing`` says why something is not known.
    """

    name: str | None
    sha256: str | None
    rows: int | None
    hub_id: str | None = None
    own_rows: bool = False
    missing: str | None = None

    def describe(self) -> str:
        """One line: name, rows and hash, or why they are unknown."""
        if self.name is None:
            return f"not recorded: {self.missing}"
        text = self.name
        if self.rows is not None:
            text += f", {self.rows} rows"
        text += f", SHA-256 {self.sha256}" if self.sha256 else f" (hash not recorded: {self.missing})"
        return text


def evaluation_dataset(manifest: RunManifest, extra: Mapping[str, Any] | None) -> EvalDataset:
    """The data an evaluation of ``manifest``'s run was computed on, from the record's ``extra``.

    ``provenir eval`` records ``data`` (the path it read, or ``run eval rows`` for the run's
    own stored eval rows), ``data_sha256`` and ``data_rows``. For the run's own rows of an
    older record without a hash, the manifest's pin of those rows (``inputs.eval_rows``) is
    used: that is exactly what such an evaluation read. Nothing is guessed otherwise: a record
    that does not name its data (a hand-made or pipeline evaluation) is reported as such.
    """
    extra = extra or {}
    data, sha, rows = extra.get("data"), extra.get("data_sha256"), extra.get("data_rows")
    sha = sha if isinstance(sha, str) and sha else None
    rows = rows if isinstance(rows, int) and not isinstance(rows, bool) else None
    if data in RUN_EVAL_ROWS:
        inputs = manifest.inputs
        pin = inputs.eval_rows if inputs is not None else None
        sources = [p.uri for p in inputs.datasets if p.role == "eval"] if inputs is not None else []
        origin = f"from {', '.join(sources)}" if sources else "held out from the training data"
        if sha is None and pin is not None:
            sha = pin.sha256
        if rows is None and pin is not None:
            rows = pin.count
        missing = None if sha else f"this manifest (schema {manifest.schema_version}) pins no eval rows"
        name = f"eval rows of run {manifest.run_id[:8]} ({origin})"
        return EvalDataset(name, sha, rows, None, True, missing)
    if isinstance(data, str) and data:
        missing = None if sha else "the evaluation record has no hash of its data"
        return EvalDataset(data, sha, rows, data if _is_hub_id(data) else None, False, missing)
    return EvalDataset(None, None, rows, missing="the evaluation record does not say what data it scored")


def reproduce_command(
    manifest_file: str | os.PathLike[str], *, cwd: str | os.PathLike[str] | None = None
) -> tuple[str, Path]:
    """``provenir reproduce <path>`` for a stored manifest, and the folder ``<path>`` is relative to.

    The path is relative to ``cwd`` (default: the current folder) when the manifest lies inside
    it, else relative to the root of the run store holding it (``manifests/<run_id>.json``), so
    a card never carries an absolute path of the machine that wrote it.
    """
    path = Path(manifest_file).resolve()
    here = Path(cwd if cwd is not None else Path.cwd()).resolve()
    base = here if path.is_relative_to(here) else RunStore.of_manifest_file(path).root
    return f"provenir reproduce {shlex.quote(path.relative_to(base).as_posix())}", base


def _eval_record(eval_result: Any) -> tuple[dict[str, dict[str, float | int | None]], dict[str, Any], float]:
    """Metrics, ``extra`` and confidence level of an evaluation result (see the module doc)."""
    if eval_result is None:
        return {}, {}, 0.95
    data = eval_result.to_dict() if hasattr(eval_result, "to_dict") else eval_result
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise GovernanceError(
            "eval_result must be None, a dict {'metrics': {name: {'mean', 'ci_lower', 'ci_upper', 'n'}}} "
            "or an object whose to_dict() returns one"
        )
    out: dict[str, dict[str, float | int | None]] = {}
    for name, m in data["metrics"].items():
        if (
            not isinstance(m, dict)
            or not isinstance(m.get("mean"), int | float)
            or isinstance(m.get("mean"), bool)
        ):
            raise GovernanceError(f"eval metric {name!r}: expected a dict with a numeric 'mean'")
        out[str(name)] = {k: m.get(k) for k in ("mean", "ci_lower", "ci_upper", "n")}
    extra = data["extra"] if isinstance(data.get("extra"), dict) else {}
    confidence = data.get("confidence")
    return out, extra, float(confidence) if isinstance(confidence, int | float) else 0.95


def safe_card_path(directory: str | os.PathLike[str], filename: str = DEFAULT_CARD_NAME) -> Path:
    """``directory/filename``, refusing names that could land outside ``directory``.

    ``filename`` must be a plain ``*.md`` name (no separators, no ``..``, no control
    characters), and the resolved path (symlinks followed) must stay inside ``directory``.
    """
    if not isinstance(filename, str) or not _SAFE_NAME.match(filename) or ".." in filename:
        raise GovernanceError(
            f"invalid model card file name {filename!r}: "
            "use a plain name like MODEL_CARD.md (letters, digits, . _ -)"
        )
    root = Path(directory).resolve()
    target = (root / filename).resolve()
    if target.parent != root:
        raise GovernanceError(f"model card path {target} escapes {root} (through a symlink?)")
    return root / filename


@dataclass
class GeneratedModelCard:
    """A generated card: ``text`` (Markdown with YAML front matter) and the hub ``card`` object."""

    text: str
    card: Any  # huggingface_hub.ModelCard
    run_id: str

    @property
    def data(self) -> dict[str, Any]:
        """The YAML metadata as a dict."""
        return self.card.data.to_dict()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the card atomically to ``path`` (a ``.md`` file; its folder is created).

        The file name is validated with :func:`safe_card_path` against its own folder, so a
        crafted name cannot redirect the write elsewhere.
        """
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(safe_card_path(p.parent, p.name), self.text)

    def save_in(self, directory: str | os.PathLike[str], filename: str = DEFAULT_CARD_NAME) -> Path:
        """Write the card as ``directory/filename`` (name validated, folder created)."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        return atomic_write_text(safe_card_path(directory, filename), self.text)

    def __str__(self) -> str:
        return self.text


class ModelCardGenerator:
    """Builds a :class:`GeneratedModelCard` from a :class:`RunManifest` (see module docstring).

    ``license`` defaults to the manifest's ``extra["license"]``, else ``"other"``;
    ``extra_tags`` are added to the metadata tags.
    """

    def __init__(self, *, license: str | None = None, extra_tags: list[str] | None = None) -> None:
        self.license = license
        self.extra_tags = list(extra_tags or [])

    def generate(
        self,
        manifest: RunManifest | str | os.PathLike[str],
        eval_result: Any = None,
        *,
        allow_failed: bool = False,
        manifest_file: str | os.PathLike[str] | None = None,
    ) -> GeneratedModelCard:
        """Card for ``manifest`` (a :class:`RunManifest` or a path to one) and ``eval_result``.

        A run whose status is not ``completed`` raises :class:`GovernanceError` unless
        ``allow_failed``; its card then opens by saying the run did not complete, with its error.
        ``manifest_file`` (implied when ``manifest`` is a path) is where the manifest is stored:
        the card's reproduce command names it (see :func:`reproduce_command`).
        """
        try:
            from huggingface_hub import EvalResult, ModelCard, ModelCardData
        except ImportError:
            raise GovernanceError(
                "model cards need huggingface_hub (pip install 'provenir[governance]')"
            ) from None
        raw = None
        if not isinstance(manifest, RunManifest):
            manifest_file = manifest
            manifest, raw = RunManifest.load_with_text(manifest)
        if manifest.status != "completed" and not allow_failed:
            error = f" ({_one_line(manifest.error, 300)})" if manifest.error else ""
            raise GovernanceError(
                f"run {manifest.run_id} is {manifest.status}, not completed{error}: a model card describes "
                "a finished model; pass --allow-failed (allow_failed=True) for a card that says it failed"
            )
        if eval_result is None and manifest.eval:
            eval_result = manifest.eval
        metrics, eval_extra, confidence = _eval_record(eval_result)
        eval_data = evaluation_dataset(manifest, eval_extra)
        verification = manifest.check(raw=raw)

        config = manifest.config or {}
        base_model = str(config.get("model_name_or_path") or "") or None
        data_cfg: dict[str, Any] = config["data"] if isinstance(config.get("data"), dict) else {}
        data_path = manifest.data_path or data_cfg.get("path")
        train_uris = [p.uri for p in manifest.inputs.datasets if p.role == "train"] if manifest.inputs else []
        # Hub metadata `datasets` lists what the model was trained on; metrics name their own data.
        hub_datasets = [str(u) for u in (train_uris or [str(data_path or "")]) if _is_hub_id(u)]
        peft: dict[str, Any] = config["peft"] if isinstance(config.get("peft"), dict) else {}
        uses_adapter = bool(peft.get("enabled", False))
        model_name = _one_line(manifest.name, 96)
        tags = [
            "provenir",
            manifest.algorithm,
            manifest.backend,
            *(["lora", "peft"] if uses_adapter else []),
            *self.extra_tags,
        ]
        license_ = self.license or str(manifest.extra.get("license") or "other")

        dataset_args = {"sha256": eval_data.sha256, "rows": eval_data.rows}
        eval_results = [
            EvalResult(
                task_type="text-generation",
                dataset_type=eval_data.hub_id or "provenir-eval",
                dataset_name=_one_line(eval_data.name or "evaluation data not recorded", 200),
                dataset_args={k: v for k, v in dataset_args.items() if v is not None} or None,
                metric_type=name,
                metric_value=float(m["mean"] or 0.0),
                metric_name=_metric_label(name, m, confidence),
                metric_args={k: m[k] for k in ("ci_lower", "ci_upper", "n") if m.get(k) is not None},
            )
            for name, m in sorted(metrics.items())
        ]
        card_data = ModelCardData(
            model_name=model_name,
            base_model=base_model,
            datasets=hub_datasets or None,
            license=license_,
            library_name="peft" if uses_adapter else "transformers",
            pipeline_tag="text-generation",
            tags=list(dict.fromkeys(t for t in tags if t)),
            eval_results=eval_results or None,
        )
        body = self._body(
            manifest,
            _Evaluation(metrics, confidence, eval_data),
            verification,
            data_path,
            base_model,
            self._reproduce_line(manifest, manifest_file),
        )
        text = f"---\n{card_data.to_yaml()}\n---\n\n{body}"
        return GeneratedModelCard(
            text=text, card=ModelCard(text, ignore_metadata_errors=True), run_id=manifest.run_id
        )

    @staticmethod
    def _reproduce_line(manifest: RunManifest, manifest_file: str | os.PathLike[str] | None) -> str:
        # Only what `provenir reproduce` accepts is offered: it refuses anything else.
        if manifest.status != "completed":
            return f"- Reproduce: not possible: `provenir reproduce` replays completed runs only (this one is {manifest.status})"
        if manifest.inputs is None:
            return (
                f"- Reproduce: not possible: this manifest (schema {manifest.schema_version}) pins no inputs "
                "to replay against"
            )
        if manifest_file is None:
            rel = RunStore(".").manifest_path(manifest.run_id).as_posix()
            return f"- Reproduce (from the artifacts folder that holds this run): `provenir reproduce {rel}`"
        command, base = reproduce_command(manifest_file)
        if base == Path.cwd().resolve():
            return f"- Reproduce: `{command}`"
        return f"- Reproduce (from the artifacts folder `{_one_line(base.name, 80)}` that holds this run): `{command}`"

    def _body(
        self,
        manifest: RunManifest,
        evaluation: _Evaluation,
        verification: Any,
        data_path: Any,
        base_model: str | None,
        reproduce: str,
    ) -> str:
        c = manifest.config or {}
        metrics = evaluation.metrics
        lines = [f"# {_one_line(manifest.name, 96)}", ""]
        if manifest.status != "completed":
            what = "failed" if manifest.status == "failed" else "did not complete"
            error = f"error: {_one_line(manifest.error, 500)}" if manifest.error else "no error was recorded"
            lines += [
                f"> **This run {what}** (status `{manifest.status}`; {error}). "
                "It did not produce a finished model: this card records the attempt.",
                "",
            ]
        lines += [
            f"Fine-tuned from `{_one_line(base_model or 'unknown')}` "
            f"with {_one_line(manifest.algorithm).upper()} "
            f"on the `{_one_line(manifest.backend)}` backend with Provenir. "
            f"Run `{manifest.run_id}`, status **{manifest.status}**.",
            "",
            "## Evaluation",
            "",
        ]
        if metrics:
            data = evaluation.data
            pct = f"{evaluation.confidence * 100:g}%"
            dataset = _one_line(data.name or "not recorded", 120)
            digest = f"`{data.sha256}`" if data.sha256 else "not recorded"
            lines += [
                f"Computed on: {_one_line(data.describe(), 400)}.",
                "",
                f"| Metric | Mean | {pct} CI | n | Dataset | Dataset SHA-256 |",
                "|---|---|---|---|---|---|",
            ]
            for name, m in sorted(metrics.items()):
                ci = (
                    f"[{m['ci_lower']:.4f}, {m['ci_upper']:.4f}]"
                    if isinstance(m.get("ci_lower"), int | float)
                    and isinstance(m.get("ci_upper"), int | float)
                    else "n/a"
                )
                lines.append(
                    f"| {_one_line(name)} | {m['mean']:.4f} | {ci} | "
                    f"{m.get('n') if m.get('n') is not None else 'n/a'} | {dataset} | {digest} |"
                )
        else:
            lines.append("No evaluation results were recorded for this run.")
        lines += ["", "## Training configuration", "", "| Setting | Value |", "|---|---|"]
        peft = c.get("peft") if isinstance(c.get("peft"), dict) else {}
        for key in (
            "algorithm",
            "backend",
            "seed",
            "max_steps",
            "num_train_epochs",
            "batch_size",
            "learning_rate",
            "max_length",
            "precision",
        ):
            if c.get(key) is not None:  # a run has max_steps or num_train_epochs, not both
                lines.append(f"| {key} | {_one_line(c[key])} |")
        if peft:
            lines.append(
                f"| peft | {'LoRA' if peft.get('enabled') else 'full fine-tune'} "
                f"rank={_one_line(peft.get('rank'))} "
                f"alpha={_one_line(peft.get('alpha'))} 4bit={_one_line(peft.get('load_in_4bit'))} "
                f"rslora={_one_line(peft.get('use_rslora'))} |"
            )
        lines.append(f"| config_hash | `{manifest.config_hash}` |")
        lines += ["", "## Inputs", "", *self._input_lines(manifest)]
        lines += [
            "",
            "## Training data",
            "",
            f"- Source: `{_one_line(data_path or 'unknown')}`",
            f"- Dataset SHA-256: `{manifest.dataset_hash}`",
        ]
        if manifest.eval_dataset_hash:
            lines.append(f"- Evaluation dataset SHA-256: `{manifest.eval_dataset_hash}`")
        lines += self._row_lines(manifest)
        lines += self._scan_lines(manifest.scans)
        sig = verification.signature
        lines += [
            "",
            "## Provenance",
            "",
            f"- Manifest hash: `{manifest.manifest_hash or 'not sealed'}` "
            f"({'verified' if verification.hash_ok else 'DOES NOT MATCH the content'})",
            f"- Signature: {sig}"
            + (
                f" (key fingerprint `{verification.signer_fingerprint}`)"
                if verification.signer_fingerprint
                else ""
            ),
            (
                f"- Git commit: `{_one_line(manifest.git_sha)}`"
                if manifest.git_sha
                else "- Git commit: not recorded"
            )
            + (" (uncommitted changes)" if manifest.git_dirty else ""),
            f"- Started: {_one_line(manifest.timestamp)}; "
            f"finished: {_one_line(manifest.finished_at or 'n/a')}",
        ]
        if manifest.provenance:
            lines.append(f"- Parent runs: {', '.join(_one_line(p, 40) for p in manifest.provenance)}")
        if manifest.adapter_hash:
            lines.append(f"- Weights SHA-256: `{manifest.adapter_hash}`")
        lines.append(reproduce)
        lines += ["", "## Limitations", ""] + [
            f"- {item}" for item in self._limitations(manifest, metrics, verification)
        ]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _input_lines(manifest: RunManifest) -> list[str]:
        inputs = manifest.inputs
        if inputs is None:
            return [
                f"- Not recorded in this manifest (schema {manifest.schema_version}): no input was pinned."
            ]
        out = [
            "- Base model: " + (_file_set_text(inputs.model) if inputs.model else "not pinned"),
        ]
        if inputs.init_adapter is not None:
            out.append("- Initial adapter: " + _file_set_text(inputs.init_adapter))
        t = inputs.chat_template
        out.append(
            "- Chat template: "
            + (
                f"`{_one_line(t.name)}` ({t.origin}{f', version {_one_line(t.version)}' if t.version else ''}), "
                f"SHA-256 `{t.sha256}`"
                if t is not None
                else "not pinned"
            )
        )
        ck = inputs.resumed_checkpoint
        if ck is not None:
            out.append(
                f"- Resumed from checkpoint `{_one_line(ck.name)}`: {len(ck.files)} files, digest `{ck.digest}`"
            )
        out += [f"- Not pinned: {_one_line(note, 300)}" for note in inputs.notes]
        return out

    @staticmethod
    def _row_lines(manifest: RunManifest) -> list[str]:
        inputs = manifest.inputs
        if inputs is None:
            return [f"- Exact rows: not recorded in this manifest (schema {manifest.schema_version})"]
        out = []
        for p in inputs.datasets:
            where = ", ".join(
                f"{k} {_one_line(v)}"
                for k, v in (("revision", p.revision), ("config", p.config), ("split", p.split))
                if v
            )
            used = f", {p.rows_used} used" if p.rows_used is not None else ""
            weight = f", weight {p.weight:g}" if p.weight is not None else ""
            out.append(
                f"- {'Training' if p.role == 'train' else 'Evaluation'} source `{_one_line(p.uri)}`"
                f"{f' ({where})' if where else ''}: SHA-256 `{p.sha256}`, {p.rows} rows{used}{weight}"
            )
        r = inputs.training_rows
        out.append(f"- Training rows: {r.count}, SHA-256 `{r.sha256}` (exactly what training read)")
        e = inputs.eval_rows
        out.append(
            f"- Evaluation rows: {e.count}, SHA-256 `{e.sha256}`"
            if e is not None
            else "- Evaluation rows: none"
        )
        return out

    @staticmethod
    def _scan_lines(scans: dict[str, Any] | None) -> list[str]:
        if not scans:
            return ["- PII / secret scan: not run before training"]
        out = []
        pii = scans.get("pii") if isinstance(scans.get("pii"), dict) else None
        sec = scans.get("secrets") if isinstance(scans.get("secrets"), dict) else None
        if pii:
            found = {k: v for k, v in (pii.get("counts") or {}).items() if v}
            out.append(f"- PII scan: {', '.join(f'{k}={v}' for k, v in found.items()) or 'nothing found'}")
        if sec:
            found = {k: v for k, v in (sec.get("counts") or {}).items() if v}
            out.append(
                "- Secret scan: "
                + (", ".join(f"{_one_line(k)}={v}" for k, v in found.items()) or "nothing found")
            )
        out.append(f"- Action taken on findings: {_one_line(scans.get('action', 'report'))}")
        return out

    @staticmethod
    def _limitations(
        manifest: RunManifest, metrics: dict[str, dict[str, Any]], verification: Any
    ) -> list[str]:
        items = [
            "Evaluated only on the metrics above; behaviour outside that data distribution is unknown.",
            "Inherits the limitations, biases and license terms of the base model and the training data.",
        ]
        if manifest.status != "completed":
            items.append(f"The run is recorded as **{manifest.status}**, not completed.")
        if not metrics:
            items.append("No evaluation was recorded: quality is unmeasured.")
        small = [n for n, m in metrics.items() if isinstance(m.get("n"), int) and m["n"] < 100]
        if small:
            items.append(
                f"Small evaluation sets (n < 100) for {', '.join(sorted(small))}: intervals are wide."
            )
        if verification.signature != "valid":
            items.append("The manifest is not signed by a trusted key: authorship is not established.")
        if not verification.ok:
            items.append("The manifest failed verification: " + "; ".join(verification.problems))
        scans = manifest.scans or {}
        if scans.get("has_pii") and scans.get("action") != "masked":
            items.append("PII was found in the training data and was not masked.")
        if scans.get("has_secrets") and scans.get("action") != "masked":
            items.append("Secrets were found in the training data and were not masked.")
        return items


@dataclass(frozen=True)
class _Evaluation:
    metrics: dict[str, dict[str, Any]]
    confidence: float
    data: EvalDataset


def _file_set_text(pin: FileSetPin) -> str:
    revision = pin.resolved_revision or pin.requested_revision
    return (
        f"`{_one_line(pin.source)}` ({pin.kind}{f', revision {_one_line(revision)}' if revision else ''}), "
        f"{len(pin.files)} files, digest `{pin.digest}`"
    )


def _metric_label(name: str, m: dict[str, Any], confidence: float = 0.95) -> str:
    lo, hi = m.get("ci_lower"), m.get("ci_upper")
    label = _one_line(name, 60)
    if isinstance(lo, int | float) and isinstance(hi, int | float):
        label += f" ({confidence * 100:g}% CI {lo:.4f}-{hi:.4f}"
        label += f", n={m['n']})" if m.get("n") is not None else ")"
    return label


def write_model_card(
    ref: str | os.PathLike[str],
    *,
    output_dir: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    eval_file: str | os.PathLike[str] | None = None,
    license: str | None = None,
    allow_failed: bool = False,
    audit: bool = True,
) -> Path:
    """Generate the card of run ``ref`` (id, prefix, ``latest`` or manifest file) and write it.

    The evaluation is ``eval_file``, else the run's ``eval.json`` when there is one, else the
    manifest's own. The card goes to ``out`` (a ``.md`` file, or a folder that gets
    ``MODEL_CARD.md``), by default ``<output_dir>/runs/<run_id>/MODEL_CARD.md``. With ``audit``,
    the store's audit log records ``model_card_generated``. Returns the card's path.
    """
    store, manifest_file = RunStore(output_dir).locate(ref)
    manifest = RunManifest.load(manifest_file)
    run_folder = store.run_dir(manifest.run_id)
    eval_result = None
    candidate = Path(eval_file) if eval_file is not None else run_folder / "eval.json"
    if eval_file is not None or candidate.is_file():
        try:
            eval_result = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise GovernanceError(f"{candidate}: cannot read evaluation results ({exc})") from None
    card = ModelCardGenerator(license=license).generate(manifest_file, eval_result, allow_failed=allow_failed)
    if out is None:
        written = card.save_in(run_folder, DEFAULT_CARD_NAME)
    elif Path(out).is_dir():
        written = card.save_in(out, DEFAULT_CARD_NAME)
    else:
        written = card.save(out)
    if audit:
        from provenir.governance.audit import AuditLogger

        AuditLogger(store.audit_dir).log(
            "model_card_generated",
            run_id=manifest.run_id,
            path=str(written),
            manifest_hash=manifest.manifest_hash,
        )
    return written
