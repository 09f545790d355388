"""``trainer_args``: TRL arguments Provenir does not mirror, checked against TRL's own config class.

The run config refuses the names Provenir sets itself (:data:`~provenir.core.config.TRAINER_ARGS_OWNED`)
without importing TRL; this module checks every other name against the fields of the TRL config
class of the run's algorithm, so a misspelt argument stops the run before anything is read::

    trainer_args: {optim: adamw_torch, lerning_rate_typo: 1}
    # ConfigError: trainer_args.lerning_rate_typo: not an argument of TRL's SFTConfig ...
"""

from __future__ import annotations

import dataclasses
from typing import Any

from provenir.core.config import RunConfig, close_matches
from provenir.core.errors import ConfigError


def trl_config_class(algorithm: str) -> type:
    """TRL's config class for ``algorithm`` (``SFTConfig``, ``DPOConfig``, ``GRPOConfig``)."""
    from trl import DPOConfig, GRPOConfig, SFTConfig

    classes: dict[str, type] = {"sft": SFTConfig, "dpo": DPOConfig, "grpo": GRPOConfig}
    if algorithm not in classes:
        raise ConfigError(f"trainer_args: no TRL config class for algorithm {algorithm!r}")
    return classes[algorithm]


def trl_argument_names(algorithm: str) -> set[str]:
    """Every argument TRL's config class of ``algorithm`` accepts (TrainingArguments' included)."""
    return {f.name for f in dataclasses.fields(trl_config_class(algorithm)) if f.init}


def check_trainer_args(config: RunConfig) -> None:
    """Raise :class:`ConfigError` for the first ``trainer_args`` name TRL's config class does not have."""
    if not config.trainer_args:
        return
    cls = trl_config_class(config.algorithm)
    names = trl_argument_names(config.algorithm)
    for key in config.trainer_args:
        if key not in names:
            raise ConfigError(
                f"trainer_args.{key}: not an argument of TRL's {cls.__name__} "
                f"(algorithm {config.algorithm}){close_matches(key, names)}"
            )


def build_trl_config(config: RunConfig, provenir_args: dict[str, Any]) -> Any:
    """TRL's config object for the run: Provenir's own arguments plus ``trainer_args``.

    A name in both is refused (it means :data:`TRAINER_ARGS_OWNED` misses one Provenir sets).
    A value TRL rejects (``num_generations`` not dividing the batch, a bad ``trainer_args``
    value) is a :class:`ConfigError` quoting TRL's reason.
    """
    check_trainer_args(config)
    cls = trl_config_class(config.algorithm)
    clash = sorted(provenir_args.keys() & config.trainer_args.keys())
    if clash:
        raise ConfigError(f"trainer_args.{clash[0]}: Provenir sets it for this run; remove it")
    try:
        return cls(**provenir_args, **config.trainer_args)
    except (TypeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        given = f" (trainer_args given: {', '.join(config.trainer_args)})" if config.trainer_args else ""
        raise ConfigError(f"TRL's {cls.__name__} rejected the run's arguments{given}: {reason}") from None
