"""The run driver: config -> data -> backend.fit -> hashed outputs -> sealed manifest.

Every backend goes through here, so every run, whatever trained it, leaves the same kind of
manifest: config and dataset hashes, environment, output hashes, metrics and status. A run that
fails still leaves a manifest (``status: failed`` and the error) so nothing disappears silently.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenir.core.abstractions import TrainData, TrainingBackend, TrainResult
from provenir.core.atomic import atomic_write_text
from provenir.core.config import RunConfig
from provenir.core.environment import capture_environment, git_state
from provenir.core.errors import (
    BackendError,
    ConfigError,
    ProvenirError,
    ReproducibilityError,
    RunInterrupted,
)
from provenir.core.hashing import sha256_file
from provenir.core.inputs import LongRows, RunInputs, diff_inputs
from provenir.core.library_output import quiet_libraries
from provenir.core.manifest import RunManifest, new_run_id, utc_now
from provenir.core.redaction import redact_then_truncate
from provenir.core.store import RunStore
from provenir.core.writable import ensure_writable_dir
from provenir.data.pinned_rows import EVAL_ROWS_FILE, TRAIN_ROWS_FILE, rows_pin, write_rows
from provenir.governance.attestation import attest_if_configured
from provenir.governance.audit import AuditLogger
from provenir.governance.model_signing import sign_after_training
from provenir.plugins.registry import PluginRegistry

#: Weight files, in order of preference, whose hash is the run's ``adapter_hash``.
WEIGHT_FILES = ("adapter_model.safetensors", "model.safetensors", "adapter_model.bin", "stub_adapter.bin")


@dataclass
class RunOptions:
    """Options of one invocation that are not part of the (hashed) config.

    ``resume``: ``True`` continues the newest unfinished run with the same config hash from its
    last checkpoint (``save_steps`` must have been set); a run id continues that run.
    ``expected_inputs``: the inputs a replay must find (``provenir reproduce``); any difference
    is a :class:`ReproducibilityError` before anything is written or trained.
    """

    provenance: list[str] | None = None
    relation: str | None = None
    run_id: str | None = None
    resume: bool | str = False
    backend: Any | None = None  # an already-built backend instance (tests, RLAIF callbacks)
    expected_inputs: RunInputs | None = None


def train(config: RunConfig, options: RunOptions | None = None) -> RunManifest:
    """Train one run and return its sealed, saved manifest.

    ``output_dir`` is checked for writing before any data is read. While this runs, the ML
    libraries' own logs, progress bars and warnings are silenced (see
    :mod:`provenir.core.library_output`); Provenir's progress and errors are not.

    Raises a :class:`~provenir.core.errors.ProvenirError` for anything the user can fix, and
    :class:`~provenir.core.errors.RunInterrupted` (a ``KeyboardInterrupt``) on Ctrl-C, once
    the run is marked failed; its message names the step and, when a checkpoint exists, the
    command that resumes the run.
    """
    ensure_writable_dir(config.output_dir)
    with quiet_libraries():
        return _train(config, options or RunOptions())


def _train(config: RunConfig, opts: RunOptions) -> RunManifest:
    if config.trainer_args:
        from provenir.train.trainer_args import check_trainer_args

        check_trainer_args(config)  # before any data is read or anything is written
    store = RunStore(config.output_dir)
    audit = AuditLogger(store.audit_dir)
    audit.check_ready()  # a torn or linked audit log stops the run here, before anything is written
    data = _load_data(config)
    scans = _scan(config, data)
    backend = opts.backend if opts.backend is not None else select_backend(config)
    previous = find_resumable(config, store, opts.resume, data.dataset_hash) if opts.resume else None
    inputs = pin_inputs(config, data, backend)
    if opts.expected_inputs is not None:
        differences = diff_inputs(opts.expected_inputs, inputs)
        if differences:
            raise ReproducibilityError("inputs differ from the original run: " + "; ".join(differences))
    if previous is not None and previous.inputs is not None:
        differences = diff_inputs(previous.inputs, inputs)
        if differences:
            raise ReproducibilityError(
                f"run {previous.run_id}: inputs changed since it started, cannot resume it: "
                + "; ".join(differences)
            )
    # After the checks above: a changed input is reported as such, not as whatever breaks in rendering.
    inputs.long_rows = measure_long_rows(config, data, backend, inputs.notes)
    run_id = previous.run_id if previous else (opts.run_id or new_run_id())
    rdir = store.run_dir(run_id)
    rdir.mkdir(parents=True, exist_ok=True)
    # The exact rows, stored once: every rank of a distributed run reads these, not the source.
    data.train_rows_pin = write_rows(rdir, TRAIN_ROWS_FILE, data.train)
    if data.eval is not None:
        data.eval_rows_pin = write_rows(rdir, EVAL_ROWS_FILE, data.eval)
    config.to_yaml(rdir / "config.yaml")
    git_sha, dirty = git_state()
    manifest = RunManifest(
        run_id=run_id,
        name=config.name,
        backend=config.backend,
        algorithm=config.algorithm,
        config_hash=config.config_hash(),
        dataset_hash=data.dataset_hash or "",
        eval_dataset_hash=data.eval_dataset_hash,
        git_sha=git_sha,
        git_dirty=dirty,
        seed=config.seed,
        provenance=list(opts.provenance or (previous.provenance if previous else [])),
        relation=opts.relation or (previous.relation if previous else None),
        config=config.model_dump(mode="json"),
        data_path=config.data.path,
        inputs=inputs,
        environment=capture_environment(),
        scans=scans,
        gate_spec_sha256=config.gate_spec_sha256(),  # the pre-registered gate, sealed before training
    )
    if data.contamination is not None:
        manifest.extra["contamination"] = data.contamination
    if previous is not None:
        manifest.timestamp = previous.timestamp  # the run started then; this is its continuation
    from provenir.train.tracking import build_tracker

    tracker = build_tracker(config, rdir)  # a missing tracking package fails here, before any manifest
    callbacks = _run_callbacks(config, data, tracker)  # so does an evaluation the data cannot support
    path = store.manifest_path(run_id)
    manifest.seal(config.manifest.signing_key_path).save(path)
    audit.log(
        "training_resumed" if previous else "training_started",
        run_id=run_id,
        name=config.name,
        backend=config.backend,
        algorithm=config.algorithm,
        config_hash=manifest.config_hash,
        dataset_hash=manifest.dataset_hash,
        scan_action=(scans or {}).get("action"),
    )
    # Handed to fit for this call only, when fit takes callbacks (TrainingBackend); else replayed below.
    streams = takes_callbacks(backend)
    if streams:
        log_recorder = _log_recorder(rdir)
        callbacks.append(log_recorder)
    else:
        log_recorder, callbacks = None, []
    try:
        if tracker is not None:
            tracker.start(config, run_id)
        result = call_fit(backend, config, data, rdir, callbacks)
    except BaseException as exc:
        step = log_recorder.step if log_recorder is not None else None
        interrupted = isinstance(exc, KeyboardInterrupt)
        # A second Ctrl-C while the failure is recorded would leave the manifest saying "running".
        with _sigint_ignored():
            manifest.status = "failed"
            if interrupted:
                at = f" at step {step}" if step is not None else ""
                manifest.error = f"KeyboardInterrupt: interrupted{at} (Ctrl-C)"
            else:
                manifest.error = redact_then_truncate(f"{type(exc).__name__}: {exc}", 2000)
            manifest.finished_at = utc_now()
            manifest.seal(config.manifest.signing_key_path).save(path)
            audit.log(
                "training_failed", run_id=run_id, error=manifest.error, manifest_hash=manifest.manifest_hash
            )
            with contextlib.suppress(Exception):  # the training error is the one to raise
                audit.checkpoint(config.manifest.signing_key_path, run_id=run_id)
            if tracker is not None:
                # Closing the tracker must not mask the training error being raised.
                with contextlib.suppress(Exception):
                    tracker.finish(manifest)
        if interrupted:
            raise _interrupted(store, run_id, step) from exc
        if isinstance(exc, ProvenirError):
            raise
        raise BackendError(f"run {run_id} failed: {manifest.error}") from exc  # redacted, like the record
    _record_result(manifest, result, rdir)
    # A tree head over the log so far, sealed in the manifest: removing or rewriting any record
    # up to this run's own is then detected (`provenir audit verify`).
    manifest.audit_checkpoint = audit.checkpoint(config.manifest.signing_key_path, run_id=run_id)
    manifest.status = "completed"
    manifest.finished_at = utc_now()
    manifest.seal(config.manifest.signing_key_path).save(path)
    if tracker is not None:
        if not streams:
            # The backend could not stream to the tracker (a plugin, or ranks under torchrun):
            # replay its log so every backend's curves reach the tracker alike.
            for entry in result.log_history:
                numbers = {
                    k: float(v) for k, v in entry.items() if isinstance(v, int | float) and k != "step"
                }
                if numbers:
                    tracker.log_metrics(numbers, step=int(entry.get("step", 0)))
        tracker.finish(manifest)
    audit.log(
        "training_completed",
        run_id=run_id,
        adapter_hash=manifest.adapter_hash,
        manifest_hash=manifest.manifest_hash,
        final_loss=manifest.metrics.get("final_loss"),
        resumed_from=manifest.resumed_from,
    )
    sign_after_training(store, manifest, config.manifest.model_signing_key_path, audit)
    # With a signing key: signed SLSA provenance next to the sealed manifest (and an audit event).
    attest_if_configured(store, run_id)
    # A tree head over everything this run recorded (completion, model signature, attestation).
    audit.checkpoint(config.manifest.signing_key_path, run_id=run_id)
    return manifest


def _run_callbacks(config: RunConfig, data: TrainData, tracker: Any) -> list[Any]:
    """Trainer callbacks this config asks for: live tracking and in-training evaluation."""
    callbacks: list[Any] = []
    if tracker is not None:
        from provenir.train.tracking_callback import TrackingCallback

        callbacks.append(TrackingCallback(tracker))
    every = config.eval.eval_every_n_steps
    if every is not None:
        if not data.eval:
            raise ConfigError(
                "eval.eval_every_n_steps needs eval data: set data.eval_path or data.eval_split"
            )
        if config.algorithm != "sft" or any("prompt" not in r for r in data.eval):
            raise ConfigError(
                "eval.eval_every_n_steps needs prompt/response eval rows (sft, not conversations or preferences)"
            )
        from provenir.eval.harness import MultiMetricEvaluator
        from provenir.train.eval_callback import EvalCallback, EvalCallbackConfig

        callbacks.append(
            EvalCallback(
                EvalCallbackConfig(
                    eval_every_n_steps=every,
                    # With loss evaluations the patience counts those (the backend's early stopping).
                    early_stopping_patience=(
                        None if config.eval.loss_every_n_steps else config.eval.early_stopping_patience
                    ),
                    regression_tolerance=config.eval.regression_tolerance,
                    max_new_tokens=config.eval.max_new_tokens,
                    template=config.data.template,
                ),
                MultiMetricEvaluator(config.eval.metrics, seed=config.seed),
                eval_dataset=data.eval,
            )
        )
    return callbacks


def _log_recorder(rdir: Path) -> Any:
    """The callback that streams ``train_log.jsonl`` while a Trainer runs."""
    from provenir.train.train_log import TRAIN_LOG, TrainLogCallback

    return TrainLogCallback(rdir / TRAIN_LOG)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C for the block (main thread only): the failure being recorded is raised after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted(store: RunStore, run_id: str, step: int | None) -> RunInterrupted:
    """The Ctrl-C report: where training stopped and, with a complete checkpoint, how to resume."""
    from provenir.train.checkpoints import MARKER_NAME

    rdir = store.run_dir(run_id)
    marked = sorted(
        (int(p.parent.name.rsplit("-", 1)[1]), p.parent.name)
        for p in (rdir / "checkpoints").glob(f"checkpoint-*/{MARKER_NAME}")
        if p.parent.name.rsplit("-", 1)[1].isdigit()
    )
    checkpoint = marked[-1][1] if marked else None
    # The stored config is the run's exact config (--set overrides included), so it resumes as is.
    command = (
        f"provenir train {rdir / 'config.yaml'} --resume-run {run_id}" if checkpoint is not None else None
    )
    return RunInterrupted(
        run_id=run_id,
        step=step,
        manifest_path=str(store.manifest_path(run_id)),
        checkpoint=checkpoint,
        resume_command=command,
    )


def measure_long_rows(config: RunConfig, data: TrainData, backend: Any, notes: list[str]) -> LongRows | None:
    """Ask the backend how many rows exceed ``max_length`` tokens, and say so on stderr.

    A backend measures rows when it has a ``long_rows(config, data)`` method (the ``trl``
    backend does); one that loads a model without it gets a note in ``inputs.notes``.
    """
    measure = getattr(backend, "long_rows", None)
    if measure is None and _is_launcher(backend):
        # Under torchrun every rank trains through the configured backend; measure with it here.
        measure = getattr(PluginRegistry.create("backend", config.backend), "long_rows", None)
    if not callable(measure):
        if getattr(backend, "loads_model", True):
            notes.append(f"long_rows: backend {config.backend!r} does not measure rows against max_length")
        return None
    long_rows: LongRows = measure(config, data)
    if long_rows.training_rows:
        why = "is longer than" if config.algorithm == "grpo" else "fills"
        print(
            f"{long_rows.training_rows} of {len(data.train)} training rows are longer than "
            f"max_length={long_rows.max_length} tokens: {long_rows.truncated} truncated to their first "
            f"{long_rows.max_length} tokens, {long_rows.dropped} dropped (the prompt alone {why} "
            "max_length); recorded in the manifest as inputs.long_rows",
            file=sys.stderr,
        )
    if long_rows.eval_rows:
        print(
            f"{long_rows.eval_rows} of {len(data.eval or [])} eval rows are longer than "
            f"max_length={long_rows.max_length} tokens; evaluation uses them whole",
            file=sys.stderr,
        )
    return long_rows


def _is_launcher(backend: Any) -> bool:
    """Whether ``backend`` is a launcher (torchrun, Ray Train) that :func:`select_backend` wraps around one."""
    from provenir.train.distributed import DistributedLauncher
    from provenir.train.ray_train import RayLauncher

    return isinstance(backend, DistributedLauncher | RayLauncher)


def _scan(config: RunConfig, data: TrainData) -> dict[str, Any] | None:
    """Scan (and mask, or refuse) the training and eval rows when ``data.scan`` asks for it.

    The summary's top level is the training rows' scan; ``eval`` holds the eval rows' scan.
    """
    if config.data.scan == "off":
        return None
    from provenir.governance.scanners import apply_scan_policy

    data.train, summary = apply_scan_policy(data.train, config.data.scan, what="training data")
    result = summary.to_dict()
    if data.eval:
        data.eval, eval_summary = apply_scan_policy(data.eval, config.data.scan, what="eval data")
        result["eval"] = eval_summary.to_dict()
    return result


def pin_inputs(config: RunConfig, data: TrainData, backend: Any) -> RunInputs:
    """Everything the run will consume, by content, derived before anything is written.

    The base model is pinned when the backend loads one (a backend sets ``loads_model = False``
    when it does not, like ``stub``); the chat template is pinned as it will render the rows.
    """
    notes: list[str] = []
    model_pin = None
    template = None
    if getattr(backend, "loads_model", True):
        from provenir.train.model_files import pin_model

        model_pin = pin_model(config.model_name_or_path, config.model_revision)
    else:
        notes.append(f"model: backend {config.backend!r} loads no model, so none was pinned")
    from provenir.data.templates import TEMPLATE_REGISTRY, TOKENIZER_TEMPLATE, template_pin

    if config.data.template == TOKENIZER_TEMPLATE:
        if model_pin is not None:
            from provenir.train.backends.trl_backend import load_tokenizer
            from provenir.train.model_files import model_folder

            folder = model_folder(config.model_name_or_path, config.model_revision)
            tokenizer = load_tokenizer(str(folder), config.model_revision)
            template = template_pin(
                TOKENIZER_TEMPLATE, TEMPLATE_REGISTRY.resolve(TOKENIZER_TEMPLATE, tokenizer)
            )
        else:
            notes.append("chat_template: the tokenizer's template is not pinned because no model is loaded")
    else:
        template = template_pin(config.data.template, TEMPLATE_REGISTRY.get(config.data.template))
    adapter_pin = None
    if config.init_adapter:
        from provenir.train.model_files import pin_adapter

        adapter_pin = pin_adapter(config.init_adapter)
    return RunInputs(
        model=model_pin,
        init_adapter=adapter_pin,
        chat_template=template,
        datasets=list(data.sources),
        training_rows=rows_pin(data.train, TRAIN_ROWS_FILE),
        eval_rows=rows_pin(data.eval, EVAL_ROWS_FILE) if data.eval is not None else None,
        notes=notes,
    )


def select_backend(config: RunConfig) -> Any:
    """The configured backend, behind a launcher: Ray Train's (``distributed.launcher: ray``), or
    torchrun's when more than one process trains."""
    if config.distributed.launcher == "ray":  # the config refuses it without a strategy
        from provenir.train.ray_train import RayLauncher, require_ray

        require_ray()
        PluginRegistry.get("backend", config.backend)
        return RayLauncher()
    if config.distributed.strategy != "none":
        from provenir.train.distributed import DistributedLauncher, plan_launch

        if plan_launch(config).world_size > 1:
            PluginRegistry.get("backend", config.backend)  # unknown names fail here, not on every rank
            return DistributedLauncher()
    return PluginRegistry.create("backend", config.backend)


