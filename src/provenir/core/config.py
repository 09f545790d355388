"""RunConfig: the one typed, validated description of a training job.

Precedence is ``defaults < YAML file < --set overrides``::

    from provenir.core.config import RunConfig, PEFTConfig

    config = RunConfig.from_yaml("my_run.yaml")
    config = RunConfig(name="my-run", model_name_or_path="meta-llama/Llama-3.2-1B",
                       peft=PEFTConfig(rank=16, alpha=32))

Validation is strict: an unknown key or a value of the wrong type is a :class:`ConfigError`
whose one-line message names the field path (``peft.rank: must be > 0``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from provenir.core.errors import ConfigError
from provenir.core.hashing import sha256_json
from provenir.core.store import default_output_dir
from provenir.core.yaml_loading import load_yaml

#: The built-in offline model: a small Llama plus a BPE tokenizer built deterministically
#: from a bundled corpus (see :mod:`provenir.train.tiny_model`).
TINY_MODEL_ID = "provenir/tiny-llama"

#: The bundled sample SFT dataset, resolved by :func:`provenir.data.loading.resolve_data_path`.
SAMPLE_SFT_DATA = "builtin:sft-sample"


class ConfigSection(BaseModel):
    """Base of every Provenir config (run, RLAIF, flywheel): strict, with one-line errors.

    Strict: ``"16"`` is not silently an int and ``1.5`` is not silently truncated; an unknown
    key is an error.
    """

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Validate a plain mapping, turning pydantic's errors into one :class:`ConfigError`."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc)) from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], overrides: list[str] | None = None) -> Self:
        """Load a YAML file, apply ``--set key.path=value`` overrides, and validate."""
        data = read_yaml_mapping(path)
        if overrides:
            data = apply_overrides(data, overrides)
        return cls.from_dict(data)


class PEFTConfig(ConfigSection):
    """LoRA / QLoRA / rsLoRA adapter settings (passed to ``peft.LoraConfig``)."""

    enabled: bool = Field(True, description="Train a LoRA adapter; false trains every weight.")
    rank: int = Field(16, gt=0, description="LoRA rank r.")
    alpha: float = Field(
        32, gt=0, description="LoRA alpha; the update is scaled by alpha/r (alpha/sqrt(r) with rsLoRA)."
    )
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "v_proj"],
        min_length=1,
        description="Names of the modules that receive adapters ('all-linear' is accepted by peft).",
    )
    bias: Literal["none", "all", "lora_only"] = Field("none", description="Which biases are trained.")
    load_in_4bit: bool = Field(
        False, description="QLoRA: load the base model in 4-bit NF4 with double quantisation."
    )
    load_in_8bit: bool = Field(False, description="Load the base model in 8-bit (LLM.int8).")
    use_rslora: bool = Field(False, description="rsLoRA: scale by alpha/sqrt(r) instead of alpha/r.")
    use_dora: bool = Field(
        False,
        description="DoRA: split each adapted weight into a trained magnitude vector and a LoRA-updated "
        "direction (peft's use_dora); slower per step than plain LoRA.",
    )
    modules_to_save: list[str] = Field(
        default_factory=list,
        description="Modules trained in full and saved in the adapter besides the LoRA matrices (e.g. "
        "lm_head, embed_tokens); a name matches every module whose name ends with it, as in peft.",
    )
    init: Literal["default", "gaussian", "pissa", "olora", "loftq"] = Field(
        "default",
        description="LoRA initialisation: default (B = 0), gaussian, pissa or olora (both move the top "
        "singular/QR directions of each base weight into the adapter; the saved adapter is converted to a "
        "plain LoRA on the original base), or loftq (needs CUDA and bitsandbytes). SFT only for pissa/olora.",
    )
    loftq_bits: Literal[4, 8] = Field(4, description="init: loftq: bits the base weights are quantised to.")
    loftq_iter: int = Field(1, gt=0, description="init: loftq: alternating quantise/SVD iterations.")

    @model_validator(mode="after")
    def _one_quantisation(self) -> PEFTConfig:
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("load_in_4bit and load_in_8bit are mutually exclusive")
        if (self.load_in_4bit or self.load_in_8bit) and not self.enabled:
            raise ValueError("a quantised base model can only be trained through an adapter (enabled: true)")
        return self

    @model_validator(mode="after")
    def _adapter_options(self) -> PEFTConfig:
        if not self.enabled:
            used = [
                name
                for name, on in (
                    ("use_dora", self.use_dora),
                    ("modules_to_save", bool(self.modules_to_save)),
                    ("init", self.init != "default"),
                )
                if on
            ]
            if used:
                raise ValueError(f"{', '.join(used)} apply to an adapter; set enabled: true or remove them")
        if self.init in ("pissa", "olora"):
            # peft's conversion to a plain LoRA on the original base keeps only lora_A/lora_B: a
            # DoRA magnitude, a trained module or bias would be silently dropped from the adapter.
            kept_out = [
                name
                for name, on in (
                    ("use_dora", self.use_dora),
                    ("modules_to_save", bool(self.modules_to_save)),
                    (f"bias: {self.bias}", self.bias != "none"),
                )
                if on
            ]
            if kept_out:
                raise ValueError(
                    f"init: {self.init} cannot be combined with {', '.join(kept_out)}: the adapter is saved "
                    "converted to a plain LoRA on the original base, which keeps only the LoRA matrices"
                )
        if self.init in ("pissa", "loftq") and (self.load_in_4bit or self.load_in_8bit):
            raise ValueError(
                f"init: {self.init} starts from the full-precision base weights (loftq quantises them "
                "itself); remove load_in_4bit/load_in_8bit"
            )
        return self


class DistributedConfig(ConfigSection):
    """How many processes train, and how they talk to each other.

    Several nodes meet through torchrun's c10d rendezvous: one node runs ``provenir train`` (it
    writes the manifest), the others join that run (``python -m provenir.train.join``). Under
    Slurm or SkyPilot the node count, rendezvous host and id come from the job's environment
    when they are not set here (see :mod:`provenir.train.rendezvous`).
    """

    strategy: Literal["fsdp", "deepspeed", "ddp", "none"] = Field(
        "none", description="Data-parallel strategy."
    )
    num_gpus: int = Field(
        1, ge=0, description="GPUs (one process each) per node; 0 means train on CPU (device: auto or cpu)."
    )
    num_processes: int | None = Field(
        None, gt=0, description="Processes per node; defaults to num_gpus. With device: cpu they use gloo."
    )
    nnodes: int | str | None = Field(
        None,
        description="Nodes: a number, or 'MIN:MAX' for an elastic job that starts once MIN nodes have "
        "joined and admits up to MAX. Unset: from Slurm/SkyPilot, else 1.",
    )
    rdzv_endpoint: str | None = Field(
        None,
        description="host:port of the c10d rendezvous, on a node every node can reach. Unset: the first "
        "host of the Slurm/SkyPilot job, port 29400. Not part of config_hash.",
    )
    rdzv_id: str | None = Field(
        None,
        description="Rendezvous id shared by the nodes of one job. Unset: the Slurm job id or SkyPilot task "
        "id, else one derived from the run id (two jobs never join each other). Not part of config_hash.",
    )
    rdzv_backend: Literal["c10d"] = Field(
        "c10d", description="torchrun rendezvous backend. Not part of config_hash."
    )
    rdzv_join_timeout_s: int = Field(
        600,
        gt=0,
        description="Seconds a node waits for the others to join before giving up. Not part of config_hash.",
    )
    max_restarts: int = Field(
        0,
        ge=0,
        description="Times torchrun restarts every worker after a failure (from the last checkpoint when "
        "save_steps is set). Not part of config_hash.",
    )
    num_nodes: int = Field(1, gt=0, description="Deprecated: use nnodes.")
    node_rank: int = Field(0, ge=0, description="Deprecated and ignored: the rendezvous assigns node ranks.")
    master_addr: str = Field("127.0.0.1", description="Deprecated: use rdzv_endpoint (host:port).")
    master_port: int = Field(29500, gt=0, lt=65536, description="Deprecated: use rdzv_endpoint (host:port).")
    deepspeed_stage: Literal[1, 2, 3] = Field(2, description="ZeRO stage when strategy is deepspeed.")

    @field_validator("nnodes")
    @classmethod
    def _nnodes_form(cls, value: int | str | None) -> int | str | None:
        if value is not None:
            parse_nnodes(value)
        return value

    @field_validator("rdzv_endpoint")
    @classmethod
    def _endpoint_form(cls, value: str | None) -> str | None:
        if value is not None:
            parse_endpoint(value)
        return value

    @field_validator("rdzv_id")
    @classmethod
    def _rdzv_id_form(cls, value: str | None) -> str | None:
        if value is not None and not _RDZV_ID.fullmatch(value):
            raise ValueError("use letters, digits and . _ : - (at most 128 characters)")
        return value

    @model_validator(mode="after")
    def _one_way_to_say_it(self) -> DistributedConfig:
        legacy_nodes = (self.num_nodes, self.num_nodes)
        if self.nnodes is not None and self.num_nodes != 1 and parse_nnodes(self.nnodes) != legacy_nodes:
            raise ValueError(
                f"nnodes {self.nnodes!r} and the deprecated num_nodes {self.num_nodes} disagree; set only nnodes"
            )
        if self.rdzv_endpoint is not None and (
            self.master_addr != _LEGACY_ADDR or self.master_port != _LEGACY_PORT
        ):
            raise ValueError(
                "rdzv_endpoint and the deprecated master_addr/master_port are both set; keep rdzv_endpoint only"
            )
        if self.strategy == "none" and self.max_nodes > 1:
            raise ValueError("training on several nodes needs a strategy (ddp, fsdp or deepspeed)")
        return self

    @property
    def max_nodes(self) -> int:
        """The most nodes this config asks for (nnodes, else the deprecated num_nodes)."""
        return parse_nnodes(self.nnodes)[1] if self.nnodes is not None else self.num_nodes

    def deprecated_fields(self) -> list[str]:
        """The deprecated fields this config sets (differ from their defaults), in declaration order."""
        defaults = {"num_nodes": 1, "node_rank": 0, "master_addr": _LEGACY_ADDR, "master_port": _LEGACY_PORT}
        return [name for name, value in defaults.items() if getattr(self, name) != value]

    @model_serializer(mode="wrap")
    def _omit_unset_rendezvous(self, handler: SerializerFunctionWrapHandler):
        # Configs written before these fields existed keep their dump, hence their config_hash.
        # No return annotation: pydantic would take it for the serialised schema (losing the fields).
        data: dict[str, Any] = handler(self)
        for name, default in _RENDEZVOUS_DEFAULTS.items():
            if name in data and getattr(self, name) == default:
                del data[name]
        return data


_LEGACY_ADDR, _LEGACY_PORT = "127.0.0.1", 29500
_RDZV_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_NNODES = re.compile(r"^([1-9][0-9]*)(?::([1-9][0-9]*))?$")
#: Rendezvous fields left out of the config's dump while they hold these values.
_RENDEZVOUS_DEFAULTS: dict[str, Any] = {
    "nnodes": None,
    "rdzv_endpoint": None,
    "rdzv_id": None,
    "rdzv_backend": "c10d",
    "rdzv_join_timeout_s": 600,
    "max_restarts": 0,
}


def parse_nnodes(value: int | str) -> tuple[int, int]:
    """``2`` -> ``(2, 2)``, ``"1:4"`` -> ``(1, 4)``; a ``ValueError`` for anything else."""
    if isinstance(value, int):
        if value < 1:
            raise ValueError("must be >= 1")
        return value, value
    match = _NNODES.fullmatch(value.strip())
    if match is None:
        raise ValueError("expected a number of nodes or MIN:MAX, like 2 or 1:4")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if low > high:
        raise ValueError("MIN is larger than MAX")
    return low, high


def parse_endpoint(value: str) -> tuple[str, int]:
    """``"10.0.0.1:29400"`` -> ``("10.0.0.1", 29400)`` (``[::1]:29400`` for IPv6); ``ValueError`` otherwise."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected host:port, like 10.0.0.1:29400")
    return host.removeprefix("[").removesuffix("]"), int(port)


