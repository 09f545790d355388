"""Schedule fields, per-algorithm sections, deprecated flat keys and trainer_args: the config side."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import (
    DEPRECATED_FLAT_KEYS,
    TRAINER_ARGS_OWNED,
    ConfigDeprecationWarning,
    RunConfig,
)
from provenir.core.errors import ConfigError


def load(data: dict[str, Any]) -> RunConfig:
    return RunConfig.from_dict(data)


# -- schedule ------------------------------------------------------------------------------------


def test_epochs_replace_the_default_step_count() -> None:
    config = load({"num_train_epochs": 2})
    assert config.num_train_epochs == 2 and config.max_steps is None
    assert load({}).max_steps == 100 and load({}).num_train_epochs is None


def test_epochs_and_steps_together_are_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="max_steps and num_train_epochs are mutually exclusive") as exc:
        load({"max_steps": 10, "num_train_epochs": 1})
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="set max_steps or num_train_epochs"):
        load({"max_steps": None})


def test_an_override_chooses_epochs_over_the_default_steps(tmp_path: Path) -> None:
    assert RunConfig().with_overrides(["num_train_epochs=1.5"]).max_steps is None
    # A file that names max_steps must give it up explicitly.
    path = tmp_path / "run.yaml"
    path.write_text("max_steps: 20\n")
    with pytest.raises(ConfigError, match="max_steps: null"):
        RunConfig.from_yaml(path, ["num_train_epochs=1"])
    assert RunConfig.from_yaml(path, ["num_train_epochs=1", "max_steps=null"]).num_train_epochs == 1


def test_a_resolved_epoch_config_loads_back_unchanged() -> None:
    config = load({"num_train_epochs": 3, "save_steps": 2, "save_total_limit": 1})
    again = RunConfig.from_dict(config.model_dump(mode="json"))
    assert again == config and again.config_hash() == config.config_hash()


def test_save_total_limit_needs_checkpoints() -> None:
    with pytest.raises(ConfigError, match="save_total_limit needs save_steps"):
        load({"save_total_limit": 2})
    assert load({"save_steps": 5, "save_total_limit": 2}).save_total_limit == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"eval": {"loss_every_n_steps": 2}}, "needs eval rows: set data.eval_path or data.eval_split"),
        (
            {"algorithm": "grpo", "data": {"eval_split": 0.2}, "eval": {"loss_every_n_steps": 2}},
            "GRPO has no eval loss",
        ),
        ({"eval": {"load_best": True}}, "eval.load_best needs eval.loss_every_n_steps"),
        (
            {"data": {"eval_split": 0.2}, "eval": {"loss_every_n_steps": 4, "load_best": True}},
            "needs a checkpoint at every evaluation",
        ),
        (
            {
                "save_steps": 3,
                "data": {"eval_split": 0.2},
                "eval": {"loss_every_n_steps": 4, "load_best": True},
            },
            "eval.loss_every_n_steps \\(4\\) is a multiple of it",
        ),
    ],
)
def test_eval_loss_and_load_best_rules(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(data)


def test_load_best_accepts_a_checkpoint_at_every_evaluation() -> None:
    config = load(
        {"save_steps": 2, "data": {"eval_split": 0.2}, "eval": {"loss_every_n_steps": 4, "load_best": True}}
    )
    assert config.eval.load_best and config.eval.best_metric == "eval_loss"


# -- sections -------------------------------------------------------------------------------------


def test_sections_validate_their_own_fields() -> None:
    assert load({"dpo": {"loss_type": "ipo"}}).dpo.loss_type == ["ipo"]
    with pytest.raises(ConfigError, match="dpo: loss_weights has 1 weight"):
        load({"dpo": {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0]}})
    with pytest.raises(ConfigError, match="grpo: reward_weights has 2 weight"):
        load({"grpo": {"rewards": ["exact_match"], "reward_weights": [1.0, 2.0]}})
    with pytest.raises(ConfigError, match="dpo.ref_model: must be one of"):
        load({"dpo": {"ref_model": "none"}})
    with pytest.raises(ConfigError, match="grpo.num_generations: must be >= 2"):
        load({"grpo": {"num_generations": 1}})


def test_grpo_and_dpo_no_longer_share_beta() -> None:
    config = load({"dpo": {"beta": 0.3}})
    assert config.dpo.beta == 0.3 and config.grpo.beta == 0.0


# -- deprecated flat keys -------------------------------------------------------------------------


def test_flat_keys_map_into_sections_with_one_notice_each() -> None:
    with pytest.warns(ConfigDeprecationWarning) as caught:
        config = load(
            {
                "algorithm": "grpo",
                "beta": 0.05,
                "num_generations": 4,
                "max_completion_length": 16,
                "rewards": ["format"],
            }
        )
    assert config.grpo.beta == 0.05 and config.grpo.num_generations == 4
    assert config.grpo.max_completion_length == 16 and config.grpo.rewards == ["format"]
    messages = [str(w.message) for w in caught]
    assert len(messages) == len(DEPRECATED_FLAT_KEYS)
    assert (
        "config key `num_generations` is deprecated" in messages[1]
        and "use `grpo.num_generations`" in messages[1]
    )
    assert all("\n" not in m for m in messages)
    # The resolved config has only the section form.
    dumped = config.model_dump(mode="json")
    assert not DEPRECATED_FLAT_KEYS.keys() & dumped.keys()
    assert load(dumped) == config


def test_flat_beta_goes_to_the_algorithm_it_was_meant_for() -> None:
    with pytest.warns(ConfigDeprecationWarning, match="use `dpo.beta`"):
        config = load({"algorithm": "dpo", "beta": 0.25})
    assert config.dpo.beta == 0.25 and config.grpo.beta == 0.0
    with pytest.warns(ConfigDeprecationWarning, match="has no effect on sft"):
        assert load({"beta": 0.25}) == load({})


def test_a_key_given_flat_and_in_its_section_is_refused() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigDeprecationWarning)
        with pytest.raises(ConfigError, match=r"set grpo.num_generations only \(both"):
            load({"algorithm": "grpo", "num_generations": 4, "grpo": {"num_generations": 6}})


def test_the_deprecation_notice_is_shown_by_default() -> None:
    # A FutureWarning: Python's default filters show it to whoever runs the config.
    assert issubclass(ConfigDeprecationWarning, FutureWarning)


# -- trainer_args -------------------------------------------------------------------------------


def test_trainer_args_refuse_what_provenir_sets() -> None:
    with pytest.raises(
        ConfigError, match=r"trainer_args.learning_rate: Provenir sets it \(set `learning_rate`\)"
    ):
        load({"trainer_args": {"learning_rate": 1e-3}})
    with pytest.raises(ConfigError, match=r"trainer_args.output_dir: .*; also owned: report_to, seed"):
        load({"trainer_args": {"seed": 1, "output_dir": "x", "report_to": "wandb"}})
    assert {"output_dir", "seed", "report_to", "max_steps"} <= TRAINER_ARGS_OWNED.keys()


def test_trainer_args_are_part_of_the_config_hash() -> None:
    plain = load({})
    tuned = load({"trainer_args": {"optim": "sgd"}})
    assert tuned.trainer_args == {"optim": "sgd"}
    assert tuned.config_hash() != plain.config_hash()
    assert load({"trainer_args": {"optim": "sgd"}}).config_hash() == tuned.config_hash()
