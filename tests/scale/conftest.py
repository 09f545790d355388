"""One local Ray cluster (2 CPUs) shared by the Ray tests: start-up costs ~10 s.

A test elsewhere may stop it (Ray Train's launcher test needs no Ray running, to check that the
launcher stops the Ray it starts); the next test here that needs it starts it again.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

import provenir


@pytest.fixture(scope="session")
def ray_environment() -> Iterator[None]:
    """The environment Ray's workers inherit, set once; the shared Ray is stopped at the end."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'provenir[ray]')")
    # Ray's workers inherit this environment: they must import this checkout's provenir, and the
    # test modules whose helpers (fault injectors) they unpickle.
    src = str(Path(provenir.__file__).resolve().parents[1])
    here = str(Path(__file__).resolve().parent)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "PYTHONPATH", os.pathsep.join([src, here, *filter(None, [os.environ.get("PYTHONPATH")])])
        )
        yield
        if ray.is_initialized():
            ray.shutdown()


@pytest.fixture()
def ray_cluster(ray_environment: None) -> None:
    """``ray.init(num_cpus=2)`` unless it is running; skipped when ray (the ``ray`` extra) is not installed."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """A 1,500-row JSONL file mixing PII, secrets, clean prose and blank lines (deterministic)."""
    path = tmp_path / "corpus.jsonl"
    rng = random.Random(0)
    texts = [
        "hello world, nothing to see",
        "mail me at jane.roe{i}@example.com please",
        "call +1 415 555 {i:04d} tonight",
        'the key is "AKIAIOSFODNN7EXAMPLE" in prod',
        "LoRA adapts a low-rank update",
    ]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(1500):
            row = {
                "prompt": rng.choice(texts).format(i=i % 10000),
                "response": rng.choice(["ok", "ssn 078-05-1120"]),
            }
            fh.write(json.dumps(row) + "\n")
            if i % 97 == 0:
                fh.write("\n")
    return path
