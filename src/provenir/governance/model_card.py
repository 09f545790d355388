"""Hugging Face model cards generated from a run manifest and its evaluation.

::

    from provenir.governance.model_card import ModelCardGenerator

    card = ModelCardGenerator().generate(manifest, eval_result)
    card.save("MODEL_CARD.md")

The card is ``huggingface_hub.ModelCard`` text: YAML metadata (``base_model``, ``datasets``
when the data is a hub id, ``license``, ``tags``, ``library_name`` and a ``model-index`` with
every metric's mean; its 95% interval goes in the metric name and ``args``) followed by sections
on training configuration, data and scans, provenance (manifest hash, signature status) and
limitations. Nothing touches the network.

``eval_result`` may be ``None`` (the manifest's own ``eval`` is used if present), a dict
``{"metrics": {name: {"mean", "ci_lower", "ci_upper", "n"}}}``, or an object whose
``to_dict()`` returns that dict (``provenir.eval``'s result).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenir.core.atomic import atomic_write_text
from provenir.core.errors import GovernanceError
from provenir.core.manifest import RunManifest

DEFAULT_CARD_NAME = "MODEL_CARD.md"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
_FILE_SUFFIX = re.compile(r"\.(jsonl|json|csv|parquet|txt|arrow)$", re.IGNORECASE)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.md$")


def _one_line(value: Any, limit: int = 200) -> str:
    """Text safe inside a Markdown table cell: one line, no pipes or backticks, bounded."""
    text = " ".join(str(value).split()).replace("|", "\\|").replace("`", "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _metrics_from(eval_result: Any) -> dict[str, dict[str, float | int | None]]:
    if eval_result is None:
        return {}
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
    return out


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
        self, manifest: RunManifest | str | os.PathLike[str], eval_result: Any = None
    ) -> GeneratedModelCard:
        """Card for ``manifest`` (a :class:`RunManifest` or a path to one) and ``eval_result``."""
        try:
            from huggingface_hub import EvalResult, ModelCard, ModelCardData
        except ImportError:
            raise GovernanceError(
                "model cards need huggingface_hub (pip install 'provenir[governance]')"
            ) from None
        raw = None
        if not isinstance(manifest, RunManifest):
            manifest, raw = RunManifest.load_with_text(manifest)
        if eval_result is None and manifest.eval:
            eval_result = manifest.eval
        metrics = _metrics_from(eval_result)
        verification = manifest.check(raw=raw)

        config = manifest.config or {}
        base_model = str(config.get("model_name_or_path") or "") or None
        data_cfg: dict[str, Any] = config["data"] if isinstance(config.get("data"), dict) else {}
        data_path = manifest.data_path or data_cfg.get("path")
        hub_dataset = (
            data_path
            if isinstance(data_path, str) and _HUB_ID.match(data_path) and not _FILE_SUFFIX.search(data_path)
            else None
        )
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

        eval_results = [
            EvalResult(
                task_type="text-generation",
                dataset_type=hub_dataset or "provenir-eval",
                dataset_name=_one_line(
                    manifest.eval_dataset_hash or data_path or "held-out evaluation set", 96
                ),
                metric_type=name,
                metric_value=float(m["mean"] or 0.0),
                metric_name=_metric_label(name, m),
                metric_args={k: m[k] for k in ("ci_lower", "ci_upper", "n") if m.get(k) is not None},
            )
            for name, m in sorted(metrics.items())
        ]
        card_data = ModelCardData(
            model_name=model_name,
            base_model=base_model,
            datasets=[hub_dataset] if hub_dataset else None,
            license=license_,
            library_name="peft" if uses_adapter else "transformers",
            pipeline_tag="text-generation",
            tags=list(dict.fromkeys(t for t in tags if t)),
            eval_results=eval_results or None,
        )
        body = self._body(manifest, metrics, verification, data_path, base_model)
        text = f"---\n{card_data.to_yaml()}\n---\n\n{body}"
        return GeneratedModelCard(
            text=text, card=ModelCard(text, ignore_metadata_errors=True), run_id=manifest.run_id
        )

    def _body(
        self,
        manifest: RunManifest,
        metrics: dict[str, dict[str, Any]],
        verification: Any,
        data_path: Any,
        base_model: str | None,
    ) -> str:
        c = manifest.config or {}
        lines = [f"# {_one_line(manifest.name, 96)}", ""]
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
            lines += ["| Metric | Mean | 95% CI | n |", "|---|---|---|---|"]
            for name, m in sorted(metrics.items()):
                ci = (
                    f"[{m['ci_lower']:.4f}, {m['ci_upper']:.4f}]"
                    if isinstance(m.get("ci_lower"), int | float)
                    and isinstance(m.get("ci_upper"), int | float)
                    else "n/a"
                )
                lines.append(
                    f"| {_one_line(name)} | {m['mean']:.4f} | {ci} | "
                    f"{m.get('n') if m.get('n') is not None else 'n/a'} |"
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
            "batch_size",
            "learning_rate",
            "max_length",
            "precision",
        ):
            if key in c:
                lines.append(f"| {key} | {_one_line(c[key])} |")
        if peft:
            lines.append(
                f"| peft | {'LoRA' if peft.get('enabled') else 'full fine-tune'} "
                f"rank={_one_line(peft.get('rank'))} "
                f"alpha={_one_line(peft.get('alpha'))} 4bit={_one_line(peft.get('load_in_4bit'))} "
                f"rslora={_one_line(peft.get('use_rslora'))} |"
            )
        lines.append(f"| config_hash | `{manifest.config_hash}` |")
        lines += [
            "",
            "## Training data",
            "",
            f"- Source: `{_one_line(data_path or 'unknown')}`",
            f"- Dataset SHA-256: `{manifest.dataset_hash}`",
        ]
        if manifest.eval_dataset_hash:
            lines.append(f"- Evaluation dataset SHA-256: `{manifest.eval_dataset_hash}`")
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
            f"- Git commit: `{_one_line(manifest.git_sha or 'unknown')}`"
            + (" (uncommitted changes)" if manifest.git_dirty else ""),
            f"- Started: {_one_line(manifest.timestamp)}; "
            f"finished: {_one_line(manifest.finished_at or 'n/a')}",
        ]
        if manifest.provenance:
            lines.append(f"- Parent runs: {', '.join(_one_line(p, 40) for p in manifest.provenance)}")
        if manifest.adapter_hash:
            lines.append(f"- Weights SHA-256: `{manifest.adapter_hash}`")
        lines.append(f"- Reproduce: `provenir reproduce artifacts/manifests/{manifest.run_id}.json`")
        lines += ["", "## Limitations", ""] + [
            f"- {item}" for item in self._limitations(manifest, metrics, verification)
        ]
        return "\n".join(lines) + "\n"

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


def _metric_label(name: str, m: dict[str, Any]) -> str:
    lo, hi = m.get("ci_lower"), m.get("ci_upper")
    label = _one_line(name, 60)
    if isinstance(lo, int | float) and isinstance(hi, int | float):
        label += f" (95% CI {lo:.4f}-{hi:.4f}"
        label += f", n={m['n']})" if m.get("n") is not None else ")"
    return label
