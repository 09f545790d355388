"""Per-item scoring of one lm-eval task through Provenir vs lm-eval's ``simple_evaluate`` alone.

Same task (a multiple-choice arithmetic YAML over local JSONL), same tiny model and 3-step LoRA
adapter, same batch size, both models (base and base + adapter), same process:

* lm-eval alone: ``simple_evaluate`` on the base model, then with ``peft=<adapter>``, both with
  ``log_samples=True`` and lm-eval's default settings otherwise;
* Provenir: ``evaluate_tasks`` (both ``simple_evaluate`` runs, the adapter-applied check, per-item
  EvalResults with Wilson intervals, the paired McNemar/bootstrap comparison, the files written
  and the manifest re-sealed).

One warm-up of each side is not timed (dataset cache, imports); the repetitions alternate so
drift hits both; medians of wall time and of process CPU time (steadier on a shared machine)
are printed with their ratios (goal <= 1.1x). Torch runs on ``--threads`` threads (default 1)
so the two sides compete for the same cores in the same way.

    python bench/lm_eval_scoring.py [--items 200] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from provenir.core.config import RunConfig
from provenir.core.store import RunStore
from provenir.train.lm_eval_tasks import evaluate_tasks
from provenir.train.runner import train
from provenir.train.tiny_model import ensure_tiny_model

TASK = "bench_arith_mc"


def write_task(folder: Path, items: int) -> Path:
    """A multiple-choice sums task over ``items`` local JSONL rows; returns the YAML path."""
    rng = random.Random(0)
    rows = []
    for _ in range(items):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        choices = [str(a + b + d) for d in (0, 1, -1, 10)]
        rng.shuffle(choices)
        rows.append({"question": f"{a}+{b}=", "choices": choices, "label": choices.index(str(a + b))})
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "arith.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    yaml = folder / "arith.yaml"
    yaml.write_text(
        f"task: {TASK}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{question}}'\n"
        "doc_to_choice: '{{choices}}'\ndoc_to_target: label\n"
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n",
        encoding="utf-8",
    )
    return yaml


def lm_eval_alone(model_dir: Path, adapter: Path, yaml: Path, batch_size: int) -> dict[str, Any]:
    """Both models through ``simple_evaluate`` alone; the two outputs."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    out = {}
    for which, extra in (("base", {}), ("tuned", {"peft": str(adapter)})):
        out[which] = lm_eval.simple_evaluate(
            model="hf",
            model_args={"pretrained": str(model_dir), "dtype": "float32", **extra},
            tasks=[TASK],
            task_manager=TaskManager(include_path=str(yaml.parent), include_defaults=False),
            batch_size=batch_size,
            device="cpu",
            log_samples=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    model_dir = ensure_tiny_model()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        yaml = write_task(root / "tasks", args.items)
        config = RunConfig.from_dict(
            {
                "name": "bench-lm-eval",
                "output_dir": str(root / "artifacts"),
                "max_steps": 3,
                "batch_size": 4,
                "learning_rate": 5e-3,
                "peft": {"rank": 4, "alpha": 8},
                "data": {"max_samples": 16},
            }
        )
        manifest = train(config)
        store = RunStore(root / "artifacts")
        manifest_path = store.manifest_path(manifest.run_id)
        adapter = store.run_dir(manifest.run_id) / "adapter"

        def provenir() -> tuple[float, float]:
            wall, cpu = time.perf_counter(), time.process_time()
            evaluate_tasks(manifest_path, [str(yaml)], batch_size=args.batch_size, device="cpu")
            return time.perf_counter() - wall, time.process_time() - cpu

        def alone() -> tuple[float, float]:
            wall, cpu = time.perf_counter(), time.process_time()
            lm_eval_alone(model_dir, adapter, yaml, args.batch_size)
            return time.perf_counter() - wall, time.process_time() - cpu

        provenir(), alone()  # warm-up: dataset cache, lazy imports
        times: dict[str, list[tuple[float, float]]] = {"provenir": [], "alone": []}
        for i in range(args.repeats):
            order = [("provenir", provenir), ("alone", alone)]
            for name, fn in order if i % 2 == 0 else reversed(order):
                times[name].append(fn())
    print(
        f"task {TASK}: {args.items} items x 4 choices, base + adapter, batch {args.batch_size}, "
        f"{args.threads} torch thread(s), median of {args.repeats}"
    )
    for k, label in ((0, "wall"), (1, "CPU")):
        p = statistics.median(t[k] for t in times["provenir"])
        a = statistics.median(t[k] for t in times["alone"])
        print(f"{label:>4}: lm-eval alone {a:.2f}s {[round(t[k], 2) for t in times['alone']]}")
        print(f"{label:>4}: Provenir      {p:.2f}s {[round(t[k], 2) for t in times['provenir']]}")
        print(f"{label:>4}: ratio Provenir / lm-eval alone {p / a:.3f}x (goal <= 1.1x)")


if __name__ == "__main__":
    main()
