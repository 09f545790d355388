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

import difflib
import os
import re
import warnings
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
    when they are not set here (see :mod:`provenir.train.rendezvous`). With ``launcher: ray``,
    Ray Train starts the processes instead, on the cluster at ``ray_address`` (see
    :mod:`provenir.train.ray_train`).
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
        description="Times torchrun (Ray Train, with launcher: ray) restarts every worker after a failure "
        "(from the last checkpoint when save_steps is set). Not part of config_hash.",
    )
    launcher: Literal["torchrun", "ray"] = Field(
        "torchrun",
        description="What starts the processes: torchrun, or Ray Train (ray.train.torch.TorchTrainer, one "
        "worker per process, on the Ray cluster at ray_address; needs provenir[ray]). Both run the same "
        "worker and train the same adapter. Not part of config_hash.",
    )
    ray_address: str | None = Field(
        None,
        description="Ray cluster for launcher: ray (an address ray.init accepts, e.g. auto or ray://head:10001). "
        "Unset: a local Ray with one CPU per process. Not part of config_hash.",
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
        if self.launcher == "ray":
            if self.strategy == "none":
                raise ValueError("launcher: ray needs a strategy (ddp, fsdp or deepspeed)")
            if self.nnodes is not None and len(set(parse_nnodes(self.nnodes))) > 1:
                raise ValueError(
                    f"launcher: ray does not run elastic jobs (nnodes {self.nnodes!r}); use a fixed nnodes "
                    "or launcher: torchrun"
                )
        elif self.ray_address is not None:
            raise ValueError("ray_address is set but launcher is torchrun; set launcher: ray or drop it")
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
    "launcher": "torchrun",
    "ray_address": None,
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
    loss_every_n_steps: int | None = Field(
        None,
        gt=0,
        description="SFT / DPO: compute the loss on the run's eval rows every N optimiser steps and at the "
        "last step (TRL's eval_dataset, logged as eval_loss); needs eval data (data.eval_path or "
        "data.eval_split).",
    )
    load_best: bool = Field(
        False,
        description="After training, the adapter is the complete, verified checkpoint with the best "
        "`best_metric` instead of the last step's weights; the manifest's selected_checkpoint says which "
        "and why. Needs loss_every_n_steps and save_steps, with loss_every_n_steps a multiple of save_steps "
        "so that every evaluated step has a checkpoint.",
    )
    best_metric: str = Field(
        "eval_loss",
        min_length=1,
        description="Metric of the loss evaluations that load_best and early stopping on eval loss compare "
        "(eval_loss, or one TRL logs at evaluation such as eval_rewards/accuracies for DPO).",
    )
    greater_is_better: bool | None = Field(
        None,
        description="Whether a larger best_metric is better; None: lower is better for a metric whose name "
        "ends in 'loss', higher otherwise (transformers' rule).",
    )
    early_stopping_patience: int | None = Field(
        None,
        gt=0,
        description="Stop after N evaluations in a row without improvement: of best_metric when "
        "loss_every_n_steps is set (transformers' EarlyStoppingCallback), else of the first generated metric "
        "(eval_every_n_steps).",
    )
    early_stopping_threshold: float = Field(
        0.0,
        ge=0,
        description="Early stopping on best_metric: an evaluation improves only when it beats the best by more "
        "than this.",
    )
    regression_tolerance: float = Field(
        0.02, ge=0, description="Allowed drop before the regression gate trips."
    )


class GateConfig(ConfigSection):
    """The pre-registered regression gate: chosen before training, sealed in the manifest.

    `provenir gate RUN` decides with this spec only; a different one is a new, audited
    registration (`provenir gate RUN --register ...`), never a silent override.
    """

    baseline: str = Field(
        min_length=1,
        description="What the run is compared with: a run id (or unique prefix, or 'latest') in output_dir, "
        "or the path of an eval.json.",
    )
    metrics: list[str] | None = Field(
        None, description="Metrics to gate on; None: every metric of the baseline's evaluation."
    )
    tolerance: float = Field(0.02, ge=0, description="Largest allowed drop (see mode).")
    mode: Literal["absolute", "relative"] = Field(
        "absolute",
        description="absolute: tolerance in points of the 0..1 scale (0.02 = two points); relative: a fraction "
        "of the baseline's value.",
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of the paired tests.")
    correction: Literal["holm", "none"] | None = Field(
        None,
        description="Multiplicity correction across the gated metrics; None: holm when more than one metric "
        "is gated, none otherwise.",
    )
    require_significance: bool = Field(
        False,
        description="Trip only on drops the (corrected) paired test finds significant; by default a drop "
        "beyond the tolerance trips even when the set is too small to prove it.",
    )
    retention_tasks: list[str] = Field(
        [],  # not a factory: the generated reference shows the default (pydantic copies it per instance)
        description="Evaluation tasks (lm-evaluation-harness names or task YAML files) on which the tuned model "
        "must not fall below the base model; empty: no retention check.",
    )

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            _check_names(value, "metric")
        return value

    @field_validator("retention_tasks")
    @classmethod
    def _task_names(cls, value: list[str]) -> list[str]:
        _check_names(value, "task")
        return value


def _check_names(names: list[str], what: str) -> None:
    # Names travel in comma-separated CLI lists and task registries: no blanks, commas or repeats.
    if names == [] and what == "metric":
        raise ValueError("list at least one metric, or leave metrics unset to gate on every metric")
    for name in names:
        if not name or name != name.strip() or "," in name or any(c.isspace() for c in name):
            raise ValueError(f"{what} name {name!r}: must be non-empty, without spaces or commas")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} {repeated[0]!r} is listed twice")


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


DPOLossType = Literal[
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sft",
    "sigmoid_norm",
]

_SIGMOID: list[DPOLossType] = ["sigmoid"]


class SFTSection(ConfigSection):
    """SFT settings (``algorithm: sft``), passed to TRL's ``SFTConfig``. Defaults are TRL's."""

    packing: bool = Field(
        False,
        description="Pack several rows into each max_length-token sequence with TRL's best-fit decreasing "
        "(packing_strategy 'bfd'); training is padding-free with per-row position_ids, so no token attends "
        "to another row. Every row is trained on exactly once per epoch, as without packing; fewer, fuller "
        "sequences make an epoch fewer steps.",
    )
    completion_only_loss: bool | None = Field(
        None,
        description="Loss on the completion (the response) only. None: TRL's default, which for Provenir's "
        "prompt/response rows is the completion only; false: the prompt tokens are trained on too.",
    )
    loss_type: Literal["nll", "dft"] = Field(
        "nll", description="nll (negative log-likelihood) or dft (Dynamic Fine-Tuning)."
    )


class DPOSection(ConfigSection):
    """DPO settings (``algorithm: dpo``), passed to TRL's ``DPOConfig``. Defaults are TRL's.

    The flat ``beta`` of earlier releases still loads for one release (into ``dpo.beta`` when the
    algorithm is dpo), with a ``ConfigDeprecationWarning``.
    """

    beta: float = Field(
        0.1,
        gt=0,
        description="How far the policy may move from the reference: higher keeps it closer (IPO: tau).",
    )
    loss_type: list[DPOLossType] = Field(
        default_factory=lambda: _SIGMOID[:],
        min_length=1,
        description="DPO loss (sigmoid is the DPO paper's); a list combines several, weighted by loss_weights. "
        "A single name is accepted too.",
    )
    loss_weights: list[float] | None = Field(
        None, description="One weight per loss_type when combining several; None: 1.0 each."
    )
    label_smoothing: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description="Robust DPO: probability that a preference label is flipped; EXO: its epsilon.",
    )
    ref_model: Literal["base", "precompute"] = Field(
        "base",
        description="Reference model: base (the model without the trained adapter, evaluated each step; "
        "a frozen copy when training every weight) or precompute (the reference log-probabilities of every "
        "row are computed once before training, so no reference stays in memory). TRL 1.16's DPOTrainer "
        "has no reference-free mode.",
    )

    @field_validator("loss_type", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _weights_match(self) -> DPOSection:
        if self.loss_weights is not None and len(self.loss_weights) != len(self.loss_type):
            raise ValueError(
                f"loss_weights has {len(self.loss_weights)} weight(s) for {len(self.loss_type)} loss_type(s)"
            )
        return self


class GRPOSection(ConfigSection):
    """GRPO settings (``algorithm: grpo``), passed to TRL's ``GRPOConfig``. Defaults are TRL's.

    The flat ``beta``, ``num_generations``, ``max_completion_length`` and ``rewards`` of earlier
    releases still load for one release (into this section), with a ``ConfigDeprecationWarning``;
    setting one both flat and here is an error. Their old defaults (beta 0.1, 4 generations, 32
    tokens) are not TRL's: set them here to keep an earlier run's behaviour.
    """

    beta: float = Field(
        0.0,
        ge=0,
        description="KL coefficient against the reference model; 0 (TRL's default) loads no reference model.",
    )
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"] = Field(
        "dapo",
        description="How token losses are aggregated: dapo (TRL's default: over the active tokens of the "
        "accumulated batch), grpo (per sequence length), dr_grpo (a constant), bnpo, cispo, sapo, luspo, vespo.",
    )
    num_generations: int = Field(
        8,
        ge=2,
        description="Completions sampled per prompt; the effective batch (processes x batch_size x "
        "gradient_accumulation_steps) must be a multiple of it.",
    )
    max_completion_length: int = Field(512, gt=0, description="Maximum tokens generated per completion.")
    rewards: list[str] = Field(
        default_factory=lambda: ["exact_match"],
        min_length=1,
        description="Registered reward names (built-ins: provenir.rewards.primitives; plugins: the reward "
        "registry), one reward function each.",
    )
    reward_weights: list[float] | None = Field(
        None, description="One weight per reward in `rewards`; None: 1.0 each."
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group",
        description="Divide advantages by the reward standard deviation of each prompt's group, of the "
        "whole batch, or not at all (Dr. GRPO).",
    )

    @model_validator(mode="after")
    def _weights_match(self) -> GRPOSection:
        if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
            raise ValueError(
                f"reward_weights has {len(self.reward_weights)} weight(s) for {len(self.rewards)} reward(s)"
            )
        return self