class DataSourceConfig(ConfigSection):
    """One source of a data mixture (``data.sources``)."""

    path: str = Field(
        min_length=1, description="JSONL/JSON/CSV/Parquet file, folder, hub id, or 'builtin:<name>'."
    )
    weight: float = Field(1.0, gt=0, description="Relative sampling weight in the mixture.")
    split: str | None = Field(None, description="Hub datasets: the split to read (default 'train').")
    revision: str | None = Field(None, description="Hub datasets: branch, tag or commit to read.")
    config: str | None = Field(None, description="Hub datasets: the configuration (subset) name.")
    max_samples: int | None = Field(None, gt=0, description="Use only the first N rows of this source.")


class DataConfig(ConfigSection):
    """Where the training data is and which columns hold what."""

    path: str | None = Field(
        SAMPLE_SFT_DATA,
        description="JSONL/JSON/CSV/Parquet file, folder, hub id, or 'builtin:<name>'. Unset when "
        "`sources` is given.",
    )
    sources: list[DataSourceConfig] = Field(
        default_factory=list,
        description="A weighted mixture of sources instead of `path`: rows are interleaved by a seeded "
        "weighted draw until the first source runs out; the realised mix is what trains.",
    )
    eval_path: str | None = Field(
        None, description="Held-out evaluation data; defaults to a split of `path`."
    )
    eval_split: float = Field(
        0.0, ge=0, lt=1, description="Fraction of `path` held out for evaluation when eval_path is unset."
    )
    template: str = Field(
        "alpaca", description="Prompt template name (see `provenir templates list`) or 'tokenizer'."
    )
    prompt_field: str = Field("prompt", description="Column holding the prompt / instruction.")
    response_field: str = Field("response", description="Column holding the reference response (SFT).")
    system_field: str | None = Field(None, description="Column holding a per-row system prompt.")
    chosen_field: str = Field("chosen", description="Column holding the preferred response (DPO).")
    rejected_field: str = Field("rejected", description="Column holding the dispreferred response (DPO).")
    messages_field: str = Field(
        "messages",
        description="SFT: column holding a multi-turn conversation (role/content list) when there is no "
        "prompt/response pair; which assistant turns carry the loss is set by train_on_turns.",
    )
    train_on_turns: Literal["last", "all"] = Field(
        "last",
        description="SFT conversations: loss on the final assistant turn only (last) or on every assistant "
        "turn (all), everything else masked. With template: tokenizer, all uses the tokenizer's own "
        "assistant mask and needs {% generation %} markers in its chat template.",
    )
    max_samples: int | None = Field(None, gt=0, description="Use only the first N rows (after loading).")
    contamination_check: Literal["off", "warn", "refuse"] = Field(
        "off",
        description="Before training, look for eval rows whose n-grams occur in the training rows: "
        "off, warn (log and go on) or refuse (stop with an error). Needs eval data (eval_path or eval_split).",
    )
    contamination_ngram: int = Field(
        13,
        ge=1,
        description="Words per n-gram for the contamination check (13 as in GPT-3's decontamination); "
        "rows with no field this long are compared whole.",
    )
    contamination_near_dup: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Also flag eval rows whose word set has at least this Jaccard similarity (e.g. 0.8) with "
        "a training row, found by MinHash LSH (128 seeded permutations, deterministic) and verified exactly. "
        "None: off. Needs the dedup extra (datasketch).",
    )
    scan: Literal["off", "report", "mask", "refuse"] = Field(
        "off",
        description="PII and secret scan of the training and eval rows before training: record findings in "
        "the manifest (report), replace them with typed placeholders (mask), or stop (refuse).",
    )

    @model_validator(mode="after")
    def _path_or_sources(self) -> DataConfig:
        if self.sources:
            if "path" in self.model_fields_set and self.path is not None:
                raise ValueError("set either path or sources, not both")
            if self.path is not None:
                # Bypass validate_assignment: the default path only stands for "no sources given".
                object.__setattr__(self, "path", None)
        elif self.path is None:
            raise ValueError("path is required when no sources are given")
        return self


