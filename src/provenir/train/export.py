"""Export a run's model: base + adapter merged into one safetensors folder, recorded by a child manifest.

::

    from provenir.train.export import export_run

    result = export_run("latest", out="merged-model")
    result.manifest.relation          # "export"
    result.max_abs_diff               # largest |logit difference| on the check batch, <= 1e-5

What happens, in order (nothing is kept unless every step passes):

1. The run's manifest verifies (hash, file form, signature, every recorded output and input-rows
   file), the run completed, and it trained an adapter.
2. The base model is pinned again from disk and must equal the run's ``inputs.model`` pin: a
   different base would make a different merged model than the one the run trained.
3. The base is loaded in float32 on CPU, unquantised even when the run trained on a 4-bit or
   8-bit base, the adapter is applied (``PeftModel``) and its logits on a fixed batch
   (:data:`CHECK_TEXTS`) are computed; then ``merge_and_unload`` and ``save_pretrained``
   (safetensors) with the tokenizer, into ``runs/<export id>/model`` of the same store.
4. The saved folder is loaded back with ``AutoModelForCausalLM.from_pretrained`` and its logits
   on the same batch must equal base + adapter within :data:`LOGITS_TOLERANCE` (max absolute
   difference), else :class:`~provenir.core.errors.ReproducibilityError`.
5. A child manifest (``relation: export``, ``provenance`` ending with the run) lists every file
   of the folder with its SHA-256 and records the base and adapter pins, the check batch's hash
   and the measured difference; it verifies with ``RunStore.verify`` like any run.
6. With a model signing key the folder is signed exactly as ``provenir sign-model`` would sign a
   run (``runs/<export id>/model.sig``, checked against the sealed outputs, audited); with a
   manifest signing key, signed provenance is written as after training.
7. With ``out``, the folder is also placed at ``out`` (hard links where the file system allows,
   else copies, checked against the recorded hashes).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenir.core.errors import ConfigError, ManifestError, ReproducibilityError
from provenir.core.hashing import sha256_file, sha256_json
from provenir.core.manifest import RunManifest, new_run_id, utc_now
from provenir.core.store import RunStore

if TYPE_CHECKING:
    from provenir.core.inputs import FileSetPin
    from provenir.governance.model_signing import ModelSignature

#: ``relation`` of an export's manifest.
EXPORT_RELATION = "export"
#: Folder of the merged model inside the export's run folder.
MODEL_FOLDER = "model"
#: Largest absolute logit difference allowed between base + adapter and the reloaded merged model.
LOGITS_TOLERANCE = 1e-5
#: The fixed batch both models are run on (padded to the longest, attention-masked).
CHECK_TEXTS = (
    "Below is an instruction that describes a task.",
    "What is the capital of France?",
    "LoRA adds a low-rank update to each adapted weight matrix, and merging adds it for good.",
    "1 2 3 4 5 6 7 8 9 10",
)
#: Audit event written for every export.
EXPORTED_EVENT = "model_exported"


@dataclass(frozen=True)
class ExportResult:
    """A finished export: its sealed manifest, where the merged model is, and what was checked."""

    manifest: RunManifest
    manifest_path: Path
    model_dir: Path
    out: Path | None
    max_abs_diff: float
    files: dict[str, str]
    signature: ModelSignature | None

    def to_dict(self) -> dict[str, Any]:
        """What was exported, as JSON-serialisable data (what ``provenir export --json`` prints)."""
        return {
            "run_id": self.manifest.run_id,
            "parent_run_id": self.manifest.provenance[-1],
            "manifest": str(self.manifest_path),
            "model_dir": str(self.model_dir),
            "out": str(self.out) if self.out is not None else None,
            "files": self.files,
            "logits_max_abs_diff": self.max_abs_diff,
            "signature": str(self.signature.signature_path) if self.signature else None,
        }


def export_run(
    ref: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    signing_key: str | os.PathLike[str] | None = None,
    model_signing_key: str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Merge the adapter of the stored run ``ref`` into its base model (see the module docstring).

    ``ref`` is anything :meth:`RunStore.locate` accepts; the export is written into that run's
    store. ``signing_key`` seals the export's manifest (else ``$PROVENIR_SIGNING_KEY``, else
    unsigned); ``model_signing_key`` (ECDSA P-256) signs the merged folder. ``out`` must not
    exist or be an empty folder.
    """
    store, manifest_file = RunStore(output_dir).locate(ref)
    parent = _verified_parent(store, manifest_file)
    target = _check_out(Path(out)) if out is not None else None
    adapter_dir = _adapter_folder(store, parent)
    base_pin = _current_base(parent)

    started = utc_now()
    export_id = new_run_id()
    run_dir = store.run_dir(export_id)
    staging = run_dir / f".{MODEL_FOLDER}.partial"
    run_dir.mkdir(parents=True, exist_ok=False)
    try:
        diff, batch_hash = merge_adapter(base_pin, parent, adapter_dir, staging)
        model_dir = run_dir / MODEL_FOLDER
        staging.rename(model_dir)
        files = _folder_hashes(model_dir)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    manifest = _export_manifest(export_id, started, parent, base_pin, adapter_dir, files, diff, batch_hash)
    path = store.manifest_path(export_id)
    manifest.seal(signing_key).save(path)

    from provenir.governance.audit import AuditLogger

    audit = AuditLogger(store.audit_dir)
    audit.log(
        EXPORTED_EVENT,
        run_id=export_id,
        parent_run_id=parent.run_id,
        files=len(files),
        max_abs_diff=diff,
        adapter_hash=manifest.adapter_hash,
        manifest_hash=manifest.manifest_hash,
    )
    signature = None
    if model_signing_key is not None:
        from provenir.governance.model_signing import sign_after_training

        signature = sign_after_training(store, manifest, str(model_signing_key), audit)
    from provenir.governance.attestation import attest_if_configured, write_attestations

    # As after training: with a manifest signing key, signed SLSA provenance of the export.
    if signing_key is not None:
        write_attestations(store, export_id, Path(signing_key))
    else:
        attest_if_configured(store, export_id)
    if target is not None:
        _place(model_dir, target, files)
    return ExportResult(manifest, path, model_dir, target, diff, files, signature)