class RaySection(ConfigSection):
    """Where a Ray executor runs and how wide (see docs/ray.md)."""

    address: str | None = Field(
        None,
        description="Ray cluster to connect to (`auto`, `ray://host:10001`, `host:6379`); "
        "null starts a local Ray in this process.",
    )
    num_workers: int = Field(2, gt=0, description="Tasks or actors run at once (one CPU each).")
    num_cpus: int | None = Field(
        None, gt=0, description="CPUs of a locally started Ray (null: every CPU of this machine)."
    )
    max_retries: int = Field(
        3, ge=0, description="Times a task (or actor call) is retried after its worker died."
    )


class ExecutorConfig(ConfigSection):
    """Where scans, contamination checks, generation and judging run. Never changes a result:
    a Ray run writes the same files as a local one, so it is left out of every identity hash."""

    executor: Literal["local", "ray"] = Field(
        "local", description="local: in this process; ray: fanned out over a Ray cluster."
    )
    ray: RaySection = Field(default_factory=RaySection)


class ConfigDeprecationWarning(FutureWarning):
    """A config key that still works this release but will be removed; the message says what replaces it.

    A ``FutureWarning``, not a ``DeprecationWarning``: Python shows it by default, because the
    people who must act on it are the ones writing config files, not developers of imported code.
    """


