from __future__ import annotations

from pathlib import Path

import pytest

from provenir.core.config import PEFTConfig, RunConfig
from provenir.core.errors import ConfigError

SEED_YAML = """\
name: my-run
backend: trl          # trl | stub
seed: 42
model_name_or_path: meta-llama/Llama-3.2-1B
max_steps: 1000
batch_size: 8

peft:
  rank: 16
  alpha: 32
  target_modules: ["q_proj", "v_proj"]
  load_in_4bit: false   # QLoRA

distributed:
  strategy: fsdp        # fsdp | deepspeed | ddp | none
  num_gpus: 8

observability_backend: wandb
"""


def test_seed_yaml_loads_as_written(tmp_path: Path) -> None:
    p = tmp_path / "my_run.yaml"
    p.write_text(SEED_YAML)
    config = RunConfig.from_yaml(p)
    assert config.name == "my-run"
    assert config.peft.rank == 16 and config.peft.alpha == 32
    assert config.distributed.strategy == "fsdp" and config.distributed.num_gpus == 8
    assert config.observability_backend == "wandb"


def test_seed_python_construction() -> None:
    config = RunConfig(
        name="my-run", model_name_or_path="meta-llama/Llama-3.2-1B", peft=PEFTConfig(rank=16, alpha=32)
    )
    assert config.peft.rank == 16


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"peft": {"rank": -1}}, "peft.rank: must be > 0"),
        ({"peft": {"rank": 0}}, "peft.rank: must be > 0"),
        ({"bogus": 1}, "bogus: unknown key"),
        ({"peft": {"rnak": 8}}, "peft.rnak: unknown key"),
        ({"peft": {"rank": "16"}}, "peft.rank: must be an integer"),
        ({"max_steps": 1.5}, "max_steps: must be an integer"),
        ({"distributed": {"strategy": "horovod"}}, "distributed.strategy: must be one of"),
        ({"peft": {"load_in_4bit": True, "load_in_8bit": True}}, "mutually exclusive"),
        ({"peft": 3}, "peft: must be a mapping"),
        ({"name": "../escape"}, "name: must match"),
    ],
)
def test_invalid_config_names_the_field(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        RunConfig.from_dict(data)
    assert expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        RunConfig.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("peft:\n  rank: [1, 2\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+"):
        RunConfig.from_yaml(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        RunConfig.from_yaml(empty)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping"):
        RunConfig.from_yaml(scalar)


def test_precedence_default_file_override(tmp_path: Path) -> None:
    p = tmp_path / "run.yaml"
    p.write_text("peft:\n  rank: 8\nlearning_rate: 0.001\n")
    assert RunConfig().peft.rank == 16  # default
    from_file = RunConfig.from_yaml(p)
    assert from_file.peft.rank == 8 and from_file.learning_rate == 0.001  # file beats default
    overridden = RunConfig.from_yaml(p, ["peft.rank=32", "peft.target_modules=[q_proj,k_proj]"])
    assert overridden.peft.rank == 32  # --set beats file
    assert overridden.peft.target_modules == ["q_proj", "k_proj"]
    assert overridden.learning_rate == 0.001  # untouched keys keep the file's value


def test_load_is_defaults_then_file_then_overrides(tmp_path: Path) -> None:
    p = tmp_path / "run.yaml"
    p.write_text("peft:\n  rank: 8\nlearning_rate: 0.001\n")
    assert RunConfig.load(None) == RunConfig()
    assert RunConfig.load(None, ["peft.rank=4"]) == RunConfig().with_overrides(["peft.rank=4"])
    assert RunConfig.load(None, ["peft.rank=4"]).peft.rank == 4
    assert RunConfig.load(p) == RunConfig.from_yaml(p)
    assert RunConfig.load(p, ["peft.rank=32"]).peft.rank == 32
    assert RunConfig.load(p, ["peft.rank=32"]).learning_rate == 0.001


def test_override_errors() -> None:
    with pytest.raises(ConfigError, match="expected key.path=value"):
        RunConfig().with_overrides(["peft.rank"])
    with pytest.raises(ConfigError, match="peft.nope: unknown key"):
        RunConfig().with_overrides(["peft.nope=1"])
    with pytest.raises(ConfigError, match="is not a section"):
        RunConfig().with_overrides(["seed.x=1"])


def test_yaml_round_trip_and_hash(tmp_path: Path) -> None:
    config = RunConfig(name="rt", seed=7, peft=PEFTConfig(rank=4, use_rslora=True))
    path = tmp_path / "rt.yaml"
    config.to_yaml(path)
    again = RunConfig.from_yaml(path)
    assert again == config
    assert again.config_hash() == config.config_hash()
    assert config.with_overrides(["seed=8"]).config_hash() != config.config_hash()
    # Where artifacts go does not change what is trained.
    assert config.with_overrides(["output_dir=elsewhere"]).config_hash() == config.config_hash()


def test_output_dir_defaults_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVENIR_OUTPUT_DIR", raising=False)
    assert RunConfig().output_dir == "artifacts"
    monkeypatch.setenv("PROVENIR_OUTPUT_DIR", str(tmp_path / "runs-here"))
    assert RunConfig().output_dir == str(tmp_path / "runs-here")
    path = tmp_path / "explicit.yaml"
    path.write_text("output_dir: mine\n")
    assert RunConfig.from_yaml(path).output_dir == "mine"  # a config that names a folder keeps it
    assert RunConfig().config_hash() == RunConfig(output_dir="x").config_hash()


def test_json_schema_documents_fields() -> None:
    schema = RunConfig.json_schema()
    assert "peft" in schema["properties"]
    peft = schema["$defs"]["PEFTConfig"]["properties"]
    assert peft["rank"]["exclusiveMinimum"] == 0
    assert peft["use_rslora"]["description"]
