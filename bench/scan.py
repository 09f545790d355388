"""Scan throughput: Provenir PII + secrets vs detect-secrets alone, on a generated corpus.

    python bench/scan.py            # 100 MB corpus for Provenir; detect-secrets on a 5 MB prefix
    python bench/scan.py --mb 20 --baseline-mb 20

The corpus is SFT-style JSONL rows: mostly prose, some code-like lines, and ~2% of rows carrying
an email, phone, card, IBAN, SSN, IP or a credential. "detect-secrets alone" is the way a data
pipeline would use the library without Provenir: every default plugin run on every line, via
``detect_secrets.core.scan.scan_line`` under ``default_settings()``... which is far too slow for
100 MB (it scores every word for entropy), so it is also timed with its file-mode behaviour
(``SecretsCollection.scan_file``). It is timed on a prefix (``--baseline-mb``) because it runs
well under 1 MB/s; the MB/s figures are comparable, the totals are not.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

WORDS = (  # noqa: SIM905 - a sentence reads better than a 60-item list literal
    "the model learns a low rank update of the attention weights while the base stays frozen and "
    "evaluation uses exact match token f1 with wilson intervals so that small gains are not noise "
    "data quality matters more than size and every run records its config hash dataset hash and seed"
).split()
CODE = [
    "def train(config):\n    return Trainer(config).fit()",
    'x = {"lr": 2e-4, "steps": 100, "name": "run-1"}',
    "for i in range(10):\n    print(i * 2)",
]
SENSITIVE = [
    "email me at jane.doe@example.com",
    "call +1 415-555-2671 tomorrow",
    "card 4111 1111 1111 1111",
    "IBAN DE89 3704 0044 0532 0130 00",
    "ssn 123-45-6789",
    "server 192.168.10.20 is down",
    "use AKIAIOSFODNN7EXAMPLE for s3",
    'password = "hunter2horse"',
    "token ghp_abcdefghijklmnopqrstuvwxyzABCDEF0123",
]


def make_corpus(path: Path, mb: float, seed: int = 0) -> int:
    """Write ~``mb`` MB of JSONL rows; returns the byte size."""
    rng = random.Random(seed)
    target = int(mb * 1_000_000)
    size = 0
    with path.open("w", encoding="utf-8") as fh:
        while size < target:
            prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30))).capitalize() + "?"
            response = ". ".join(
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 20))).capitalize()
                for _ in range(rng.randint(1, 4))
            )
            if rng.random() < 0.1:
                response += "\n" + rng.choice(CODE)
            if rng.random() < 0.02:
                response += " " + rng.choice(SENSITIVE)
            line = json.dumps({"prompt": prompt, "response": response}) + "\n"
            fh.write(line)
            size += len(line.encode())
    return size


def bench_provenir(path: Path) -> tuple[float, dict]:
    from provenir.governance.scanners import scan_dataset

    start = time.perf_counter()
    summary = scan_dataset(str(path))
    return time.perf_counter() - start, summary.to_dict(max_findings=0)


def bench_detect_secrets_scan_line(path: Path) -> tuple[float, int]:
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    found = 0
    start = time.perf_counter()
    with default_settings(), path.open(encoding="utf-8") as fh:
        for row in fh:
            for value in json.loads(row).values():
                for line in value.splitlines():
                    found += sum(1 for _ in scan_line(line))
    return time.perf_counter() - start, found


def bench_detect_secrets_file(path: Path) -> tuple[float, int]:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    start = time.perf_counter()
    with default_settings():
        secrets = SecretsCollection()
        secrets.scan_file(str(path))
    return time.perf_counter() - start, sum(len(v) for v in secrets.data.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, default=100.0, help="corpus size for the Provenir scan (MB)")
    parser.add_argument(
        "--baseline-mb", type=float, default=5.0, help="prefix size for the detect-secrets runs (MB)"
    )
    parser.add_argument(
        "--scan-line-mb", type=float, default=0.5, help="prefix size for detect-secrets scan_line (MB)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        t0 = time.perf_counter()
        size = make_corpus(corpus, args.mb)
        print(f"corpus: {size / 1e6:.1f} MB generated in {time.perf_counter() - t0:.1f}s")

        elapsed, summary = bench_provenir(corpus)
        pii = {k: v for k, v in summary["pii"]["counts"].items() if v}
        print(
            f"provenir PII+secrets : {size / 1e6 / elapsed:7.2f} MB/s  "
            f"({size / 1e6:.1f} MB in {elapsed:.1f}s; "
            f"{summary['rows_scanned']} rows; PII {pii}; secrets {summary['secrets']['counts']})"
        )

        for label, mb, fn in (
            ("detect-secrets file  ", args.baseline_mb, bench_detect_secrets_file),
            ("detect-secrets adhoc ", args.scan_line_mb, bench_detect_secrets_scan_line),
        ):
            prefix = Path(tmp) / f"prefix-{mb}.jsonl"
            psize = make_corpus(prefix, min(mb, args.mb))
            took, found = fn(prefix)
            print(
                f"{label}: {psize / 1e6 / took:7.2f} MB/s  "
                f"({psize / 1e6:.1f} MB prefix in {took:.1f}s; {found} findings)"
            )


if __name__ == "__main__":
    main()