# -- checks before any work ---------------------------------------------------------------------


def _verified_parent(store: RunStore, manifest_file: Path) -> RunManifest:
    stored = store.open(manifest_file)
    if stored.manifest is None or not stored.verification.ok:
        problems = "; ".join(stored.verification.problems)
        raise ManifestError(f"{manifest_file.name} does not verify ({problems}): not exporting its model")
    parent = stored.manifest
    if parent.status != "completed":
        raise ConfigError(f"run {parent.run_id} did not complete ({parent.status}): nothing to export")
    if parent.relation == EXPORT_RELATION:
        raise ConfigError(f"run {parent.run_id} is already an export: its model folder is the merged model")
    if not parent.config.get("peft", {}).get("enabled", True):
        raise ConfigError(
            f"run {parent.run_id} trained every weight (no adapter): its model folder runs/{parent.run_id}/model "
            "loads with from_pretrained as it is, there is nothing to merge"
        )
    return parent


def _check_out(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} exists and is not an empty folder; choose a new folder")
    return out


def _adapter_folder(store: RunStore, parent: RunManifest) -> Path:
    from provenir.governance.model_signing import run_model_folder

    try:
        folder = run_model_folder(store, parent)
    except Exception as exc:  # ModelSignatureError: the run recorded no model folder
        raise ConfigError(f"run {parent.run_id}: {exc}") from None
    if not (folder / "adapter_config.json").is_file():
        raise ConfigError(
            f"run {parent.run_id}: {folder.name} holds no adapter_config.json: not a PEFT adapter"
        )
    return folder


def _current_base(parent: RunManifest) -> FileSetPin:
    """The base model pinned from disk now; refuses one that differs from what the run trained on."""
    from provenir.core.inputs import diff_file_sets
    from provenir.train.model_files import pin_model

    recorded = parent.inputs.model if parent.inputs is not None else None
    if recorded is None:
        raise ReproducibilityError(
            f"run {parent.run_id} did not pin its base model (schema-{parent.schema_version} manifest or a "
            "backend that loads none), so the base to merge into cannot be checked"
        )
    current = pin_model(parent.config["model_name_or_path"], parent.config.get("model_revision"))
    differences = diff_file_sets("model", recorded, current)
    if differences:
        raise ReproducibilityError(
            f"the base model differs from the one run {parent.run_id} trained on: " + "; ".join(differences)
        )
    return current


# -- merging ------------------------------------------------------------------------------------