class EvalConfig(ConfigSection):
    """Evaluation during and after training."""

    metrics: list[str] = Field(
        default_factory=lambda: ["exact_match", "token_f1"], description="Metric names."
    )
    eval_every_n_steps: int | None = Field(
        None,
        gt=0,
        description="SFT: generate and score the eval data every N steps during training (needs eval data).",
    )
    max_new_tokens: int = Field(32, gt=0, description="Tokens generated per eval prompt.")
    early_stopping_patience: int | None = Field(
        None, gt=0, description="Stop after N evaluations without improvement."
    )
    regression_tolerance: float = Field(
        0.02, ge=0, description="Allowed drop before the regression gate trips."
    )


class ManifestConfig(ConfigSection):
    """How the run manifest is sealed."""

    signing_key_path: str | None = Field(
        None,
        description="Ed25519 private key (PEM) used to sign the manifest; env PROVENIR_SIGNING_KEY also works.",
    )
    model_signing_key_path: str | None = Field(
        None,
        description="ECDSA P-256 private key (PEM) that signs the adapter (or model) folder with OpenSSF "
        "model-signing at the end of training, into <run folder>/model.sig; Ed25519 keys are refused "
        "(`provenir manifest keygen KEY --algorithm ecdsa-p256`). Not part of config_hash.",
    )


