"""Dataset-hash throughput: provenir.core.hashing.sha256_file vs coreutils sha256sum.

Generates a file (1 GiB by default) once, warms the page cache, then times both on the same
bytes, alternating, and prints medians and the ratio (goal: provenir >= 0.8x sha256sum).

    python bench/hash.py [--mib 1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from provenir.core.hashing import sha256_file


def make_file(path: Path, mib: int) -> None:
    block = os.urandom(16 << 20)
    with open(path, "wb") as fh:
        for i in range(mib // 16):
            fh.write(block[i % 7 :] + block[: i % 7])  # vary blocks cheaply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.bin"
        make_file(path, args.mib)
        size_mb = path.stat().st_size / 1e6
        sha256_file(path)  # warm the page cache so both read from memory
        ours, ref = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            h_ours = sha256_file(path)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            h_ref = subprocess.run(
                ["sha256sum", str(path)], capture_output=True, text=True, check=True
            ).stdout.split()[0]
            ref.append(time.perf_counter() - t)
            assert h_ours == h_ref, "hash mismatch"
        m_ours, m_ref = statistics.median(ours), statistics.median(ref)
        print(f"file: {size_mb:.0f} MB, repeats: {args.repeats} (medians)")
        print(f"provenir sha256_file: {m_ours:.3f} s  {size_mb / m_ours:.0f} MB/s")
        print(f"sha256sum:            {m_ref:.3f} s  {size_mb / m_ref:.0f} MB/s")
        print(f"throughput ratio provenir/sha256sum: {m_ref / m_ours:.2f}x (goal >= 0.8x)")


if __name__ == "__main__":
    main()
