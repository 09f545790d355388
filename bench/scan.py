"""Secret recall per type on a labelled corpus, and scan throughput: Provenir vs detect-secrets alone.

    python bench/scan.py            # recall table; 100 MB corpus for Provenir; detect-secrets on a 5 MB prefix
    python bench/scan.py --mb 20 --baseline-mb 20 --per-type 100

Recall: :mod:`provenir.testing.secret_samples` generates ``--per-type`` realistic secrets of every
type, each embedded in a line of prose, code, config, a log or a URL, plus look-alike negatives.
A secret counts as *found* when a finding covers it whole; a *partial* mask covers only some of
it (what is left is in clear after masking); the last lines count look-alike negatives with any
finding. Provenir
is :class:`~provenir.governance.scanners.SecretScanner`; detect-secrets is run in file mode
(``SecretsCollection.scan_file``) and ad hoc (``scan_line``), each reported value located in its
line, the span a masker using it would replace.

Throughput: the corpus is SFT-style JSONL rows: mostly prose, some code-like lines, and ~2% of rows carrying
an email, phone, card, IBAN, SSN, IP or a credential. "detect-secrets alone" is the way a data
pipeline would use the library without Provenir: every default plugin run on every line, via
``detect_secrets.core.scan.scan_line`` under ``default_settings()``... which is far too slow for
100 MB (it scores every word for entropy), so it is also timed with its file-mode behaviour
(``SecretsCollection.scan_file``). It is timed on a prefix (``--baseline-mb``) because it runs
well under 1 MB/s; the MB/s figures are comparable, the totals are not. Each rate is given per
wall-clock second and per CPU-second of this process: on a machine shared with other work the
second is the fair comparison.
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


class Clock:
    """Wall-clock and CPU seconds of a block: on a shared machine the CPU time is the fair one."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def rate(self, size: int) -> str:
        return f"{size / 1e6 / self.wall:7.2f} MB/s wall, {size / 1e6 / self.cpu:7.2f} MB/s per CPU-second"


def bench_provenir(path: Path, *, pii: bool = True) -> tuple[Clock, dict]:
    from provenir.governance.scanners import scan_dataset

    scan_dataset([{"text": "warm-up AKIAIOSFODNN7EXAMPLE"}], pii=pii)  # imports out of the timing
    with Clock() as clock:
        summary = scan_dataset(str(path), pii=pii)
    return clock, summary.to_dict(max_findings=0)


# -- recall on the labelled corpus ------------------------------------------------------------

Span = tuple[int, int]


def spans_provenir(texts: list[str]) -> list[list[Span]]:
    from provenir.governance.scanners import SecretScanner

    scanner = SecretScanner()
    return [[(f.start, f.end) for f in scanner.scan_text(t)] for t in texts]


def _line_offsets(texts: list[str]) -> tuple[str, list[int], list[int]]:
    """The texts joined one after another, each text's start, and each line's start (1-based lines)."""
    whole = "\n".join(texts)
    starts, pos = [], 0
    for t in texts:
        starts.append(pos)
        pos += len(t) + 1
    line_starts = [0] + [i + 1 for i, ch in enumerate(whole) if ch == "\n"]
    return whole, starts, line_starts


def _value_spans(
    texts: list[str], found: list[tuple[int, str]], whole: str, starts: list[int], line_starts: list[int]
) -> list[list[Span]]:
    """Map ``(line number, reported value)`` to spans inside each text."""
    import bisect

    out: list[list[Span]] = [[] for _ in texts]
    for line_no, value in found:
        begin = line_starts[line_no - 1]
        end = whole.find("\n", begin)
        line = whole[begin : end if end >= 0 else len(whole)]
        at = line.find(value) if value else -1
        if at < 0:
            continue
        g = begin + at
        i = bisect.bisect_right(starts, g) - 1
        out[i].append((g - starts[i], g - starts[i] + len(value)))
    return out


def spans_detect_secrets_file(texts: list[str]) -> list[list[Span]]:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    whole, starts, line_starts = _line_offsets(texts)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labelled.txt"
        path.write_text(whole, encoding="utf-8")
        with default_settings():
            collection = SecretsCollection()
            collection.scan_file(str(path))
    found = [(s.line_number, s.secret_value or "") for ss in collection.data.values() for s in ss]
    return _value_spans(texts, found, whole, starts, line_starts)


def spans_detect_secrets_adhoc(texts: list[str]) -> list[list[Span]]:
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    whole, starts, line_starts = _line_offsets(texts)
    found = []
    with default_settings():
        for n, line in enumerate(whole.split("\n"), start=1):
            found += [(n, s.secret_value or "") for s in scan_line(line)]
    return _value_spans(texts, found, whole, starts, line_starts)