#: Flat keys of earlier releases -> the section field that replaced them (one release of grace).
#: ``beta`` goes to the section of the run's algorithm: it was shared by DPO and GRPO.
DEPRECATED_FLAT_KEYS: dict[str, str] = {
    "beta": "<algorithm>.beta",
    "num_generations": "grpo.num_generations",
    "max_completion_length": "grpo.max_completion_length",
    "rewards": "grpo.rewards",
}

#: TRL / transformers arguments that Provenir sets from its own fields (or keeps for its guarantees):
#: ``trainer_args`` may not name them. Value: what to set instead, or why it is not open.
TRAINER_ARGS_OWNED: dict[str, str] = {
    "output_dir": "checkpoints always go into the run folder",
    "logging_dir": "logs always go into the run folder",
    "overwrite_output_dir": "checkpoints always go into the run folder",
    "resume_from_checkpoint": "resume with `provenir train --resume` (complete, verified checkpoints only)",
    "seed": "set `seed`",
    "data_seed": "set `seed`",
    "full_determinism": "Provenir always trains deterministically",
    "report_to": "set `observability_backend`",
    "disable_tqdm": "Provenir shows its own progress",
    "push_to_hub": "publishing is not part of a training run",
    "hub_model_id": "publishing is not part of a training run",
    "hub_token": "publishing is not part of a training run",
    "max_steps": "set `max_steps`",
    "num_train_epochs": "set `num_train_epochs`",
    "per_device_train_batch_size": "set `batch_size`",
    "per_device_eval_batch_size": "set `batch_size`",
    "gradient_accumulation_steps": "set `gradient_accumulation_steps`",
    "learning_rate": "set `learning_rate`",
    "lr_scheduler_type": "set `lr_scheduler_type`",
    "warmup_steps": "set `warmup_steps`",
    "weight_decay": "set `weight_decay`",
    "max_grad_norm": "set `max_grad_norm`",
    "logging_steps": "set `logging_steps`",
    "gradient_checkpointing": "set `gradient_checkpointing`",
    "save_strategy": "set `save_steps`",
    "save_steps": "set `save_steps`",
    "save_total_limit": "set `save_total_limit`",
    "eval_strategy": "set `eval.loss_every_n_steps`",
    "eval_steps": "set `eval.loss_every_n_steps`",
    "load_best_model_at_end": "set `eval.load_best` (Provenir loads only complete, verified checkpoints)",
    "metric_for_best_model": "set `eval.best_metric`",
    "greater_is_better": "set `eval.greater_is_better`",
    "use_cpu": "set `device`",
    "bf16": "set `precision`",
    "fp16": "set `precision`",
    "dataloader_num_workers": "rows are read in the training process, in a seeded order",
    "dataset_num_proc": "rows are prepared in the training process",
    "fsdp": "set `distributed.strategy`",
    "fsdp_config": "set `distributed.strategy`",
    "deepspeed": "set `distributed.strategy` and `distributed.deepspeed_stage`",
    "ddp_backend": "set `distributed` (gloo on CPU, nccl on GPUs)",
    "max_length": "set `max_length`",
    "packing": "set `sft.packing`",
    "packing_strategy": "`sft.packing` packs by best-fit decreasing, which keeps every row whole",
    "completion_only_loss": "set `sft.completion_only_loss`",
    "loss_type": "set `sft.loss_type`, `dpo.loss_type` or `grpo.loss_type`",
    "loss_weights": "set `dpo.loss_weights`",
    "beta": "set `dpo.beta` or `grpo.beta`",
    "label_smoothing": "set `dpo.label_smoothing`",
    "precompute_ref_log_probs": "set `dpo.ref_model: precompute`",
    "num_generations": "set `grpo.num_generations`",
    "max_completion_length": "set `grpo.max_completion_length`",
    "reward_weights": "set `grpo.reward_weights`",
    "scale_rewards": "set `grpo.scale_rewards`",
    "remove_unused_columns": "GRPO rewards read the rows' reference column",
}


