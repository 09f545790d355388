"""The ``trl`` backend: real post-training with Hugging Face TRL + PEFT.

SFT trains on (templated prompt, response) pairs with loss on the response only; the
adapter is saved to ``<run_dir>/adapter``. torch, transformers, trl and peft are imported
inside :meth:`TRLBackend.fit`, so registering the backend costs nothing.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenir.core.abstractions import TrainData, TrainResult
from provenir.core.config import RunConfig
from provenir.core.errors import BackendError, ConfigError, DataError
from provenir.core.extras import check_extras
from provenir.core.inputs import LongRows
from provenir.core.library_output import quiet_libraries

# Rendering lives with the templates (render_row uses it; RLAIF still imports it from here).
from provenir.data.templates.rendering import template_pair, template_prompt

if TYPE_CHECKING:
    from provenir.core.selected_checkpoint import SelectedCheckpoint
    from provenir.train.checkpoints import ResumePoint


def resolve_device(config: RunConfig) -> str:
    """``cpu`` or ``cuda`` for this run; a clear error when CUDA is asked for but absent.

    ``distributed.num_gpus: 0`` means CPU: ``device: auto`` then trains on CPU even where a GPU
    is visible, and ``device: cuda`` contradicts it. The precision must be one torch can compute
    in on that device (:func:`check_precision`).
    """
    import torch

    if config.distributed.num_gpus == 0:
        if config.device == "cuda":
            raise ConfigError("device: cuda contradicts distributed.num_gpus: 0 (which means CPU); drop one")
        device = "cpu"
    elif config.device == "cuda" and not torch.cuda.is_available():
        raise BackendError("device: cuda requested but no CUDA GPU is visible to torch")
    elif config.device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        device = config.device
    check_precision(config, device)
    return device


def check_precision(config: RunConfig, device: str) -> None:
    """Refuse a reduced precision that torch cannot compute in on ``device`` (one line, before loading)."""
    if config.precision == "fp32":
        return
    from transformers.utils.import_utils import (
        is_torch_bf16_available_on_device,
        is_torch_fp16_available_on_device,
    )

    probe = (
        is_torch_bf16_available_on_device if config.precision == "bf16" else is_torch_fp16_available_on_device
    )
    if not probe(device):
        raise ConfigError(
            f"precision: {config.precision} is not supported by this torch build on {device}; use fp32"
            + (" or bf16" if config.precision == "fp16" and is_torch_bf16_available_on_device(device) else "")
        )


def precision_record(config: RunConfig, trainer: Any, device: str) -> dict[str, Any]:
    """What precision training actually ran in, for the manifest's ``environment.precision``.

    The base weights' dtype as loaded, the trainable (adapter) weights' dtype, the mixed
    precision the accelerator applied (``no``, ``bf16`` or ``fp16``) and, on CPU, whether the
    processor has native bf16 instructions (without them torch emulates bf16, slowly but
    correctly).
    """
    import torch

    model = trainer.model
    frozen = {str(p.dtype).removeprefix("torch.") for p in model.parameters() if not p.requires_grad}
    trained = {str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.requires_grad}
    record: dict[str, Any] = {
        "requested": config.precision,
        "device": device,
        "base_dtype": sorted(frozen),
        "trainable_dtype": sorted(trained),
        "mixed_precision": str(getattr(trainer.accelerator, "mixed_precision", "no")),
    }
    if device == "cpu":
        cpu = getattr(torch, "cpu", None)
        avx512_bf16 = getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
        amx = getattr(cpu, "_is_amx_tile_supported", lambda: False)()
        record["cpu_native_bf16"] = bool(avx512_bf16 or amx)
    return record


def load_tokenizer(model_path: str, revision: str | None = None) -> Any:
    """Tokenizer of ``model_path`` (at hub ``revision``) with a pad token (EOS when the model defines none)."""
    from transformers import AutoTokenizer

    try:
        with quiet_libraries():
            tokenizer = AutoTokenizer.from_pretrained(model_path, revision=revision)
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot load tokenizer for {model_path!r}: {str(exc).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(config: RunConfig) -> Any | None:
    """``BitsAndBytesConfig`` for QLoRA (NF4 + double quant) or 8-bit, else ``None``."""
    if not (config.peft.load_in_4bit or config.peft.load_in_8bit):
        return None
    import torch
    from transformers import BitsAndBytesConfig

    if config.peft.load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = torch.bfloat16 if config.precision == "bf16" else torch.float32
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def load_model(config: RunConfig, model_path: str, device: str) -> Any:
    """The base causal LM, quantised when the PEFT config asks for it."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[config.precision]
    kwargs: dict[str, Any] = {"dtype": dtype, "revision": config.model_revision}
    quant = quantization_config(config)
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": 0} if device == "cuda" else {"": "cpu"}
    try:
        with quiet_libraries():
            model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    except (OSError, ValueError) as exc:
        raise BackendError(
            f"cannot load model {config.model_name_or_path!r}: {str(exc).splitlines()[0]}"
        ) from None
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        with quiet_libraries():
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model


