"""Loading a trained policy and sampling from it: shared by evaluation, RLAIF and the flywheel.

Batched generation uses left padding so every prompt's last token sits next to the first
generated one, which decoder-only models need. Sampling is seeded per call, so the same
policy, prompts and seed give the same completions on one machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provenir.core.config import RunConfig
from provenir.core.library_output import quiet_libraries


def load_policy(config: RunConfig, weights_dir: Path | None = None) -> tuple[Any, Any, str]:
    """``(model, tokenizer, device)``: the base model of ``config``, plus a run's adapter or full weights.

    ``weights_dir`` is a run's ``adapter/`` (LoRA on top of the base model) or ``model/``
    (full fine-tune); ``None`` loads the base model alone.
    """
    from provenir.core.errors import ConfigError
    from provenir.train.backends.trl_backend import load_model, load_tokenizer, resolve_device
    from provenir.train.model_files import model_folder

    # Both checks come before torch loads anything: a missing folder fails in a second, in one line.
    base_path = str(model_folder(config.model_name_or_path, config.model_revision))
    if weights_dir is not None and not weights_dir.is_dir():
        raise ConfigError(f"weights folder {weights_dir} does not exist")
    device = resolve_device(config)
    if weights_dir is not None and (weights_dir / "adapter_config.json").is_file():
        from peft import PeftModel

        tokenizer = load_tokenizer(str(weights_dir))
        base = load_model(config, base_path, device)
        with quiet_libraries():
            model = PeftModel.from_pretrained(base, str(weights_dir))
    elif weights_dir is not None:
        tokenizer = load_tokenizer(str(weights_dir))
        model = load_model(config, str(weights_dir), device)
    else:
        tokenizer = load_tokenizer(base_path)
        model = load_model(config, base_path, device)
    if not (config.peft.load_in_4bit or config.peft.load_in_8bit):
        model.to(device)
    model.eval()
    return model, tokenizer, device


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    batch_size: int = 8,
    num_return_sequences: int = 1,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int | None = None,
    strip: bool = True,
    first_index: int = 0,
) -> list[list[str]]:
    """``num_return_sequences`` completions per prompt (only the new text, stripped), in prompt order.

    Sampling is seeded per batch, from ``seed`` and the index of the batch's first prompt
    (:func:`batch_seed`); ``first_index`` is the index of ``prompts[0]`` in a larger list, so
    batches generated apart (on several workers) sample exactly what one call samples.

    ``strip=False`` returns the text exactly as decoded, leading space included: what a
    preference pair must hold to train on the tokens the policy sampled.
    The model's train/eval mode and the tokenizer's padding side are restored afterwards, so
    this is safe in the middle of training.
    """
    import torch

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    was_training = model.training
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    model.eval()
    device = next(model.parameters()).device
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p} if do_sample else {"do_sample": False}
    )
    out: list[list[str]] = []
    try:
        with torch.no_grad(), quiet_libraries():
            for start in range(0, len(prompts), batch_size):
                batch = list(prompts[start : start + batch_size])
                if seed is not None:
                    torch.manual_seed(batch_seed(seed, first_index + start))
                enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                generated = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    num_return_sequences=num_return_sequences,
                    pad_token_id=tokenizer.pad_token_id,
                    **sampling,
                )
                texts = tokenizer.batch_decode(
                    generated[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
                )
                for i in range(len(batch)):
                    chunk = texts[i * num_return_sequences : (i + 1) * num_return_sequences]
                    out.append([t.strip() for t in chunk] if strip else chunk)
    finally:
        tokenizer.padding_side = old_side
        if was_training:
            model.train()
    return out


def batch_seed(seed: int, first_index: int) -> int:
    """The seed of the batch starting at prompt ``first_index``: ``seed`` itself for the first
    batch (so a single batch samples as it always did), a SHA-256 derivation for the others."""
    if first_index == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{first_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def generate_predictions(
    model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int = 32, batch_size: int = 8
) -> list[str]:
    """One greedy completion per prompt."""
    return [
        c[0]
        for c in generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    ]
