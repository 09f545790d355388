"""PII/secret scan throughput: local vs Ray with 1 and 2 workers, on a deterministic synthetic corpus
(prose, with 5% of its fragments holding PII or a secret; ``--sensitive-rate 1`` is the worst case,
where nearly every row holds a finding).

    PYTHONPATH=src python bench/ray_scan.py              # ~200 MB (several minutes on 2 cores)
    PYTHONPATH=src python bench/ray_scan.py --mb 20      # a quick run

Prints MB/s of each run and the ratios; the three findings files must be byte-identical (the
script exits 1 otherwise). The Ray runs use a local Ray started here with 2 CPUs; Ray's start-up
is excluded from the timings (it is paid once per cluster, not per scan).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

#: Fragments without anything to find: what most of a training corpus is.
PROSE = (
    "The adapter was trained for {n} steps on the instruction set and evaluated on held-out prompts.",
    "LoRA keeps the base weights frozen and learns a low-rank update of rank {r}.",
    "Plain prose about evaluation, confidence intervals and regression gates, item {n}.",
    "Summarise the following paragraph in two sentences, keeping every number it states ({n}).",
)
#: Fragments holding PII or a secret.
SENSITIVE = (
    "Contact jane.roe{n}@example.com or call +1 415 555 {p:04d} for the report.",
    'config = {{"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "region": "us-east-{r}"}}',
    "Her SSN 078-05-{p:04d} was in the export; the server at 10.0.{r}.{n} logged it.",
)


def write_corpus(path: Path, megabytes: float, sensitive_rate: float = 0.05, seed: int = 0) -> int:
    """Rows of prose with ``sensitive_rate`` of their fragments holding PII or secrets, until the
    file holds ``megabytes`` MB; returns its size."""
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    size = 0
    with path.open("w", encoding="utf-8") as fh:
        while size < target:
            lines = []
            for _ in range(1000):
                parts = [
                    rng.choice(SENSITIVE if rng.random() < sensitive_rate else PROSE).format(
                        n=rng.randrange(10**6), p=rng.randrange(10**4), r=rng.randrange(9)
                    )
                    for _ in range(3)
                ]
                lines.append(json.dumps({"prompt": parts[0], "response": " ".join(parts[1:])}) + "\n")
            chunk = "".join(lines)
            fh.write(chunk)
            size += len(chunk.encode())
    return path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200.0, help="Corpus size in MB (default 200).")
    parser.add_argument(
        "--sensitive-rate",
        type=float,
        default=0.05,
        help="Share of text fragments holding PII or a secret (default 0.05; 1.0 is the slow worst case).",
    )
    parser.add_argument("--skip-local", action="store_true", help="Only the two Ray runs.")
    args = parser.parse_args()

    import ray

    from provenir.core.config import ExecutorConfig
    from provenir.scale.executor import open_executor
    from provenir.scale.scan import scan_file

    with tempfile.TemporaryDirectory(prefix="provenir-ray-bench-") as tmp:
        folder = Path(tmp)
        corpus = folder / "corpus.jsonl"
        size = write_corpus(corpus, args.mb, args.sensitive_rate)
        mb = size / 1e6
        print(f"corpus: {mb:.1f} MB, {sum(1 for _ in corpus.open('rb'))} rows")
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
        rates: dict[str, float] = {}
        runs = [("ray-1", 1), ("ray-2", 2)] if args.skip_local else [("local", 0), ("ray-1", 1), ("ray-2", 2)]
        for name, workers in runs:
            config = ExecutorConfig.from_dict(
                {"executor": "local" if workers == 0 else "ray", "ray": {"num_workers": max(workers, 1)}}
            )
            with open_executor(config) as executor:
                start = time.perf_counter()
                summary = scan_file(corpus, executor=executor, findings=folder / f"{name}.jsonl")
                seconds = time.perf_counter() - start
                retries = executor.record().retries
            rates[name] = mb / seconds
            found = len(summary.pii.findings) + len(summary.secrets.findings)
            print(
                f"{name:6s} {seconds:7.1f} s  {rates[name]:6.2f} MB/s  {found} findings  retries {retries or 0}"
            )
        ray.shutdown()
        outputs = {name: (folder / f"{name}.jsonl").read_bytes() for name in rates}
        same = len(set(outputs.values())) == 1
        print(f"findings identical across runs: {same}")
        print(f"ray-2 / ray-1: {rates['ray-2'] / rates['ray-1']:.2f}x (goal >= 1.6x)")
        if "local" in rates:
            print(
                f"ray-1 / local: {rates['ray-1'] / rates['local']:.2f}x, ray-2 / local: {rates['ray-2'] / rates['local']:.2f}x"
            )
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