#: Left out of ``config_hash``: where artifacts go, which key signs the model folder and where
#: the nodes meet do not change what is trained (and a config written before a field existed
#: keeps its hash).
_NOT_HASHED: dict[str, Any] = {
    "output_dir": True,
    "manifest": {"model_signing_key_path": True},
    "distributed": {
        name: True
        for name in (
            "rdzv_endpoint",
            "rdzv_id",
            "rdzv_backend",
            "rdzv_join_timeout_s",
            "max_restarts",
            "launcher",
            "ray_address",
        )
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

    max_steps: int | None = Field(
        100,
        gt=0,
        description="Optimiser steps; exclusive with num_train_epochs, which replaces this default when set.",
    )
    num_train_epochs: float | None = Field(
        None,
        gt=0,
        description="Passes over the training rows instead of a step count (fractions allowed); exclusive "
        "with max_steps.",
    )
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
    save_total_limit: int | None = Field(
        None,
        gt=0,
        description="Keep at most N checkpoints (the oldest are deleted; the newest and, with eval.load_best, "
        "the best are always kept). Needs save_steps.",
    )

    peft: PEFTConfig = Field(default_factory=PEFTConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    manifest: ManifestConfig = Field(default_factory=ManifestConfig)
    sft: SFTSection = Field(default_factory=SFTSection)
    dpo: DPOSection = Field(default_factory=DPOSection)
    grpo: GRPOSection = Field(default_factory=GRPOSection)
    gate: GateConfig | None = Field(
        None,
        description="Pre-registered regression gate (baseline, metrics, tolerance, ...), sealed with the run; "
        "None: no registered gate. Part of config_hash; the manifest also records its own gate_spec_sha256.",
    )
    trainer_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Further arguments for TRL's config class of the algorithm (SFTConfig, DPOConfig, "
        "GRPOConfig), e.g. {optim: adamw_torch_fused, neftune_noise_alpha: 5}. Names are checked against "
        "that class before training; ones Provenir sets from its own fields (learning_rate, output_dir, "
        "seed, ...) are refused. Part of config_hash.",
    )
    observability_backend: Literal["wandb", "mlflow", "tensorboard", "none"] = Field(
        "none",
        description="Experiment tracker: wandb (offline by default), mlflow (local SQLite), tensorboard, none.",
    )

    @model_validator(mode="before")
    @classmethod
    def _map_deprecated_flat_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not DEPRECATED_FLAT_KEYS.keys() & data.keys():
            return data
        return map_deprecated_flat_keys(data)

    @model_validator(mode="after")
    def _schedule(self) -> RunConfig:
        if self.max_steps is not None and self.num_train_epochs is not None:
            if "max_steps" in self.model_fields_set:
                raise ValueError(
                    "max_steps and num_train_epochs are mutually exclusive: set one of them "
                    "(to switch a file that sets max_steps to epochs, also set max_steps: null)"
                )
            # Bypass validate_assignment: the default step count only stands for "no epochs given".
            object.__setattr__(self, "max_steps", None)
        elif self.max_steps is None and self.num_train_epochs is None:
            raise ValueError("set max_steps or num_train_epochs")
        if self.save_total_limit is not None and self.save_steps is None:
            raise ValueError(
                "save_total_limit needs save_steps: without checkpoints there is nothing to limit"
            )
        ev = self.eval
        if ev.loss_every_n_steps is not None:
            if self.algorithm == "grpo":
                raise ValueError(
                    "eval.loss_every_n_steps: GRPO has no eval loss on fixed rows; use sft or dpo"
                )
            if self.data.eval_path is None and self.data.eval_split == 0:
                raise ValueError(
                    "eval.loss_every_n_steps needs eval rows: set data.eval_path or data.eval_split"
                )
        if ev.load_best:
            if ev.loss_every_n_steps is None:
                raise ValueError(
                    "eval.load_best needs eval.loss_every_n_steps: nothing is evaluated to compare"
                )
            if self.save_steps is None or ev.loss_every_n_steps % self.save_steps:
                raise ValueError(
                    "eval.load_best needs a checkpoint at every evaluation: set save_steps so that "
                    f"eval.loss_every_n_steps ({ev.loss_every_n_steps}) is a multiple of it"
                )
        owned = sorted(self.trainer_args.keys() & TRAINER_ARGS_OWNED.keys())
        if owned:
            raise ValueError(
                f"trainer_args.{owned[0]}: Provenir sets it ({TRAINER_ARGS_OWNED[owned[0]]})"
                + (f"; also owned: {', '.join(owned[1:])}" if owned[1:] else "")
            )
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_gate(self, handler: SerializerFunctionWrapHandler):
        # Configs written before the gate existed keep their dump, hence their config_hash.
        # No return annotation: pydantic would take it for the serialised schema (losing the fields).
        data: dict[str, Any] = handler(self)
        if self.gate is None:
            data.pop("gate", None)
        return data

    def gate_spec_sha256(self) -> str | None:
        """SHA-256 of the canonical JSON of the ``gate`` section (None without one)."""
        return sha256_json(self.gate.model_dump(mode="json")) if self.gate is not None else None

    # -- construction -------------------------------------------------------------------

    def to_yaml(self, path: str | os.PathLike[str] | None = None) -> str:
        """The config as YAML; also written atomically to ``path`` when given."""
        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
        if path is not None:
            from provenir.core.atomic import atomic_write_text

            atomic_write_text(path, text)
        return text

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None, overrides: list[str] | None = None) -> RunConfig:
        """The config of a run: defaults < the YAML file at ``path`` (if any) < ``overrides``.

        ``RunConfig.load(None, ["training.seed=7"])`` is the defaults with one field changed.
        """
        if path is None:
            return RunConfig().with_overrides(overrides or [])
        return RunConfig.from_yaml(path, overrides or [])

    def with_overrides(self, overrides: list[str]) -> RunConfig:
        """A new config with ``key.path=value`` overrides applied on top of this one."""
        data = self.model_dump(mode="json")
        if "max_steps" not in self.model_fields_set:
            # A default step count gives way to an overridden num_train_epochs, as on top of a file.
            data.pop("max_steps")
        return RunConfig.from_dict(apply_overrides(data, overrides))

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


def map_deprecated_flat_keys(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the flat keys of earlier releases moved into their sections, one warning each.

    ``beta`` moves to the section of ``data``'s algorithm (it has no meaning for SFT and is
    dropped there). A key given both flat and in its section is a :class:`ConfigError`.
    """
    out = dict(data)
    algorithm = out.get("algorithm", "sft")
    for key, target in DEPRECATED_FLAT_KEYS.items():
        if key not in out:
            continue
        value = out.pop(key)
        section = algorithm if target.startswith("<algorithm>") else target.split(".")[0]
        if section not in ("dpo", "grpo"):
            _deprecated(f"config key `{key}` is deprecated and has no effect on {algorithm}; remove it")
            continue
        place = f"{section}.{key}"
        current = out.get(section)
        if current is None:
            current = {}
        if not isinstance(current, dict):
            continue  # the section's own validation reports it
        if key in current:
            raise ConfigError(f"{key}: set {place} only (both `{key}` and `{place}` are given)")
        out[section] = {**current, key: value}
        _deprecated(
            f"config key `{key}` is deprecated and will be removed in the next release; use `{place}`"
        )
    return out


def _deprecated(message: str) -> None:
    warnings.warn(message, ConfigDeprecationWarning, stacklevel=2)


def close_matches(name: str, choices: list[str] | set[str]) -> str:
    """`` (did you mean a, b?)`` for the names of ``choices`` close to ``name``, else ``""``."""
    found = difflib.get_close_matches(name, sorted(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(found)}?)" if found else ""


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
