"""peft.use_dora, peft.modules_to_save and peft.init, trained for real on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import ConfigError
from provenir.core.store import RunStore
from provenir.train.runner import train

pytestmark = pytest.mark.slow


def peft_config(out: Path, peft: dict[str, Any], **overrides: Any) -> RunConfig:
    base: dict[str, Any] = {
        "name": "peft-options",
        "output_dir": str(out),
        "max_steps": 2,
        "batch_size": 4,
        "learning_rate": 5e-3,
        "gradient_checkpointing": False,
        "peft": {"rank": 4, "alpha": 8, **peft},
        "data": {"max_samples": 8},
    }
    base.update(overrides)
    return RunConfig.from_dict(base)


def saved_adapter(out: Path, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(adapter_config.json, tensors) of a run's saved adapter."""
    from safetensors.torch import load_file

    folder = RunStore(out).run_dir(run_id) / "adapter"
    return json.loads((folder / "adapter_config.json").read_text()), load_file(
        folder / "adapter_model.safetensors"
    )


def test_dora_adapter_has_magnitude_vectors(tmp_path: Path, tiny_model_path: Path) -> None:
    manifest = train(peft_config(tmp_path, {"use_dora": True}))
    adapter_config, tensors = saved_adapter(tmp_path, manifest.run_id)
    assert adapter_config["use_dora"] is True
    magnitudes = [k for k in tensors if "lora_magnitude_vector" in k]
    assert len(magnitudes) == 4  # q_proj and v_proj of both layers
    assert manifest.extra["peft"]["use_dora"] is True


def test_modules_to_save_are_trained_and_saved(tmp_path: Path, tiny_model_path: Path) -> None:
    from safetensors.torch import load_file

    manifest = train(peft_config(tmp_path, {"modules_to_save": ["model.norm"]}))
    _, tensors = saved_adapter(tmp_path, manifest.run_id)
    saved = tensors["base_model.model.model.norm.weight"]
    base = load_file(tiny_model_path / "model.safetensors")["model.norm.weight"]
    assert float((saved - base).abs().max()) > 0  # trained, not a copy of the base weight
    # Only the final norm: a suffix that names one module matches one module.
    assert not any("layernorm" in k for k in tensors)


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_pissa_and_olora_move_base_weights_and_save_a_lora_for_the_original_base(
    tmp_path: Path, tiny_model_path: Path, init: str
) -> None:
    """As peft documents: W_res = W - scale * B0 @ A0 during training; saved as rank-2r LoRA on W."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from provenir.data.loading import load_train_data
    from provenir.train.backends.trl_backend import TRLBackend, save_adapter

    config = peft_config(tmp_path, {"init": init})
    backend = TRLBackend(progress=False)
    trainer, tokenizer, _ = backend.build_trainer(config, load_train_data(config), tmp_path)
    original = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32).eval()
    w = original.model.layers[0].self_attn.q_proj.weight
    layer = trainer.model.base_model.model.model.layers[0].self_attn.q_proj
    a0, b0 = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    w_res = layer.base_layer.weight
    assert float((w_res - w).detach().abs().max()) > 1e-3  # the base weight itself was rewritten
    torch.testing.assert_close(w_res + layer.scaling["default"] * b0 @ a0, w, atol=1e-5, rtol=0)

    trainer.train()
    save_adapter(trainer, tmp_path / "adapter", backend._initial_adapter)
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["r"] == 8 and saved["init_lora_weights"] is True
    batch = tokenizer(["What is LoRA?", "Name a colour."], return_tensors="pt", padding=True)
    trainer.model.eval()
    with torch.no_grad():
        trained = trainer.model(**batch).logits
        reloaded = PeftModel.from_pretrained(original, str(tmp_path / "adapter")).eval()(**batch).logits
    torch.testing.assert_close(reloaded, trained, atol=1e-4, rtol=0)


def test_the_manifest_records_the_init(tmp_path: Path, tiny_model_path: Path) -> None:
    manifest = train(peft_config(tmp_path, {"init": "pissa"}, max_steps=1))
    assert manifest.config["peft"]["init"] == "pissa"
    assert manifest.extra["peft"]["init"] == "pissa"
    assert manifest.extra["peft"]["base_weights_modified_in_training"] is True
    assert manifest.extra["peft"]["saved_rank"] == 8
    adapter_config, _ = saved_adapter(tmp_path, manifest.run_id)
    assert adapter_config["r"] == 8


def test_gaussian_init_trains(tmp_path: Path, tiny_model_path: Path) -> None:
    manifest = train(peft_config(tmp_path, {"init": "gaussian"}, max_steps=1))
    adapter_config, _ = saved_adapter(tmp_path, manifest.run_id)
    assert adapter_config["init_lora_weights"] == "gaussian" and manifest.status == "completed"


def test_loftq_is_refused_on_cpu_with_one_line(tmp_path: Path, tiny_model_path: Path) -> None:
    config = peft_config(tmp_path, {"init": "loftq"}, device="cpu")
    with pytest.raises(ConfigError, match="loftq quantises the base weights with bitsandbytes on a CUDA GPU"):
        train(config)
    manifests = RunStore(tmp_path).manifests_dir
    assert not manifests.exists() or not any(manifests.iterdir())  # refused before the run started


@pytest.mark.parametrize(
    ("peft", "fragment"),
    [
        ({"init": "pissa", "use_dora": True}, "init: pissa cannot be combined with use_dora"),
        ({"init": "olora", "modules_to_save": ["lm_head"]}, "cannot be combined with modules_to_save"),
        ({"init": "pissa", "load_in_4bit": True}, "remove load_in_4bit"),
        ({"enabled": False, "use_dora": True}, "use_dora apply to an adapter"),
    ],
)
def test_impossible_combinations_are_config_errors(peft: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        RunConfig.from_dict({"peft": peft})


def test_pissa_is_refused_for_dpo(tmp_path: Path, tiny_model_path: Path) -> None:
    config = peft_config(
        tmp_path, {"init": "pissa"}, algorithm="dpo", data={"path": "builtin:dpo-sample", "max_samples": 4}
    )
    with pytest.raises(ConfigError, match="reference model of dpo would not be the base model"):
        train(config)