#: ``algorithm`` -> the name of its trainer class in ``trl``.
TRAINERS: dict[str, str] = {"sft": "SFTTrainer", "dpo": "DPOTrainer", "grpo": "GRPOTrainer"}


#: ``peft.init`` -> peft's ``init_lora_weights``.
_INIT_LORA_WEIGHTS: dict[str, bool | str] = {
    "default": True,
    "gaussian": "gaussian",
    "pissa": "pissa",
    "olora": "olora",
    "loftq": "loftq",
}

#: Inits that rewrite the base weights (W_res = W - scale * B0 @ A0), so the trained adapter is
#: saved converted to a plain LoRA on the original base (see :func:`save_adapter`).
BASE_MUTATING_INITS = frozenset({"pissa", "olora"})


def check_peft_init(config: RunConfig, device: str) -> None:
    """Refuse a ``peft`` combination that cannot train correctly here, with one line saying why."""
    p = config.peft
    if not p.enabled:
        return
    if config.init_adapter and (p.init != "default" or p.use_dora or p.modules_to_save):
        raise ConfigError(
            "peft.init, use_dora and modules_to_save shape a new adapter; init_adapter continues an existing "
            "one with its own settings: remove them or init_adapter"
        )
    if p.init in BASE_MUTATING_INITS and config.algorithm != "sft":
        # DPO's reference and GRPO's KL term are the base with the adapter disabled: W_res, not W.
        raise ConfigError(
            f"peft.init: {p.init} rewrites the base weights, so the adapter-disabled reference model of "
            f"{config.algorithm} would not be the base model; use it with sft, or another init"
        )
    if p.init == "loftq":
        if device != "cuda":
            # peft 0.21's loftq_init quantises on "cuda" (or XPU) unconditionally.
            raise ConfigError(
                "peft.init: loftq quantises the base weights with bitsandbytes on a CUDA GPU (peft 0.21), and "
                "this run is on cpu; on CPU use pissa, olora, gaussian or default"
            )
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError("peft.init: loftq needs bitsandbytes (pip install bitsandbytes)")


def lora_config(config: RunConfig) -> Any | None:
    """``peft.LoraConfig`` from the run's PEFT section (``None`` for full fine-tuning or a continued adapter)."""
    if not config.peft.enabled or config.init_adapter:
        return None
    from peft import LoftQConfig, LoraConfig

    p = config.peft
    return LoraConfig(
        r=p.rank,
        lora_alpha=p.alpha,  # type: ignore[arg-type]  # peft annotates int; a fractional alpha works
        lora_dropout=p.dropout,
        target_modules=p.target_modules if p.target_modules != ["all-linear"] else "all-linear",
        bias=p.bias,
        use_rslora=p.use_rslora,
        use_dora=p.use_dora,
        modules_to_save=list(p.modules_to_save) or None,
        # A trained copy of a tied lm_head/embedding must stay tied, or a merged export (which
        # keeps tie_word_embeddings) would silently drop it.
        ensure_weight_tying=bool(p.modules_to_save),
        init_lora_weights=_INIT_LORA_WEIGHTS[p.init],  # type: ignore[arg-type]
        loftq_config=LoftQConfig(loftq_bits=p.loftq_bits, loftq_iter=p.loftq_iter)
        if p.init == "loftq"
        else {},
        task_type="CAUSAL_LM",
    )


