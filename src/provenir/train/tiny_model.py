"""The built-in offline model ``provenir/tiny-llama``.

A small ``LlamaForCausalLM`` and a byte-level BPE tokenizer, both built deterministically from
the corpus and sample datasets bundled in :mod:`provenir.data.builtin`, then pretrained for a few
hundred steps so that it produces text rather than noise. It is built once per machine into
``$PROVENIR_HOME/models`` (default ``~/.cache/provenir/models``) and loaded with
``from_pretrained`` like any local model. Tests and the demo use it; nothing touches a hub.

The sample datasets' question-answer rows are pretrained as short pages of a few rows each, like
a FAQ, so the base model, as base models do, tends to go on to another question after it has
answered: the offline RLAIF example (``examples/rlaif_offline.yaml``) teaches it to stop. The
held-out ``*-eval`` datasets are never part of the corpus.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from provenir.core.config import TINY_MODEL_ID
from provenir.core.hashing import sha256_json
from provenir.core.home import provenir_home

#: Bump when the recipe changes so a stale cached build is never reused.
RECIPE_VERSION = 2

RECIPE: dict[str, Any] = {
    "version": RECIPE_VERSION,
    "vocab_size": 1024,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "pretrain_steps": 450,
    "qa_rows_per_page": 3,
    "pretrain_batch": 16,
    "pretrain_seq_len": 64,
    "pretrain_lr": 3e-3,
    "seed": 0,
}

#: Special tokens of the chat formats Provenir ships, so every template tokenizes cleanly.
SPECIAL_TOKENS = [
    "<s>", "</s>", "<pad>",
    "<|im_start|>", "<|im_end|>",
    "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
    "[INST]", "[/INST]",
    "<|user|>", "<|assistant|>", "<|system|>", "<|end|>",
]  # fmt: skip


def cache_root() -> Path:
    """Folder under which built models are cached."""
    return provenir_home() / "models"


def _corpus_texts() -> list[str]:
    """The bundled corpus plus the sample datasets' rows, in a fixed order: one document per entry.

    Dataset rows are joined ``qa_rows_per_page`` at a time into one document, so an answer is
    followed by the next question more often than by the end of the document.
    """
    builtin = resources.files("provenir.data") / "builtin"
    texts = [p for p in (builtin / "corpus.txt").read_text(encoding="utf-8").splitlines() if p.strip()]
    per_page = RECIPE["qa_rows_per_page"]
    for name in ("sft_sample.jsonl", "dpo_sample.jsonl", "prompts_sample.jsonl"):
        rows = [json.loads(line) for line in (builtin / name).read_text(encoding="utf-8").splitlines()]
        flat = [" ".join(str(row[k]) for k in sorted(row)) for row in rows]
        texts += [" ".join(flat[i : i + per_page]) for i in range(0, len(flat), per_page)]
    return texts


def recipe_hash() -> str:
    """Hash of the recipe and the corpus: the cache key of the build."""
    return sha256_json({"recipe": RECIPE, "corpus": _corpus_texts()})


def tiny_model_dir() -> Path:
    """Where the current recipe's build lives (whether or not it is built yet)."""
    return cache_root() / f"tiny-llama-v{RECIPE_VERSION}-{recipe_hash()[:12]}"


def ensure_tiny_model() -> Path:
    """Build the tiny model if it is not cached yet; return its folder.

    Safe when several processes call it at once: one builds under a file lock into a
    temporary folder that is renamed into place, the others wait and reuse it.
    """
    from filelock import FileLock

    target = tiny_model_dir()
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=".tiny-llama-", dir=target.parent))
        try:
            build_tiny_model(tmp)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def resolve_model_path(name_or_path: str) -> str:
    """Map the built-in id to its local folder; any other path or hub id is returned unchanged."""
    if name_or_path == TINY_MODEL_ID:
        return str(ensure_tiny_model())
    return name_or_path


def build_tiny_model(out_dir: Path, pretrain_steps: int | None = None) -> None:
    """Train the tokenizer, initialise and briefly pretrain the model, save both to ``out_dir``.

    ``pretrain_steps`` overrides the recipe (tests of the build itself use a few steps).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from provenir.train.seed import set_seed

    texts = _corpus_texts()
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=RECIPE["vocab_size"],
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>", model_max_length=512
    )
    tokenizer.padding_side = "right"

    set_seed(RECIPE["seed"])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=RECIPE["hidden_size"],
        intermediate_size=RECIPE["intermediate_size"],
        num_hidden_layers=RECIPE["num_hidden_layers"],
        num_attention_heads=RECIPE["num_attention_heads"],
        num_key_value_heads=RECIPE["num_key_value_heads"],
        max_position_embeddings=RECIPE["max_position_embeddings"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)

    # A stream of "<s> text </s>" packed into fixed-length windows, drawn in a seeded order.
    ids: list[int] = []
    for text in texts:
        ids += [
            tokenizer.bos_token_id,
            *tokenizer.encode(text, add_special_tokens=False),
            tokenizer.eos_token_id,
        ]
    seq = RECIPE["pretrain_seq_len"]
    stream = torch.tensor(ids, dtype=torch.long)
    generator = torch.Generator().manual_seed(RECIPE["seed"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=RECIPE["pretrain_lr"], weight_decay=0.0)
    steps = RECIPE["pretrain_steps"] if pretrain_steps is None else pretrain_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - s / steps)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        starts = torch.randint(0, len(stream) - seq - 1, (RECIPE["pretrain_batch"],), generator=generator)
        batch = torch.stack([stream[s : s + seq] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "provenir_recipe.json").write_text(
        json.dumps(
            {"recipe": RECIPE, "final_pretrain_loss": loss.item(), "recipe_hash": recipe_hash()}, indent=2
        )
    )