def find_resumable(
    config: RunConfig, store: RunStore, resume: bool | str, data_hash: str | None
) -> RunManifest:
    """The unfinished run to continue; refuses if its config or dataset differ from now."""
    folder = store.manifests_dir
    if isinstance(resume, str):
        candidates = [RunManifest.load(store.manifest_path(resume))]
    else:
        candidates = []
        for p in folder.glob("*.json") if folder.is_dir() else []:
            try:
                m = RunManifest.load(p)
            except ProvenirError:
                continue
            if m.status != "completed" and m.config_hash == config.config_hash():
                candidates.append(m)
        if not candidates:
            raise ReproducibilityError(
                f"nothing to resume: no unfinished run with config hash {config.config_hash()[:16]}… in {folder}"
            )
    previous = max(candidates, key=lambda m: m.timestamp)
    previous.verify()
    if previous.status == "completed":
        raise ReproducibilityError(f"run {previous.run_id} already completed; nothing to resume")
    if previous.config_hash != config.config_hash():
        raise ReproducibilityError(
            f"run {previous.run_id} was started with a different config; cannot resume it"
        )
    if previous.dataset_hash != data_hash:
        raise ReproducibilityError(
            f"run {previous.run_id}: the dataset changed since it started; cannot resume it"
        )
    return previous


