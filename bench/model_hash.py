"""Model-pinning speed: provenir.train.model_files.pin_model vs coreutils sha256sum.

Generates a sharded safetensors model folder (4 x 1 GiB shards of random bytes in valid
safetensors containers, plus the index and a config) in a temporary folder, reads it once so
the page cache is warm for both contenders, then times on the same files, alternating which
goes first:

* cold pin: ``pin_model`` with a fresh, empty digest cache (threads, one per available CPU);
* ``sha256sum`` over the same files (one process, files in turn).

Then a warm pin (digest cache filled by the last cold pin), and ``hash_files`` on one thread
without the cache, which separates hashlib's speed from the threads' gain. Prints medians and deletes the
folder. Goals: cold pin >= 1.0x sha256sum; warm pin < 0.5 s.

    python bench/model_hash.py [--shards 4] [--shard-mib 1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from provenir.core.digests import default_workers, hash_files
from provenir.train.model_files import pin_model

_BLOCK = 16 << 20


def write_shard(path: Path, tensor: str, mib: int) -> None:
    """One safetensors file holding a single uint8 tensor of ``mib`` MiB, written in blocks."""
    n = mib << 20
    header = json.dumps(
        {"__metadata__": {"format": "pt"}, tensor: {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}
    ).encode()
    header += b" " * (-len(header) % 8)  # the format pads the header to 8 bytes
    block = os.urandom(_BLOCK)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        for i in range(n // _BLOCK):
            fh.write(block[i % 61 :] + block[: i % 61])  # distinct blocks, cheaply


def make_model(folder: Path, shards: int, mib: int) -> list[Path]:
    """A from_pretrained-shaped folder; small files first so every file is old by the first pin."""
    names = [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "torch_dtype": "uint8"}))
    index = {
        "metadata": {"total_size": shards * (mib << 20)},
        "weight_map": {f"layers.{i}.weight": name for i, name in enumerate(names)},
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    for i, name in enumerate(names):
        write_shard(folder / name, f"layers.{i}.weight", mib)
    return sorted(folder.iterdir())


def sha256sum(files: list[Path]) -> dict[str, str]:
    out = subprocess.run(["sha256sum", *map(str, files)], capture_output=True, text=True, check=True).stdout
    return {Path(line.split(maxsplit=1)[1].strip()).name: line.split()[0] for line in out.splitlines()}


def timed_pin(folder: Path, home: Path) -> tuple[float, dict[str, str]]:
    os.environ["PROVENIR_HOME"] = str(home)
    t = time.perf_counter()
    pin = pin_model(str(folder))
    return time.perf_counter() - t, pin.files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--shard-mib", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    saved_home = os.environ.get("PROVENIR_HOME")
    try:
        with tempfile.TemporaryDirectory(prefix="provenir-bench-") as tmp:
            folder = Path(tmp) / "model"
            folder.mkdir()
            files = make_model(folder, args.shards, args.shard_mib)
            size_mb = sum(f.stat().st_size for f in files) / 1e6
            reference = sha256sum(files)  # warms the page cache for both contenders
            ours, ref, home = [], [], Path(tmp)
            for r in range(args.repeats):
                home = Path(tmp) / f"home-{r}"  # a fresh, empty digest cache per cold pin
                if r % 2 == 0:
                    t_ours, pinned = timed_pin(folder, home)
                    t = time.perf_counter()
                    sums = sha256sum(files)
                    t_ref = time.perf_counter() - t
                else:
                    t = time.perf_counter()
                    sums = sha256sum(files)
                    t_ref = time.perf_counter() - t
                    t_ours, pinned = timed_pin(folder, home)
                assert pinned == sums == reference, "hash mismatch"
                ours.append(t_ours)
                ref.append(t_ref)
            warm = [timed_pin(folder, home)[0] for _ in range(args.repeats)]
            serial = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                hash_files(files, workers=1, cache=False)
                serial.append(time.perf_counter() - t)
            m_serial = statistics.median(serial)
            m_ours, m_ref, m_warm = statistics.median(ours), statistics.median(ref), statistics.median(warm)
            print(
                f"model: {len(files)} files, {size_mb:.0f} MB ({args.shards} x {args.shard_mib} MiB shards), "
                f"repeats: {args.repeats} (medians), page cache warm for both, order alternated"
            )
            print(f"workers: {default_workers(len(files))} threads on {os.cpu_count()} CPUs")
            print(f"cold pin_model (empty cache): {m_ours:.3f} s  {size_mb / m_ours:.0f} MB/s")
            print(f"sha256sum (one process):      {m_ref:.3f} s  {size_mb / m_ref:.0f} MB/s")
            print(f"ratio sha256sum/cold pin: {m_ref / m_ours:.2f}x (goal >= 1.0x)")
            print(
                f"one thread, no cache:         {m_serial:.3f} s  {size_mb / m_serial:.0f} MB/s (hashlib alone)"
            )
            print(f"warm pin_model (cached):      {m_warm:.3f} s (goal < 0.5 s)")
    finally:
        if saved_home is None:
            os.environ.pop("PROVENIR_HOME", None)
        else:
            os.environ["PROVENIR_HOME"] = saved_home


if __name__ == "__main__":
    main()