def coverage(span: Span, found: list[Span]) -> str:
    """``found`` (the secret covered whole), ``partial`` or ``missed``."""
    start, end = span
    covered = set()
    for s, e in found:
        covered.update(range(max(s, start), min(e, end)))
    if len(covered) == end - start:
        return "found"
    return "partial" if covered else "missed"


def recall_table(per_type: int, seed: int = 0) -> list[str]:
    from provenir.testing.secret_samples import SECRET_TYPES, labelled_samples, negative_samples

    samples = labelled_samples(per_type, seed=seed)
    negatives = negative_samples()
    texts = [s.text for s in samples] + negatives
    scanners = {
        "provenir": spans_provenir,
        "ds-file": spans_detect_secrets_file,
        "ds-adhoc": spans_detect_secrets_adhoc,
    }
    results = {}
    for name, fn in scanners.items():
        start = time.perf_counter()
        results[name] = (fn(texts), time.perf_counter() - start)
    header = f"{'secret type':<24}{'n':>5}" + "".join(
        f"{name + ' recall':>18}{'partial':>9}" for name in scanners
    )
    lines = [header, "-" * len(header)]
    totals = {name: [0, 0] for name in scanners}
    for stype in SECRET_TYPES:
        idx = [i for i, s in enumerate(samples) if s.type == stype]
        row = f"{stype:<24}{len(idx):>5}"
        for name in scanners:
            kinds = [coverage((samples[i].start, samples[i].end), results[name][0][i]) for i in idx]
            found, partial = kinds.count("found"), kinds.count("partial")
            totals[name][0] += found
            totals[name][1] += partial
            row += f"{found / len(idx):>18.3f}{partial:>9}"
        lines.append(row)
    lines.append("-" * len(header))
    row = f"{'all':<24}{len(samples):>5}"
    for name in scanners:
        row += f"{totals[name][0] / len(samples):>18.3f}{totals[name][1]:>9}"
    lines.append(row)
    fps = {name: sum(1 for spans in results[name][0][len(samples) :] if spans) for name in scanners}
    lines.append(
        f"look-alike negatives with a finding (of {len(negatives)}): "
        + ", ".join(f"{name} {fps[name]}" for name in scanners)
    )
    lines.append(
        "labelled corpus scan time: " + ", ".join(f"{name} {results[name][1]:.1f}s" for name in scanners)
    )
    return lines


# -- throughput -------------------------------------------------------------------------------


def bench_detect_secrets_scan_line(path: Path) -> tuple[Clock, int]:
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    found = 0
    with Clock() as clock, default_settings(), path.open(encoding="utf-8") as fh:
        for row in fh:
            for value in json.loads(row).values():
                for line in value.splitlines():
                    found += sum(1 for _ in scan_line(line))
    return clock, found


def bench_detect_secrets_file(path: Path) -> tuple[Clock, int]:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    with Clock() as clock, default_settings():
        secrets = SecretsCollection()
        secrets.scan_file(str(path))
    return clock, sum(len(v) for v in secrets.data.values())


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
    parser.add_argument("--per-type", type=int, default=200, help="labelled secrets per type for recall")
    parser.add_argument("--skip-throughput", action="store_true", help="only print the recall table")
    args = parser.parse_args()

    print(f"recall on a labelled corpus ({args.per_type} secrets per type, in context):")
    for line in recall_table(args.per_type):
        print("  " + line)
    if args.skip_throughput:
        return

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        t0 = time.perf_counter()
        size = make_corpus(corpus, args.mb)
        print(f"corpus: {size / 1e6:.1f} MB generated in {time.perf_counter() - t0:.1f}s")

        clock, summary = bench_provenir(corpus)
        pii = {k: v for k, v in summary["pii"]["counts"].items() if v}
        print(
            f"provenir PII+secrets : {clock.rate(size)}  "
            f"({size / 1e6:.1f} MB in {clock.wall:.1f}s; "
            f"{summary['rows_scanned']} rows; PII {pii}; secrets {summary['secrets']['counts']})"
        )
        clock, summary = bench_provenir(corpus, pii=False)
        print(
            f"provenir secrets only: {clock.rate(size)}  "
            f"({size / 1e6:.1f} MB in {clock.wall:.1f}s; secrets {summary['secrets']['counts']})"
        )

        for label, mb, fn in (
            ("detect-secrets file  ", args.baseline_mb, bench_detect_secrets_file),
            ("detect-secrets adhoc ", args.scan_line_mb, bench_detect_secrets_scan_line),
        ):
            prefix = Path(tmp) / f"prefix-{mb}.jsonl"
            psize = make_corpus(prefix, min(mb, args.mb))
            clock, found = fn(prefix)
            print(
                f"{label}: {clock.rate(psize)}  ({psize / 1e6:.1f} MB prefix in {clock.wall:.1f}s; {found} findings)"
            )


if __name__ == "__main__":
    main()