def takes_callbacks(backend: Any) -> bool:
    """Whether the backend's ``fit`` takes this run's Trainer callbacks (``callbacks=``)."""
    fit = getattr(backend, "fit", None)
    return callable(fit) and "callbacks" in inspect.signature(fit).parameters


def call_fit(
    backend: TrainingBackend,
    config: RunConfig,
    data: TrainData,
    rdir: Path,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Call ``fit`` with what it accepts of ``run_dir`` and ``callbacks`` (the seed's plugins take neither).

    ``callbacks`` are passed only to a ``fit`` with a ``callbacks`` parameter (see
    :class:`~provenir.core.abstractions.TrainingBackend`).
    """
    fit = getattr(backend, "fit", None)
    if not callable(fit):
        raise BackendError(f"backend {config.backend!r} has no fit() method")
    parameters = inspect.signature(fit).parameters
    kwargs: dict[str, Any] = {}
    if "run_dir" in parameters:
        kwargs["run_dir"] = rdir
    if "callbacks" in parameters:
        kwargs["callbacks"] = list(callbacks or [])
    result = fit(config, data, **kwargs)
    if not isinstance(result, TrainResult):
        raise BackendError(
            f"backend {config.backend!r} returned {type(result).__name__}, expected TrainResult"
        )
    return result


def _load_data(config: RunConfig) -> TrainData:
    from provenir.data.loading import load_train_data

    return load_train_data(config)


def _record_result(manifest: RunManifest, result: TrainResult, rdir: Path) -> None:
    log_path = rdir / "train_log.jsonl"
    # The backend's full log replaces the one streamed during training (train/train_log.py).
    atomic_write_text(log_path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in result.log_history))
    outputs: dict[str, str] = {}
    for base in [result.adapter_dir, log_path]:
        if base is None:
            continue
        files = [base] if base.is_file() else sorted(f for f in Path(base).rglob("*") if f.is_file())
        for f in files:
            rel = f.resolve().relative_to(rdir.resolve()).as_posix() if _inside(f, rdir) else str(f.resolve())
            outputs[rel] = sha256_file(f)
    manifest.outputs = outputs
    manifest.adapter_hash = next(
        (h for name in WEIGHT_FILES for rel, h in sorted(outputs.items()) if rel.endswith("/" + name)), None
    )
    metrics = {k: float(v) for k, v in result.metrics.items()}
    # Canonical JSON has no NaN/inf; a diverged loss is recorded by name instead of breaking the seal.
    manifest.metrics = {k: v for k, v in metrics.items() if math.isfinite(v)}
    non_finite = {k: str(v) for k, v in metrics.items() if not math.isfinite(v)}
    if non_finite:
        manifest.extra["non_finite_metrics"] = non_finite
    manifest.environment["device"] = result.device
    manifest.environment.update(result.environment)
    manifest.resumed_from = result.resumed_from
    manifest.selected_checkpoint = result.selected_checkpoint
    if manifest.inputs is not None:
        manifest.inputs.resumed_checkpoint = result.resumed_checkpoint
    if result.train_runtime_s is not None:
        manifest.metrics["train_runtime_s"] = round(result.train_runtime_s, 3)
    manifest.distributed = result.distributed
    manifest.extra.update(result.extra)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False
