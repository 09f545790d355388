from __future__ import annotations

from pathlib import Path

import pytest

from provenir.core.config import TINY_MODEL_ID
from provenir.core.hashing import sha256_file
from provenir.train.tiny_model import build_tiny_model, resolve_model_path


def test_builtin_id_resolves_to_a_loadable_local_model(tiny_model_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert resolve_model_path(TINY_MODEL_ID) == str(tiny_model_path)
    assert resolve_model_path("some/other-model") == "some/other-model"
    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    assert model.config.model_type == "llama"
    # Chat-format markers are single special tokens, not byte soup.
    for special in ("<|im_start|>", "<|eot_id|>", "[INST]", "<|assistant|>"):
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1
    # Pretraining on the bundled corpus makes it answer a corpus question, not emit noise.
    inputs = tok("What is the capital of France?", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert "Paris" in tok.decode(out[0][inputs["input_ids"].shape[1] :])


@pytest.mark.slow
def test_build_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    build_tiny_model(a, pretrain_steps=3)
    build_tiny_model(b, pretrain_steps=3)
    for name in ("tokenizer.json", "model.safetensors", "config.json"):
        assert sha256_file(a / name) == sha256_file(b / name), name