def peft_record(config: RunConfig) -> dict[str, Any]:
    """What the manifest records (``extra.peft``) about how the adapter was built and saved."""
    p = config.peft
    converted = p.init in BASE_MUTATING_INITS
    return {
        "init": p.init,
        "use_dora": p.use_dora,
        "modules_to_save": list(p.modules_to_save),
        # PiSSA/OLoRA trained against W_res = W - scale * B0 @ A0; the saved adapter is
        # [A | A0], [B | -B0]: rank 2r, applied to the original W.
        "base_weights_modified_in_training": converted,
        "saved_as": "lora converted to the original base (rank 2r)" if converted else "as trained",
        "saved_rank": 2 * p.rank if converted else p.rank,
    }


def save_initial_adapter(config: RunConfig, trainer: Any) -> Path | None:
    """Save a PiSSA/OLoRA adapter as initialised, before training, into a scratch folder.

    peft converts the trained adapter into a plain LoRA against the original base weights from
    the difference to this initial state (``path_initial_model_for_weight_conversion``). None
    for every other init, which leaves the base weights alone.
    """
    if (
        config.peft.init not in BASE_MUTATING_INITS
        or config.init_adapter
        or not trainer.is_world_process_zero()
    ):
        return None
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="provenir-peft-init-")) / "initial_adapter"
    with quiet_libraries():
        trainer.model.save_pretrained(folder)
    return folder


def save_adapter(trainer: Any, out: Path, initial: Path | None) -> None:
    """Save the trained adapter (or model) to ``out``; a PiSSA/OLoRA adapter converted to plain LoRA.

    The converted adapter has rank 2r and applies to the original base model, so everything that
    loads ``base + adapter`` (evaluation, export, another run's ``init_adapter``) sees the trained
    model without knowing how it was initialised.
    """
    if initial is None:
        trainer.model.save_pretrained(out)
        return
    import shutil

    try:
        trainer.model.save_pretrained(out, path_initial_model_for_weight_conversion=str(initial))
    finally:
        shutil.rmtree(initial.parent, ignore_errors=True)


def strip_auto_bos(text: str, tokenizer: Any) -> str:
    """Drop a leading BOS from rendered text when the tokenizer adds BOS by itself.

    TRL tokenizes plain-text prompts with special tokens on, so a template that writes BOS into
    the text (Llama 3's ``<|begin_of_text|>``, Mistral's ``<s>``) would otherwise train on two.
    Generation tokenizes the rendered text without special tokens, so both see exactly one BOS.
    """
    bos = getattr(tokenizer, "bos_token", None)
    if not bos or not text.startswith(bos):
        return text
    probe = tokenizer("a")["input_ids"]
    return text[len(bos) :] if probe and probe[0] == tokenizer.bos_token_id else text


def resume_point(run_dir: Path) -> ResumePoint:
    """Where this run continues: the newest complete checkpoint (see :mod:`provenir.train.checkpoints`).

    Unfinished checkpoints are reported (once, by rank 0) and moved out of Trainer's way.
    """
    from provenir.train.checkpoints import find_resume_checkpoint, set_aside

    point = find_resume_checkpoint(run_dir)
    if point.skipped and int(os.environ.get("RANK", "0")) == 0:
        for message, dest in zip(point.messages, set_aside(run_dir, point.skipped), strict=True):
            print(f"{message}; moved to {dest}", file=sys.stderr)
        if point.checkpoint is None:
            print("no complete checkpoint to resume from; training starts again from step 0", file=sys.stderr)
    return point


