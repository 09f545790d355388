"""Overhead of running a job through Provenir vs a raw TRL SFT loop, same job, same process.

Both train the built-in tiny Llama with the same LoRA, data, seed and arguments. The raw side
is written directly against TRL + PEFT; the Provenir side is ``provenir.train.runner.train``
(data validation, hashing, manifest, progress bar included). Repetitions alternate so drift
hits both sides; medians are printed.

* loop ratio: ``trainer.train()`` wall time, Provenir / raw (goal <= 1.03)
* end-to-end ratio: whole job incl. model load and Provenir's hashing + manifest

    python bench/overhead.py [--steps 40] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from provenir.core.config import RunConfig
from provenir.data.loading import load_train_data
from provenir.data.templates import TEMPLATE_REGISTRY
from provenir.train.runner import train
from provenir.train.tiny_model import ensure_tiny_model


def raw_trl(config: RunConfig, model_dir: Path, out: Path) -> tuple[float, float, float]:
    """(train-loop seconds, train-loop CPU seconds, end-to-end seconds) of a hand-written TRL SFT job."""
    started = time.perf_counter()
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    pairs = [TEMPLATE_REGISTRY.split("alpaca", r) for r in load_train_data(config).train]
    rows = [{"prompt": p, "completion": c} for p, c in pairs]
    args = SFTConfig(
        output_dir=str(out),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        logging_steps=1,
        save_strategy="no",
        seed=config.seed,
        data_seed=config.seed,
        full_determinism=True,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        bf16=False,  # TRL defaults to bf16 when fp16 is unset; the config asks for fp32
        gradient_checkpointing=config.gradient_checkpointing,
        max_length=config.max_length,
    )
    peft = LoraConfig(
        r=config.peft.rank,
        lora_alpha=config.peft.alpha,
        lora_dropout=config.peft.dropout,
        target_modules=config.peft.target_modules,
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft,
    )
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    t, c = time.perf_counter(), time.process_time()
    trainer.train()
    loop, cpu = time.perf_counter() - t, time.process_time() - c
    trainer.model.save_pretrained(out / "adapter")
    return loop, cpu, time.perf_counter() - started


def provenir_job(config: RunConfig) -> tuple[float, float, float]:
    """(train-loop seconds, train-loop CPU seconds, end-to-end seconds) through Provenir."""
    started = time.perf_counter()
    manifest = train(config)
    return manifest.metrics["train_runtime_s"], manifest.metrics["train_cpu_s"], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model_dir = ensure_tiny_model()
    with tempfile.TemporaryDirectory() as tmp:
        config = RunConfig.from_dict(
            {
                "output_dir": str(Path(tmp) / "artifacts"),
                "max_steps": args.steps,
                "batch_size": 8,
                "learning_rate": 1e-3,
                "peft": {"rank": 8, "alpha": 16},
            }
        )
        raw_trl(config, model_dir, Path(tmp) / "warm")  # warm-up: imports, allocator, page cache
        raw: list[tuple[float, float, float]] = []
        ours: list[tuple[float, float, float]] = []
        for i in range(args.repeats):
            raw.append(raw_trl(config, model_dir, Path(tmp) / f"raw{i}"))
            ours.append(provenir_job(config))
    med = statistics.median
    raw_loop, raw_cpu, raw_total = (list(x) for x in zip(*raw, strict=True))
    our_loop, our_cpu, our_total = (list(x) for x in zip(*ours, strict=True))
    print(f"{args.steps} SFT steps, batch 8, tiny Llama, CPU; {args.repeats} alternating repeats (medians)")
    print(
        f"train loop   raw TRL {med(raw_loop):.3f} s   provenir {med(our_loop):.3f} s   "
        f"ratio {med(our_loop) / med(raw_loop):.3f} (goal <= 1.03)"
    )
    print(
        f"loop CPU     raw TRL {med(raw_cpu):.3f} s   provenir {med(our_cpu):.3f} s   "
        f"ratio {med(our_cpu) / med(raw_cpu):.3f} (CPU time: less sensitive to other load)"
    )
    print(
        f"end to end   raw TRL {med(raw_total):.3f} s   provenir {med(our_total):.3f} s   "
        f"ratio {med(our_total) / med(raw_total):.3f}"
    )


if __name__ == "__main__":
    main()
