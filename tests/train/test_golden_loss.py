"""Golden loss trajectory: the first 10 losses of a fixed tiny SFT job, to 1e-4.

A torch, transformers, TRL or PEFT upgrade that changes the numerics of training (initialisation,
data order, loss reduction, optimiser) must fail loudly here rather than slip into runs whose
reproductions then differ. If the change is understood and wanted, re-record:

    PYTHONPATH=src python tests/train/test_golden_loss.py

and paste the printed values, CPU capability and library versions over the ones below (in the
same commit as the upgrade, saying why the numbers moved).

Float results depend on the instruction set torch's CPU kernels use (AVX2 and AVX-512 kernels sum
in different orders), so the values are tied to the capability they were recorded on; on another
the test is skipped with the reason, not failed. The thread count does not change them (checked
with 1 and 2 threads when recording).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

#: torch.backends.cpu.get_cpu_capability() and platform.machine() where GOLDEN_LOSSES were recorded.
RECORDED_ON = {"cpu_capability": "AVX512", "machine": "x86_64"}
#: Library versions at recording time (for the reader; a mismatch is exactly what should fail).
RECORDED_WITH = {"torch": "2.13.0", "transformers": "5.24", "trl": "1.16", "peft": "0.21.2"}
GOLDEN_LOSSES = [
    6.326453685760498,
    8.284482955932617,
    6.912740230560303,
    5.513649940490723,
    5.297745704650879,
    3.787172317504883,
    5.73172664642334,
    4.050317764282227,
    5.200196266174316,
    4.054930210113525,
]
TOLERANCE = 1e-4


def golden_job(output_dir: Path) -> dict[str, Any]:
    """The fixed job: LoRA SFT of the built-in tiny Llama on 40 bundled rows, 10 steps."""
    return {
        "name": "golden-sft",
        "output_dir": str(output_dir),
        "seed": 42,
        "max_steps": 10,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "gradient_checkpointing": False,
        "peft": {"rank": 4, "alpha": 8, "dropout": 0.0},
        "data": {"path": "builtin:sft-sample", "max_samples": 40, "template": "alpaca"},
    }


def cpu_capability() -> dict[str, str]:
    import platform

    import torch

    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "machine": platform.machine()}


def first_losses(output_dir: Path) -> list[float]:
    from provenir.core.config import RunConfig
    from provenir.core.store import RunStore
    from provenir.train.runner import train

    manifest = train(RunConfig.from_dict(golden_job(output_dir)))
    log = RunStore(output_dir).run_dir(manifest.run_id) / "train_log.jsonl"
    return [entry["loss"] for entry in map(json.loads, log.open()) if "loss" in entry][:10]


def test_first_ten_losses_match_the_recording(tmp_path: Path, tiny_model_path: Path) -> None:
    here = cpu_capability()
    if here != RECORDED_ON:
        pytest.skip(
            f"golden losses were recorded on {RECORDED_ON}, this machine is {here}: float sums differ"
        )
    losses = first_losses(tmp_path)
    assert len(losses) == 10
    worst = max(abs(a - b) for a, b in zip(losses, GOLDEN_LOSSES, strict=True))
    assert worst <= TOLERANCE, (
        f"loss trajectory moved by up to {worst:.2e} (> {TOLERANCE}): a library upgrade or a code change "
        f"altered training numerics; got {losses}. Re-record only if that is intended (see the module doc)."
    )


if __name__ == "__main__":
    import tempfile

    import peft
    import torch
    import transformers
    import trl

    with tempfile.TemporaryDirectory() as folder:
        values = first_losses(Path(folder))
    print("RECORDED_ON =", cpu_capability())
    print(
        "RECORDED_WITH =",
        {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
            "peft": peft.__version__,
        },
    )
    print("GOLDEN_LOSSES =", json.dumps(values, indent=4))
