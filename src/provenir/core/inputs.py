"""What a run consumed, pinned by content: the typed ``inputs`` section of a run manifest.

Every field here is covered by ``manifest_hash``. ``provenir reproduce`` re-derives each pin
from what is on disk *before* training and refuses, naming the input, when one differs.

* ``model`` / ``init_adapter``: every file that loading reads, with its SHA-256, plus one
  digest over the sorted ``(path, sha256)`` list (:func:`file_set_digest`).
* ``chat_template``: the exact template that rendered the rows.
* ``datasets``: one entry per data source, as loaded.
* ``training_rows`` / ``eval_rows``: the exact rows training and evaluation consumed, after
  loading, scanning/masking, splitting and mixing, written once into the run folder.
* ``resumed_checkpoint``: the files of the checkpoint a resumed run continued from.
* ``long_rows``: how many rows were longer than ``max_length`` tokens, and whether training
  truncated or dropped them (absent when the backend does not tokenize, like ``stub``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from provenir.core.hashing import sha256_bytes


def file_set_digest(files: Mapping[str, str]) -> str:
    """One SHA-256 over ``relative/path\\0sha256\\n`` lines in path order (as :func:`sha256_path`)."""
    return sha256_bytes("".join(f"{rel}\0{files[rel]}\n" for rel in sorted(files)).encode())


class _Pin(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileSetPin(_Pin):
    """A model or adapter, pinned by the hash of every file loading reads."""

    source: str = Field(description="The id or path as configured (model_name_or_path / init_adapter).")
    kind: Literal["local", "hub", "builtin"] = Field(
        description="local folder, a hub id resolved from the local Hugging Face cache, or the built-in model."
    )
    requested_revision: str | None = Field(None, description="model_revision as configured (hub only).")
    resolved_revision: str | None = Field(
        None, description="The commit the hub revision resolved to (hub only)."
    )
    files: dict[str, str] = Field(description="Path relative to the model folder -> SHA-256.")
    digest: str = Field(description="SHA-256 over the sorted (path, sha256) list: see file_set_digest.")


class TemplatePin(_Pin):
    """The chat template that rendered the rows."""

    name: str = Field(description="data.template as configured (a template name or 'tokenizer').")
    origin: Literal["builtin", "registered", "tokenizer"] = Field(
        description="A template shipped with Provenir, one registered at run time, or the tokenizer's Jinja."
    )
    version: str | None = Field(None, description="Built-in templates: Provenir's version of that template.")
    sha256: str = Field(description="SHA-256 of the template source (see data.templates.template_source).")


class DatasetSourcePin(_Pin):
    """One data source as loaded."""

    role: Literal["train", "eval"]
    uri: str = Field(description="Path, hub id or builtin:<name> as configured.")
    revision: str | None = None
    config: str | None = None
    split: str | None = None
    weight: float | None = Field(None, description="Mixture weight (data.sources).")
    sha256: str = Field(description="Hash of the source content (file bytes, or hub rows' canonical JSON).")
    rows: int = Field(description="Rows read from the source (after its max_samples).")
    rows_used: int | None = Field(None, description="Rows of this source in the realised mixture.")


class RowsPin(_Pin):
    """The exact rows a stage consumed, stored as canonical JSON lines in the run folder."""

    path: str = Field(description="Path relative to the run folder.")
    sha256: str = Field(description="SHA-256 of the file (equals core.hashing.sha256_rows of the rows).")
    count: int


class CheckpointPin(_Pin):
    """The checkpoint a resumed run continued from."""

    name: str = Field(description="checkpoint-N")
    files: dict[str, str] = Field(description="Path relative to the checkpoint -> SHA-256.")
    digest: str


class LongRows(_Pin):
    """Rows longer than ``max_length`` tokens, counted before tokenization, and what became of them.

    Measured on the rows as the chat template renders them (prompt + answer; GRPO: the prompt),
    with the model's tokenizer, by the backend that trains on them.
    """

    max_length: int = Field(description="config.max_length the rows were measured against.")
    training_rows: int = Field(description="Training rows longer than max_length tokens.")
    truncated: int = Field(
        description="Of those, rows trained on their first max_length tokens (the answer loses its end)."
    )
    dropped: int = Field(
        description="Of those, rows left out of training: the prompt alone fills max_length (GRPO: "
        "exceeds it), so no answer token would remain."
    )
    eval_rows: int | None = Field(
        None,
        description="Eval rows longer than max_length tokens; evaluation uses them whole. None: no eval rows.",
    )
    first_training_rows: list[int] = Field(
        default_factory=list,
        description="1-based positions, in the stored training rows, of the first (up to 20) long rows.",
    )


class RunInputs(_Pin):
    """Everything a run consumed, by content."""

    model: FileSetPin | None = Field(None, description="Base model; None when the backend loads no model.")
    init_adapter: FileSetPin | None = None
    chat_template: TemplatePin | None = None
    datasets: list[DatasetSourcePin] = Field(default_factory=list)
    training_rows: RowsPin
    eval_rows: RowsPin | None = None
    resumed_checkpoint: CheckpointPin | None = None
    notes: list[str] = Field(default_factory=list, description="Inputs that could not be pinned, and why.")
    long_rows: LongRows | None = Field(
        None, description="Rows longer than max_length and what training did with them (tokenizing backends)."
    )

    @model_serializer(mode="wrap")
    def _omit_unmeasured_long_rows(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Manifests written before long_rows existed have no such key; leaving it out when
        # nothing was measured keeps their canonical JSON, and so their hash, unchanged.
        data: dict[str, Any] = handler(self)
        if self.long_rows is None:
            data.pop("long_rows", None)
        return data


# -- comparing a run's inputs with what is on disk now ------------------------------------------


def _short(digest: str | None) -> str:
    return f"{digest[:8]}…" if digest else "(none)"


def diff_file_sets(label: str, recorded: FileSetPin | None, current: FileSetPin | None) -> list[str]:
    """Human lines naming every file of a model/adapter that changed, appeared or went away."""
    if recorded is None and current is None:
        return []
    if recorded is None or current is None:
        return [
            f"{label}: recorded {'nothing' if recorded is None else recorded.source}, now "
            f"{'nothing' if current is None else current.source}"
        ]
    lines: list[str] = []
    if recorded.resolved_revision != current.resolved_revision:
        lines.append(
            f"{label} revision resolved to {current.resolved_revision} (recorded {recorded.resolved_revision})"
        )
    for rel in sorted(set(recorded.files) | set(current.files)):
        before, after = recorded.files.get(rel), current.files.get(rel)
        if before == after:
            continue
        if before is None:
            lines.append(f"{label} file {rel} added")
        elif after is None:
            lines.append(f"{label} file {rel} removed")
        else:
            lines.append(f"{label} file {rel} changed: sha256 {_short(before)} -> {_short(after)}")
    return lines


def diff_inputs(recorded: RunInputs, current: RunInputs) -> list[str]:
    """Every difference between a run's recorded inputs and the same inputs derived now.

    Empty when the run can be replayed on exactly what it consumed. Notes and the resumed
    checkpoint are not inputs of a fresh replay and are not compared.
    """
    lines = diff_file_sets("model", recorded.model, current.model)
    lines += diff_file_sets("initial adapter", recorded.init_adapter, current.init_adapter)
    before_t, after_t = recorded.chat_template, current.chat_template
    if before_t != after_t:
        lines.append(
            f"chat template {after_t.name if after_t else before_t.name if before_t else ''} changed: "
            f"sha256 {_short(before_t.sha256 if before_t else None)} -> "
            f"{_short(after_t.sha256 if after_t else None)}"
        )
    old_sources = {(p.role, p.uri): p for p in recorded.datasets}
    new_sources = {(p.role, p.uri): p for p in current.datasets}
    for key in sorted(set(old_sources) | set(new_sources)):
        before_d, after_d = old_sources.get(key), new_sources.get(key)
        role, uri = key
        if before_d is None or after_d is None:
            lines.append(f"{role} dataset {uri} {'added' if before_d is None else 'removed'}")
        elif before_d.sha256 != after_d.sha256:
            lines.append(
                f"{role} dataset changed: {uri} sha256 {_short(before_d.sha256)} -> {_short(after_d.sha256)}"
            )
        elif before_d != after_d:
            lines.append(f"{role} dataset {uri}: rows {before_d.rows} -> {after_d.rows}")
    for label, before_r, after_r in (
        ("training rows", recorded.training_rows, current.training_rows),
        ("eval rows", recorded.eval_rows, current.eval_rows),
    ):
        if (before_r and before_r.sha256) != (after_r and after_r.sha256):
            lines.append(
                f"{label} changed: sha256 {_short(before_r.sha256 if before_r else None)} -> "
                f"{_short(after_r.sha256 if after_r else None)} "
                f"({before_r.count if before_r else 0} -> {after_r.count if after_r else 0} rows)"
            )
    return lines
