"""``sft.packing``: TRL's best-fit decreasing packing sees exactly the unpacked tokens, row boundaries hold."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import RunConfig
from provenir.data.loading import load_train_data
from provenir.train.backends.trl_backend import TRLBackend
from provenir.train.runner import train

pytestmark = pytest.mark.slow

Sequence = tuple[tuple[int, ...], tuple[int, ...]]


def sft_config(out: Path, packing: bool) -> RunConfig:
    return RunConfig.from_dict(
        {
            "output_dir": str(out),
            "num_train_epochs": 1,
            "batch_size": 4,
            "max_length": 128,
            "learning_rate": 1e-3,
            "gradient_checkpointing": False,
            "peft": {"rank": 4, "alpha": 8},
            "data": {"max_samples": 24},
            "sft": {"packing": packing},
        }
    )


def split_packed(batch: dict[str, Any]) -> list[Sequence]:
    """The rows of a padding-free batch: each starts where its position_ids restart at 0."""
    ids, labels, positions = batch["input_ids"], batch["labels"], batch["position_ids"]
    rows = []
    for r in range(ids.shape[0]):
        starts = [i for i, p in enumerate(positions[r].tolist()) if p == 0] + [ids.shape[1]]
        for a, b in zip(starts, starts[1:], strict=False):
            rows.append((tuple(ids[r, a:b].tolist()), tuple(labels[r, a:b].tolist())))
    return rows


def unpadded(batch: dict[str, Any]) -> list[Sequence]:
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"].bool()
    return [
        (tuple(ids[r][mask[r]].tolist()), tuple(labels[r][mask[r]].tolist())) for r in range(ids.shape[0])
    ]


@pytest.fixture(scope="module")
def trainers(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> dict[bool, Any]:
    out = tmp_path_factory.mktemp("packing")
    built = {}
    for packing in (False, True):
        config = sft_config(out, packing)
        trainer, _, _ = TRLBackend(progress=False).build_trainer(
            config, load_train_data(config), out / str(packing)
        )
        built[packing] = trainer
    return built


def test_packed_and_unpacked_epochs_see_the_same_tokens(trainers: dict[bool, Any]) -> None:
    epochs: dict[bool, Counter[Sequence]] = {}
    batches: dict[bool, int] = {}
    for packing, trainer in trainers.items():
        seen: Counter[Sequence] = Counter()
        batches[packing] = 0
        for batch in trainer.get_train_dataloader():
            batches[packing] += 1
            if packing:
                assert batch.get("attention_mask") is None  # padding-free: no pad token at all
                seen.update(split_packed(batch))
            else:
                seen.update(unpadded(batch))
        epochs[packing] = seen
    assert sum(epochs[False].values()) == 24
    # Same rows, token for token and label for label (prompt masked alike), none cut or repeated.
    assert epochs[True] == epochs[False]
    assert batches[True] < batches[False]  # fuller sequences: fewer steps per epoch


def test_packed_rows_attend_only_to_themselves(trainers: dict[bool, Any]) -> None:
    import torch

    model = trainers[True].model
    model.eval()
    batch = next(iter(trainers[True].get_train_dataloader()))
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        packed = model(**inputs).logits[0]
        starts = [i for i, p in enumerate(batch["position_ids"][0].tolist()) if p == 0]
        assert len(starts) > 1, "the batch holds one row: nothing to check"
        bounds = list(zip(starts, [*starts[1:], batch["input_ids"].shape[1]], strict=True))
        for a, b in bounds:
            alone = model(input_ids=batch["input_ids"][:, a:b]).logits[0]
            assert torch.allclose(packed[a:b], alone, atol=1e-4), f"row at {a}:{b} saw its neighbours"
        # Without the per-row positions the same tokens would attend across rows: the check can fail.
        a, b = bounds[1]
        leaky = model(input_ids=batch["input_ids"]).logits[0]
        assert not torch.allclose(
            leaky[a:b], model(input_ids=batch["input_ids"][:, a:b]).logits[0], atol=1e-4
        )


def test_a_packed_run_trains(tmp_path: Path, tiny_model_path: Path) -> None:
    manifest = train(sft_config(tmp_path, packing=True))
    assert manifest.status == "completed" and math.isfinite(manifest.metrics["train_loss"])
    assert manifest.config["sft"]["packing"] is True
    assert 0 < manifest.metrics["global_step"] < 6  # 24 rows unpacked at batch 4 would be 6 steps