def common_args(config: RunConfig, run_dir: Path, device: str) -> dict[str, Any]:
    """TrainingArguments shared by every TRL trainer, derived from the RunConfig alone."""
    distributed: dict[str, Any] = {}
    if "LOCAL_RANK" in os.environ and config.distributed.strategy != "none":
        from provenir.train.distributed import trainer_distributed_args

        distributed = trainer_distributed_args(config, run_dir)
    return {
        **distributed,
        **schedule_args(config),
        "output_dir": str(run_dir / "checkpoints"),
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler_type,
        "warmup_steps": config.warmup_steps,
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "logging_steps": config.logging_steps,
        "gradient_checkpointing": config.gradient_checkpointing,
        "save_strategy": "steps" if config.save_steps else "no",
        "save_steps": config.save_steps or 500,
        "save_total_limit": config.save_total_limit,
        "seed": config.seed,
        "data_seed": config.seed,
        "full_determinism": True,
        "use_cpu": device == "cpu",
        "bf16": config.precision == "bf16",
        "fp16": config.precision == "fp16",
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def schedule_args(config: RunConfig) -> dict[str, Any]:
    """How long to train and when to compute the eval loss, as TrainingArguments."""
    from provenir.train.checkpoint_selection import greater_is_better

    args: dict[str, Any] = (
        {"max_steps": config.max_steps}
        if config.max_steps is not None
        else {"max_steps": -1, "num_train_epochs": config.num_train_epochs}
    )
    ev = config.eval
    args["per_device_eval_batch_size"] = config.batch_size
    if ev.loss_every_n_steps is not None:
        args.update(eval_strategy="steps", eval_steps=ev.loss_every_n_steps)
        if ev.load_best or ev.early_stopping_patience is not None:
            # Trainer tracks the best evaluation (so save_total_limit never deletes its checkpoint);
            # Provenir, not Trainer, loads it after verifying it (see checkpoint_selection).
            args.update(
                metric_for_best_model=ev.best_metric,
                greater_is_better=greater_is_better(ev.best_metric, ev.greater_is_better),
                load_best_model_at_end=False,
            )
    return args


def algorithm_args(config: RunConfig) -> dict[str, Any]:
    """The TRL config arguments of the run's algorithm section (``sft:``, ``dpo:``, ``grpo:``)."""
    if config.algorithm == "sft":
        sft = config.sft
        return {
            "max_length": config.max_length,
            # prompt/completion rows: TRL masks the prompt tokens (label -100) unless told otherwise.
            "completion_only_loss": sft.completion_only_loss,
            "loss_type": sft.loss_type,
            # Best-fit decreasing keeps every row whole and, with it, TRL trains padding-free on
            # per-row position_ids: attention never crosses from one row to the next.
            "packing": sft.packing,
            "packing_strategy": "bfd",
            "dataset_num_proc": None,
        }
    if config.algorithm == "dpo":
        dpo = config.dpo
        return {
            "max_length": config.max_length,
            "beta": dpo.beta,
            "loss_type": list(dpo.loss_type),
            "loss_weights": dpo.loss_weights,
            "label_smoothing": dpo.label_smoothing,
            "precompute_ref_log_probs": dpo.ref_model == "precompute",
        }
    grpo = config.grpo
    return {
        "beta": grpo.beta,
        "loss_type": grpo.loss_type,
        "num_generations": grpo.num_generations,
        "max_completion_length": grpo.max_completion_length,
        "reward_weights": grpo.reward_weights,
        "scale_rewards": grpo.scale_rewards,
        # Rewards read the `reference` column, so TRL must not drop it.
        "remove_unused_columns": False,
    }


def trl_args(config: RunConfig, run_dir: Path, device: str) -> Any:
    """TRL's config object for the run: common, schedule and section arguments plus ``trainer_args``."""
    from provenir.train.trainer_args import build_trl_config

    return build_trl_config(config, {**common_args(config, run_dir, device), **algorithm_args(config)})


def prepare_eval_rows(config: RunConfig, dataset: TrainData, tokenizer: Any) -> list[dict[str, Any]] | None:
    """The run's eval rows rendered exactly as the training rows are, when the eval loss is computed."""
    if config.eval.loss_every_n_steps is None:
        return None
    if not dataset.eval:
        raise ConfigError("eval.loss_every_n_steps needs eval rows: set data.eval_path or data.eval_split")
    as_training = TrainData(train=dataset.eval, schema=dataset.schema)
    try:
        return _prepare_rows(config, as_training, tokenizer).rows
    except DataError:
        raise DataError(
            f"every eval row's prompt alone is longer than max_length={config.max_length} tokens, so the eval "
            "loss has no token to score; raise max_length"
        ) from None


class TRLBackend:
    """SFT / DPO / GRPO through TRL trainers, with LoRA, QLoRA and rsLoRA through PEFT."""

    def __init__(self, callbacks: list[Any] | None = None, progress: bool = True) -> None:
        """``callbacks``: ``transformers.TrainerCallback`` objects attached to every ``fit``'s trainer."""
        # Fails before the run starts (no run id, no manifest) when torch & co. are not installed.
        check_extras("train")
        self.callbacks = list(callbacks or [])
        self.progress = progress
        # Rows rendered and measured by long_rows(), reused by the trainer built right after.
        self._prepared: tuple[tuple[Any, ...], PreparedRows] | None = None
        # A PiSSA/OLoRA adapter as initialised, for converting the trained one (save_adapter).
        self._initial_adapter: Path | None = None

    def long_rows(self, config: RunConfig, dataset: TrainData) -> LongRows:
        """Rows longer than ``max_length`` tokens and what training will do with them.

        The run driver calls this before anything is tokenized for training and records the
        answer in the manifest (``inputs.long_rows``). Raises :class:`DataError` when every
        training row would be dropped.
        """
        from provenir.train.model_files import model_folder

        # Called before the run starts: a device, precision or PEFT setting that cannot work
        # is refused here, before any manifest is written.
        check_peft_init(config, resolve_device(config))
        folder = model_folder(config.model_name_or_path, config.model_revision)
        tokenizer = load_tokenizer(str(folder), revision=config.model_revision)
        return self.prepare_rows(config, dataset, tokenizer).long_rows

    def prepare_rows(self, config: RunConfig, dataset: TrainData, tokenizer: Any) -> PreparedRows:
        """The training rows as TRL receives them: rendered, long ones cut short or left out."""
        # The cache holds the row lists themselves, so an identity match cannot be a reused id.
        key = (dataset.train, dataset.eval, config.config_hash())
        cached = self._prepared
        if (
            cached is not None
            and cached[0][0] is key[0]
            and cached[0][1] is key[1]
            and cached[0][2] == key[2]
        ):
            return cached[1]
        prepared = prepare_rows(config, dataset, tokenizer)
        self._prepared = (key, prepared)
        return prepared

    def build_trainer(
        self, config: RunConfig, dataset: TrainData, run_dir: Path, callbacks: Sequence[Any] = ()
    ) -> tuple[Any, Any, str]:
        """``(trainer, tokenizer, device)`` ready to ``train()``; seeds every RNG first.

        The trainer gets the backend's own ``callbacks`` and then this run's ``callbacks``.
        """
        with quiet_libraries():
            return self._build_trainer(config, dataset, run_dir, callbacks)

    def _build_trainer(
        self, config: RunConfig, dataset: TrainData, run_dir: Path, run_callbacks: Sequence[Any]
    ) -> tuple[Any, Any, str]:
        from provenir.train.model_files import model_folder
        from provenir.train.seed import set_seed

        set_seed(config.seed)
        device = resolve_device(config)
        check_peft_init(config, device)
        model_path = str(model_folder(config.model_name_or_path, config.model_revision))
        tokenizer = load_tokenizer(model_path, revision=config.model_revision)
        model = load_model(config, model_path, device)
        if config.init_adapter:
            from peft import PeftModel

            # Continue the given adapter; the trainer then gets no new peft_config.
            model = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
        if config.algorithm not in TRAINERS:
            raise BackendError(f"algorithm {config.algorithm!r} is not supported by the trl backend")
        rows = self.prepare_rows(config, dataset, tokenizer).rows
        self._prepared = None  # the trainer holds its own copy from here on
        eval_rows = prepare_eval_rows(config, dataset, tokenizer)
        # datasets sets up its logger and progress bars when first imported: import it (and
        # TRL, which uses it) before the quiet scope is re-applied around the trainer's setup.
        import datasets  # noqa: F401
        import trl  # noqa: F401

        with quiet_libraries():
            trainer = self._trainer(config, rows, run_dir, device, tokenizer, model, eval_rows=eval_rows)
        self._initial_adapter = save_initial_adapter(config, trainer)
        if (
            config.distributed.strategy == "fsdp"
            and "LOCAL_RANK" in os.environ
            and not trainer.is_fsdp_enabled
        ):
            raise BackendError(
                "distributed.strategy: fsdp requested but Trainer did not enable FSDP (no GPU?)"
            )
        callbacks = [*self.callbacks, *run_callbacks]
        if config.eval.loss_every_n_steps is not None and config.eval.early_stopping_patience is not None:
            from transformers import EarlyStoppingCallback

            callbacks.append(
                EarlyStoppingCallback(
                    early_stopping_patience=config.eval.early_stopping_patience,
                    early_stopping_threshold=config.eval.early_stopping_threshold,
                )
            )
        if config.save_steps:
            from provenir.train.checkpoints import CheckpointMarkerCallback

            # First, so that a callback stopping the process in on_save finds the checkpoint marked.
            callbacks.insert(0, CheckpointMarkerCallback())
        if self.progress:
            from transformers import PrinterCallback

            from provenir.train.progress import RichProgressCallback

            trainer.remove_callback(PrinterCallback)  # the progress bar shows the loss instead
            callbacks.append(RichProgressCallback(f"{config.algorithm} {config.name}"))
        for cb in callbacks:
            trainer.add_callback(cb)
        return trainer, tokenizer, device

    def fit(
        self, config: RunConfig, dataset: TrainData, run_dir: Path, *, callbacks: Sequence[Any] = ()
    ) -> TrainResult:
        """Train, save the adapter (or full model) under ``run_dir``, return metrics and logs.

        ``callbacks``: this run's ``transformers.TrainerCallback`` objects, attached to this
        call's trainer only (after the ones given to the constructor).
        """
        point = resume_point(run_dir)  # before loading the model: an altered checkpoint fails fast
        trainer, tokenizer, device = self.build_trainer(config, dataset, run_dir, callbacks)
        from provenir.train.torch_environment import capture_torch_environment

        # After the trainer is built: full_determinism has set torch's deterministic modes by now.
        torch_settings = capture_torch_environment()
        checkpoint = str(point.checkpoint) if point.checkpoint else None
        started, cpu_started = time.perf_counter(), time.process_time()
        with quiet_libraries():
            output = trainer.train(resume_from_checkpoint=checkpoint)
        runtime, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        selected = select_weights(config, trainer, run_dir)

        out = run_dir / ("adapter" if config.peft.enabled else "model")
        if trainer.is_world_process_zero():
            with quiet_libraries():
                save_adapter(trainer, out, self._initial_adapter)
                tokenizer.save_pretrained(out)
        losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        metrics = {
            "train_loss": float(output.training_loss),
            "global_step": float(trainer.state.global_step),
            "train_cpu_s": round(cpu, 3),
        }
        if losses:
            metrics["final_loss"] = float(losses[-1])
            metrics["first_loss"] = float(losses[0])
        extra: dict[str, Any] = {"world_size": trainer.args.world_size}
        if config.peft.enabled and not config.init_adapter:
            extra["peft"] = peft_record(config)
        return TrainResult(
            adapter_dir=out,
            metrics=metrics,
            log_history=list(trainer.state.log_history),
            device=device,
            resumed_from=point.pin.name if point.pin else None,
            resumed_checkpoint=point.pin,
            train_runtime_s=runtime,
            environment={"torch": torch_settings, "precision": precision_record(config, trainer, device)},
            # What torch.distributed actually ran with, not what was asked for.
            extra=extra,
            selected_checkpoint=selected,
        )

    # -- the trainer of each algorithm ------------------------------------------------------

    def _trainer(
        self,
        config: RunConfig,
        rows: list[dict[str, Any]],
        run_dir: Path,
        device: str,
        tokenizer: Any,
        model: Any,
        eval_rows: list[dict[str, Any]] | None = None,
    ) -> Any:
        """TRL's trainer of ``config.algorithm`` (a key of :data:`TRAINERS`) over ``rows``."""
        import trl
        from datasets import Dataset

        kwargs: dict[str, Any] = {
            "model": model,
            "args": trl_args(config, run_dir, device),
            "train_dataset": Dataset.from_list(rows),
            "processing_class": tokenizer,
            "peft_config": lora_config(config),
        }
        if config.algorithm == "grpo":
            from provenir.rewards.primitives import as_grpo_reward_func

            # GRPO is given no eval_dataset; its rewards are callables of TRL's batch signature.
            kwargs["reward_funcs"] = [as_grpo_reward_func(name, name=name) for name in config.grpo.rewards]
        else:
            # DPO: with a PEFT adapter and no ref_model, TRL uses the base model (adapter disabled)
            # as reference.
            kwargs["eval_dataset"] = Dataset.from_list(eval_rows) if eval_rows is not None else None
        return getattr(trl, TRAINERS[config.algorithm])(**kwargs)


def select_weights(config: RunConfig, trainer: Any, run_dir: Path) -> SelectedCheckpoint:
    """Which weights become the adapter; with ``eval.load_best`` the best checkpoint's are loaded first."""
    from provenir.train.checkpoint_selection import (
        best_checkpoint,
        greater_is_better,
        last_step_selection,
        load_checkpoint_weights,
    )

    state = trainer.state
    stopped_early = state.global_step < state.max_steps
    ev = config.eval
    if not ev.load_best:
        metric = ev.best_metric if ev.loss_every_n_steps is not None else None
        return last_step_selection(state.log_history, state.global_step, stopped_early, metric)
    # Rank 0 marks the last checkpoint complete after the others passed on_save: wait for it.
    trainer.accelerator.wait_for_everyone()
    folder, selected = best_checkpoint(
        run_dir,
        state.log_history,
        ev.best_metric,
        greater_is_better(ev.best_metric, ev.greater_is_better),
        stopped_early,
    )
    with quiet_libraries():
        load_checkpoint_weights(trainer.model, folder)
    return selected


# -- rows as TRL receives them ---------------------------------------------------------------


@dataclass
class PreparedRows:
    """Training rows rendered for TRL (long ones cut short or left out) and their count."""

    rows: list[dict[str, Any]]
    long_rows: LongRows


def _with_eos(text: str, eos: str | None) -> str:
    # TRL appends EOS to a completion that lacks it; doing it here first makes the measured
    # text exactly the text TRL tokenizes.
    return text if not eos or text.endswith(eos) else text + eos


def render_row(config: RunConfig, tokenizer: Any, row: dict[str, Any]) -> tuple[str, list[str]]:
    """``(prompt, completions)`` of one canonical row as TRL receives it (GRPO: no completions)."""
    from provenir.data.templates import TEMPLATE_REGISTRY

    template = config.data.template
    if config.algorithm == "grpo" or (
        "response" not in row and "chosen" not in row and "messages" not in row
    ):
        return strip_auto_bos(template_prompt(template, tokenizer, row), tokenizer), []
    eos = getattr(tokenizer, "eos_token", None)
    if "messages" in row:
        # Conversation: everything before the final assistant turn is the prompt.
        resolved = TEMPLATE_REGISTRY.resolve(template, tokenizer)
        prompt, completion = TEMPLATE_REGISTRY.split(resolved, {"messages": row["messages"]})
        return strip_auto_bos(prompt, tokenizer), [_with_eos(completion, eos)]
    if "chosen" in row:
        prompt, chosen = template_pair(template, tokenizer, row, row["chosen"])
        _, rejected = template_pair(template, tokenizer, row, row["rejected"])
        return strip_auto_bos(prompt, tokenizer), [_with_eos(chosen, eos), _with_eos(rejected, eos)]
    prompt, completion = template_pair(template, tokenizer, row, row["response"])
    return strip_auto_bos(prompt, tokenizer), [_with_eos(completion, eos)]


def row_fate(config: RunConfig, tokenizer: Any, prompt: str, completions: list[str]) -> tuple[str, list[str]]:
    """What training does with a rendered row: ``fits``, ``truncated`` or ``dropped`` (see long_rows)."""
    from provenir.train.long_rows import fit_completions, longer_than

    if not completions:  # GRPO: TRL would generate from the whole prompt, so a long one is left out
        return ("dropped" if longer_than(tokenizer, prompt, config.max_length) else "fits"), []
    return fit_completions(tokenizer, prompt, completions, config.max_length)


def prepare_rows(config: RunConfig, dataset: TrainData, tokenizer: Any) -> PreparedRows:
    """Render every training row, measure it against ``max_length`` and keep what TRL will train on.

    Only bounded prefixes of long texts are tokenized (:mod:`provenir.train.long_rows`), so a
    10 MB row costs about what a ``max_length`` row costs.
    """
    with quiet_libraries():  # measuring prefixes longer than the model's limit makes transformers warn
        return _prepare_rows(config, dataset, tokenizer)


def all_turns(config: RunConfig, tokenizer: Any) -> bool:
    """Whether SFT rows train on every assistant turn (``data.train_on_turns: all``), checked first."""
    if config.data.train_on_turns != "all":
        return False
    if config.algorithm != "sft":
        raise ConfigError(
            f"data.train_on_turns: all applies to SFT conversations; {config.algorithm} trains on its own "
            "prompt/answer pairs, so remove it"
        )
    from provenir.data.templates import TOKENIZER_TEMPLATE
    from provenir.train.turns import check_tokenizer_masks

    if config.data.template == TOKENIZER_TEMPLATE:
        check_tokenizer_masks(tokenizer)
    return True


def _prepare_rows(config: RunConfig, dataset: TrainData, tokenizer: Any) -> PreparedRows:
    from provenir.train.long_rows import LongRowTally
    from provenir.train.turns import all_turns_row, conversation_text, row_messages

    every_turn = all_turns(config, tokenizer)
    tally = LongRowTally()
    rows: list[dict[str, Any]] = []
    for position, source in enumerate(dataset.train, start=1):
        if every_turn:
            # Measured as (text before the first assistant turn, the rest): what TRL keeps of it.
            messages = row_messages(source)
            prompt, rest = conversation_text(config.data.template, tokenizer, messages)
            completions = [rest]
        else:
            prompt, completions = render_row(config, tokenizer, source)
        fate, completions = row_fate(config, tokenizer, prompt, completions)
        tally.add(position, fate)  # type: ignore[arg-type]
        if fate == "dropped":
            continue
        row: dict[str, Any]
        if config.algorithm == "grpo":
            row = {"prompt": prompt}
            if "reference" in source:
                row["reference"] = source["reference"]
        elif config.algorithm == "dpo":
            row = {"prompt": prompt, "chosen": completions[0], "rejected": completions[1]}
        elif every_turn:
            clipped = prompt + completions[0] if fate == "truncated" else None
            row = all_turns_row(config.data.template, tokenizer, messages, clipped)
        else:
            row = {"prompt": prompt, "completion": completions[0]}
        rows.append(row)
    if not rows:
        what = "prompt" if config.algorithm == "grpo" else "prompt alone"
        raise DataError(
            f"every training row's {what} is longer than max_length={config.max_length} tokens, so no "
            "row is left to train on; raise max_length"
        )
    eval_long: int | None = None
    if dataset.eval is not None:
        eval_long = 0
        for source in dataset.eval:
            prompt, completions = render_row(config, tokenizer, source)
            if row_fate(config, tokenizer, prompt, completions)[0] != "fits":
                eval_long += 1
    long_rows = LongRows(
        max_length=config.max_length,
        training_rows=tally.long,
        truncated=tally.truncated,
        dropped=tally.dropped,
        eval_rows=eval_long,
        first_training_rows=tally.positions,
    )
    return PreparedRows(rows=rows, long_rows=long_rows)
