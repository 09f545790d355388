"""``sft:``, ``dpo:``, ``grpo:`` reach TRL with TRL's defaults; ``trainer_args`` pass through, checked."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import (
    TRAINER_ARGS_OWNED,
    ConfigDeprecationWarning,
    DPOSection,
    GRPOSection,
    RunConfig,
    SFTSection,
)
from provenir.core.errors import ConfigError
from provenir.data.loading import load_train_data
from provenir.train.backends.trl_backend import TRLBackend, algorithm_args, common_args
from provenir.train.runner import train
from provenir.train.trainer_args import check_trainer_args, trl_config_class

pytestmark = pytest.mark.slow

#: Section fields whose TRL argument has another name or form.
TRL_NAME = {"ref_model": "precompute_ref_log_probs"}
NOT_TRL = {"rewards"}  # Provenir's reward registry names; TRL takes the functions


def config(out: Path, **settings: Any) -> RunConfig:
    base: dict[str, Any] = {
        "output_dir": str(out),
        "max_steps": 2,
        "batch_size": 4,
        "learning_rate": 5e-3,
        "gradient_checkpointing": False,
        "peft": {"rank": 4, "alpha": 8},
        "data": {"max_samples": 8},
    }
    return RunConfig.from_dict({**base, **settings})


def trl_defaults(algorithm: str) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(trl_config_class(algorithm)):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


@pytest.mark.parametrize(
    ("algorithm", "section"), [("sft", SFTSection), ("dpo", DPOSection), ("grpo", GRPOSection)]
)
def test_section_defaults_are_trls(algorithm: str, section: type) -> None:
    defaults = trl_defaults(algorithm)
    ours = section().model_dump()
    for name, value in ours.items():
        if name in NOT_TRL:
            continue
        trl_name = TRL_NAME.get(name, name)
        assert trl_name in defaults, f"{algorithm}.{name} has no TRL counterpart"
        expected = defaults[trl_name]
        if name == "ref_model":
            value = value == "precompute"
        assert value == expected, f"{algorithm}.{name}: {value!r}, TRL's default is {expected!r}"


@pytest.mark.parametrize("algorithm", ["sft", "dpo", "grpo"])
def test_every_argument_provenir_sets_is_refused_in_trainer_args(algorithm: str, tmp_path: Path) -> None:
    # Every optional argument switched on: checkpoints, eval loss, best-checkpoint tracking.
    settings: dict[str, Any] = {"algorithm": algorithm, "save_steps": 1, "save_total_limit": 2}
    if algorithm != "grpo":
        settings["data"] = {"eval_split": 0.2}
        settings["eval"] = {"loss_every_n_steps": 1, "load_best": True, "early_stopping_patience": 1}
    cfg = config(tmp_path, **settings)
    passed = {**common_args(cfg, tmp_path, "cpu"), **algorithm_args(cfg)}
    assert passed.keys() <= TRAINER_ARGS_OWNED.keys(), sorted(passed.keys() - TRAINER_ARGS_OWNED.keys())


def test_an_unknown_trainer_arg_is_one_line_with_close_matches(tmp_path: Path) -> None:
    cfg = config(tmp_path, trainer_args={"neftune_noise_alfa": 5})
    with pytest.raises(ConfigError) as exc:
        check_trainer_args(cfg)
    message = str(exc.value)
    assert message.startswith("trainer_args.neftune_noise_alfa: not an argument of TRL's SFTConfig")
    assert "did you mean neftune_noise_alpha" in message and "\n" not in message
    # The run stops before reading data or writing anything.
    with pytest.raises(ConfigError, match="neftune_noise_alfa"):
        train(cfg)
    assert not any(tmp_path.iterdir())
    # Names are checked against the algorithm's class: num_generations is GRPO's, not SFT's.
    check_trainer_args(config(tmp_path, algorithm="grpo", trainer_args={"temperature": 0.7}))
    with pytest.raises(ConfigError, match="not an argument of TRL's SFTConfig"):
        check_trainer_args(config(tmp_path, trainer_args={"temperature": 0.7}))


def test_trainer_args_reach_trl_and_train(tmp_path: Path, tiny_model_path: Path) -> None:
    cfg = config(tmp_path, trainer_args={"optim": "sgd", "adam_beta1": 0.8})
    trainer, _, _ = TRLBackend(progress=False).build_trainer(cfg, load_train_data(cfg), tmp_path / "probe")
    assert trainer.args.optim == "sgd" and trainer.args.adam_beta1 == 0.8
    manifest = train(cfg)
    assert manifest.status == "completed" and manifest.config["trainer_args"] == {
        "optim": "sgd",
        "adam_beta1": 0.8,
    }
    assert manifest.config_hash == cfg.config_hash() != config(tmp_path).config_hash()


def test_a_value_trl_rejects_names_trainer_args(tmp_path: Path, tiny_model_path: Path) -> None:
    cfg = config(tmp_path, trainer_args={"optim": "no-such-optimiser"})
    with pytest.raises(
        ConfigError, match=r"TRL's SFTConfig rejected the run's arguments \(trainer_args given: optim\)"
    ):
        TRLBackend(progress=False).build_trainer(cfg, load_train_data(cfg), tmp_path / "probe")


def test_dpo_section_reaches_the_trainer_and_trains(tmp_path: Path, tiny_model_path: Path) -> None:
    cfg = config(
        tmp_path,
        algorithm="dpo",
        data={"path": "builtin:dpo-sample", "max_samples": 8},
        dpo={"beta": 0.3, "loss_type": "robust", "label_smoothing": 0.1, "ref_model": "precompute"},
    )
    trainer, _, _ = TRLBackend(progress=False).build_trainer(cfg, load_train_data(cfg), tmp_path / "probe")
    args = trainer.args
    assert (args.beta, args.loss_type, args.label_smoothing) == (0.3, ["robust"], 0.1)
    assert args.precompute_ref_log_probs and "ref_chosen_logps" in trainer.train_dataset.column_names
    manifest = train(cfg)
    assert manifest.status == "completed" and manifest.config["dpo"]["ref_model"] == "precompute"


def test_grpo_section_reaches_the_trainer_and_trains(tmp_path: Path, tiny_model_path: Path) -> None:
    settings = {
        "algorithm": "grpo",
        "data": {"path": "builtin:prompts-sample", "max_samples": 4, "template": "raw_completion"},
    }
    # TRL's default of 8 generations per prompt needs a batch that 8 divides, and says so.
    with pytest.raises(ConfigError, match=r"GRPOConfig rejected .*divisible by num_generations \(8\)"):
        probe = config(tmp_path, **settings)
        TRLBackend(progress=False).build_trainer(probe, load_train_data(probe), tmp_path / "p")
    default = config(tmp_path, **settings, batch_size=8)
    trainer, _, _ = TRLBackend(progress=False).build_trainer(
        default, load_train_data(default), tmp_path / "p"
    )
    assert trainer.beta == 0.0 and trainer.loss_type == "dapo"  # TRL's defaults: no KL term
    assert trainer.num_generations == 8 and trainer.max_completion_length == 512
    cfg = config(
        tmp_path,
        **settings,
        grpo={
            "beta": 0.04,
            "loss_type": "grpo",
            "num_generations": 4,
            "max_completion_length": 8,
            "rewards": ["exact_match"],
            "reward_weights": [2.0],
            "scale_rewards": "batch",
        },
    )
    trainer, _, _ = TRLBackend(progress=False).build_trainer(cfg, load_train_data(cfg), tmp_path / "probe")
    assert (trainer.beta, trainer.loss_type, trainer.num_generations) == (0.04, "grpo", 4)
    assert trainer.args.scale_rewards == "batch" and trainer.reward_weights.tolist() == [2.0]
    manifest = train(cfg)
    assert manifest.status == "completed" and manifest.metrics["global_step"] == 2


def test_flat_grpo_keys_still_reach_the_trainer(tmp_path: Path, tiny_model_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = config(
            tmp_path,
            algorithm="grpo",
            beta=0.1,
            num_generations=4,
            max_completion_length=8,
            data={"path": "builtin:prompts-sample", "max_samples": 4, "template": "raw_completion"},
        )
    assert sum(issubclass(w.category, ConfigDeprecationWarning) for w in caught) == 3
    trainer, _, _ = TRLBackend(progress=False).build_trainer(cfg, load_train_data(cfg), tmp_path / "probe")
    assert (trainer.beta, trainer.num_generations, trainer.max_completion_length) == (0.1, 4, 8)