def merge_adapter(
    base_pin: FileSetPin, parent: RunManifest, adapter_dir: Path, dest: Path
) -> tuple[float, str]:
    """Merge ``adapter_dir`` into the base, save to ``dest``, reload and compare logits.

    Returns ``(max_abs_diff, check_batch_sha256)``; raises :class:`ReproducibilityError` when the
    reloaded merged model's logits differ from base + adapter by more than :data:`LOGITS_TOLERANCE`.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from provenir.core.library_output import quiet_libraries
    from provenir.train.backends.trl_backend import load_tokenizer
    from provenir.train.model_files import model_folder

    base_folder = model_folder(base_pin.source, parent.config.get("model_revision"))
    with quiet_libraries(), torch.no_grad():
        tokenizer = load_tokenizer(str(adapter_dir))
        batch = tokenizer(list(CHECK_TEXTS), return_tensors="pt", padding=True)
        batch_hash = sha256_json(
            {"input_ids": batch["input_ids"].tolist(), "mask": batch["attention_mask"].tolist()}
        )
        base = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
        model = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
        expected = model(**batch).logits
        merged = model.merge_and_unload()
        merged.save_pretrained(dest, safe_serialization=True)
        tokenizer.save_pretrained(dest)
        del model, merged, base
        reloaded = AutoModelForCausalLM.from_pretrained(dest, dtype=torch.float32).eval()
        got = reloaded(**batch).logits
    mask = batch["attention_mask"].bool()
    diff = float((got - expected).abs()[mask].max())
    if not diff <= LOGITS_TOLERANCE:
        raise ReproducibilityError(
            f"the merged model's logits differ from base + adapter by up to {diff:.3g} on the check batch "
            f"(allowed {LOGITS_TOLERANCE:g}); the export was not kept"
        )
    return diff, batch_hash


# -- recording ----------------------------------------------------------------------------------


def _folder_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _export_manifest(
    export_id: str,
    started: str,
    parent: RunManifest,
    base_pin: FileSetPin,
    adapter_dir: Path,
    files: dict[str, str],
    diff: float,
    batch_hash: str,
) -> RunManifest:
    from provenir.core.environment import capture_environment, git_state
    from provenir.core.inputs import file_set_digest
    from provenir.train.torch_environment import capture_torch_environment

    outputs = {f"{MODEL_FOLDER}/{rel}": sha for rel, sha in files.items()}
    weights = next(
        (files[name] for name in ("model.safetensors", "model.safetensors.index.json") if name in files), None
    )
    run_dir = adapter_dir.parent
    adapter_files = {
        rel.removeprefix(f"{adapter_dir.name}/"): sha
        for rel, sha in parent.outputs.items()
        if rel.startswith(f"{adapter_dir.relative_to(run_dir).as_posix()}/")
    }
    git_sha, dirty = git_state()
    environment = capture_environment()
    environment["torch"] = capture_torch_environment()
    environment["device"] = "cpu"
    return RunManifest(
        run_id=export_id,
        name=f"{parent.name}-export",
        status="completed",
        backend=EXPORT_RELATION,
        algorithm=parent.algorithm,
        config_hash=parent.config_hash,
        dataset_hash=parent.dataset_hash,
        eval_dataset_hash=parent.eval_dataset_hash,
        git_sha=git_sha,
        git_dirty=dirty,
        seed=parent.seed,
        timestamp=started,
        finished_at=utc_now(),
        provenance=[*parent.provenance, parent.run_id],
        relation=EXPORT_RELATION,
        config=parent.config,
        data_path=parent.data_path,
        environment=environment,
        outputs=outputs,
        adapter_hash=weights,
        metrics={"logits_max_abs_diff": diff},
        extra={
            "export": {
                "merged": True,
                "dtype": "float32",
                "parent_manifest_hash": parent.manifest_hash,
                "base_model": base_pin.model_dump(mode="json"),
                "adapter": {"files": adapter_files, "digest": file_set_digest(adapter_files)},
                "logits_check": {
                    "texts": len(CHECK_TEXTS),
                    "batch_sha256": batch_hash,
                    "max_abs_diff": diff,
                    "tolerance": LOGITS_TOLERANCE,
                },
            }
        },
    )


def _place(model_dir: Path, target: Path, files: dict[str, str]) -> None:
    """Hard-link (else copy) every file of ``model_dir`` into ``target``; copies are hash-checked."""
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for rel, sha in files.items():
            src, dst = model_dir / rel, staging / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:  # another file system, or links not allowed: copy and check
                shutil.copyfile(src, dst)
                if sha256_file(dst) != sha:
                    raise ReproducibilityError(
                        f"copying {rel} to {target} changed it (hash differs)"
                    ) from None
        if target.exists():
            target.rmdir()  # checked empty before the export started
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