#: Left out of ``config_hash``: where artifacts go, which key signs the model folder and where
#: the nodes meet do not change what is trained (and a config written before a field existed
#: keeps its hash).
_NOT_HASHED: dict[str, Any] = {
    "output_dir": True,
    "manifest": {"model_signing_key_path": True},
    "distributed": {
        name: True
        for name in ("rdzv_endpoint", "rdzv_id", "rdzv_backend", "rdzv_join_timeout_s", "max_restarts")
    },
}


class RunConfig(ConfigSection):
    """Every aspect of a training job. See the module docstring for the precedence rules."""

    name: str = Field(
        "provenir-run", min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Run name."
    )
    backend: str = Field(
        "trl", min_length=1, description="Training backend: trl | stub | a registered plugin."
    )
    algorithm: Literal["sft", "dpo", "grpo"] = Field("sft", description="Post-training algorithm.")
    seed: int = Field(
        42, ge=0, description="Seed for every RNG (python, numpy, torch, data order, LoRA init)."
    )
    model_name_or_path: str = Field(
        TINY_MODEL_ID, min_length=1, description="Local path, hub id, or the built-in tiny model."
    )
    model_revision: str | None = Field(
        None,
        description="Hub models: branch, tag or commit to load (passed to from_pretrained); the resolved "
        "commit is recorded in the manifest.",
    )
    init_adapter: str | None = Field(
        None,
        description="Continue training this PEFT adapter folder instead of a fresh LoRA (RLAIF iterations).",
    )
    output_dir: str = Field(
        default_factory=default_output_dir,
        min_length=1,
        description="Root folder for runs and manifests (default: $PROVENIR_OUTPUT_DIR, else artifacts).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to train.")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="Training precision.")

    max_steps: int = Field(100, gt=0, description="Optimiser steps.")
    batch_size: int = Field(8, gt=0, description="Per-device batch size.")
    gradient_accumulation_steps: int = Field(1, gt=0, description="Micro-batches per optimiser step.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        "linear", description="Learning-rate schedule after warm-up."
    )
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    max_length: int = Field(
        512, gt=0, description="Maximum tokens per training example (longer ones are truncated)."
    )
    gradient_checkpointing: bool = Field(
        True, description="Recompute activations in backward: less memory, ~20% slower."
    )
    logging_steps: int = Field(1, gt=0, description="Log loss every N steps.")
    save_steps: int | None = Field(None, gt=0, description="Write a resumable checkpoint every N steps.")
    beta: float = Field(0.1, gt=0, description="DPO / GRPO KL coefficient.")
    num_generations: int = Field(4, gt=1, description="GRPO: completions sampled per prompt.")
    max_completion_length: int = Field(32, gt=0, description="GRPO: maximum tokens generated per completion.")
    rewards: list[str] = Field(
        default_factory=lambda: ["exact_match"], description="GRPO: registered reward names."
    )

    peft: PEFTConfig = Field(default_factory=PEFTConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    manifest: ManifestConfig = Field(default_factory=ManifestConfig)
    observability_backend: Literal["wandb", "mlflow", "tensorboard", "none"] = Field(
        "none",
        description="Experiment tracker: wandb (offline by default), mlflow (local SQLite), tensorboard, none.",
    )

    # -- construction -------------------------------------------------------------------

    def to_yaml(self, path: str | os.PathLike[str] | None = None) -> str:
        """The config as YAML; also written atomically to ``path`` when given."""
        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
        if path is not None:
            from provenir.core.atomic import atomic_write_text

            atomic_write_text(path, text)
        return text

    def with_overrides(self, overrides: list[str]) -> RunConfig:
        """A new config with ``key.path=value`` overrides applied on top of this one."""
        return RunConfig.from_dict(apply_overrides(self.model_dump(mode="json"), overrides))

    # -- identity -----------------------------------------------------------------------

    def config_hash(self) -> str:
        """SHA-256 of the canonical JSON of the fully resolved config (defaults included).

        ``output_dir`` is left out: where artifacts are written does not change what is
        trained, and a reproduction may write elsewhere. So is ``manifest.model_signing_key_path``:
        which key signs the finished model folder does not change it either.
        """
        return sha256_json(self.model_dump(mode="json", exclude=_NOT_HASHED))

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema of the config file format."""
        return cls.model_json_schema()


# -- helpers shared by the loaders ----------------------------------------------------------


def read_yaml_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML file whose top level must be a mapping."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = load_yaml(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{p}: invalid YAML{where}: {problem}") from None
    if data is None:
        raise ConfigError(f"{p}: config file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of keys to values, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b.c=value`` applied; values are parsed as YAML."""
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        try:
            value = load_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: value is not valid YAML") from None
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[: i + 1])} is not a section")
            node = child
        node[parts[-1]] = value
    return out


_MESSAGES: dict[str, str] = {
    "extra_forbidden": "unknown key",
    "missing": "required",
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "literal_error": "must be one of {expected}",
    "string_pattern_mismatch": "must match {pattern}",
    "string_too_short": "must not be empty",
    "too_short": "must have at least {min_length} item(s)",
}


def format_validation_error(exc: ValidationError) -> str:
    """One line naming each failing field path, e.g. ``peft.rank: must be > 0 (got -1)``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        template = _MESSAGES.get(err["type"])
        ctx = err.get("ctx") or {}
        if template is not None:
            try:
                msg = template.format(**ctx)
            except (KeyError, IndexError):
                msg = err["msg"]
        else:
            msg = err["msg"].removeprefix("Value error, ")
        if err["type"] not in ("extra_forbidden", "missing") and err["loc"] and "input" in err:
            shown = repr(err["input"])
            if len(shown) <= 40:
                msg += f" (got {shown})"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
