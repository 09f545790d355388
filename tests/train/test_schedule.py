"""Epochs, save_total_limit, eval loss during training, early stopping and best-checkpoint selection."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import ReproducibilityError
from provenir.core.hashing import sha256_file
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.train.checkpoints import MARKER_NAME, marked_checkpoints, verify_checkpoint
from provenir.train.runner import train

pytestmark = pytest.mark.slow


def run_config(out: Path, **settings: Any) -> RunConfig:
    base: dict[str, Any] = {
        "output_dir": str(out),
        "batch_size": 4,
        "gradient_checkpointing": False,
        "peft": {"rank": 4, "alpha": 8},
    }
    return RunConfig.from_dict({**base, **settings})


def log_of(out: Path, manifest: RunManifest) -> list[dict[str, Any]]:
    path = RunStore(out).run_dir(manifest.run_id) / "train_log.jsonl"
    return [json.loads(line) for line in path.open()]


@pytest.fixture(scope="module")
def epoch_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> tuple[RunManifest, Path]:
    out = tmp_path_factory.mktemp("epochs")
    config = run_config(
        out,
        num_train_epochs=1,
        batch_size=6,
        save_steps=1,
        save_total_limit=2,
        data={"max_samples": 24, "eval_split": 0.25},
        eval={"loss_every_n_steps": 1},
    )
    return train(config), out


def test_one_epoch_is_one_pass_over_the_training_rows(epoch_run: tuple[RunManifest, Path]) -> None:
    manifest, _ = epoch_run
    assert manifest.inputs is not None and manifest.inputs.training_rows.count == 18
    assert manifest.metrics["global_step"] == 3  # 18 rows / batch 6
    assert manifest.config["max_steps"] is None and manifest.config["num_train_epochs"] == 1


def test_save_total_limit_keeps_the_newest_complete_checkpoints(epoch_run: tuple[RunManifest, Path]) -> None:
    manifest, out = epoch_run
    rdir = RunStore(out).run_dir(manifest.run_id)
    kept = marked_checkpoints(rdir)
    assert [step for step, _, _ in kept] == [2, 3]
    assert sorted(p.name for p in (rdir / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-2",
        "checkpoint-3",
    ]
    for _, path, marker in kept:
        verify_checkpoint(path, marker)


def test_eval_loss_is_computed_on_the_stored_eval_rows(epoch_run: tuple[RunManifest, Path]) -> None:
    manifest, out = epoch_run
    evals = [e for e in log_of(out, manifest) if "eval_loss" in e]
    assert [e["step"] for e in evals] == [1, 2, 3]
    assert all(e["eval_loss"] > 0 for e in evals)
    assert manifest.inputs is not None and manifest.inputs.eval_rows is not None
    assert manifest.inputs.eval_rows.count == 6
    chosen = manifest.selected_checkpoint
    assert chosen is not None
    assert (chosen.name, chosen.step, chosen.reason, chosen.stopped_early) == ("final", 3, "last_step", False)
    assert chosen.metric == "eval_loss" and chosen.value == evals[-1]["eval_loss"]


@pytest.fixture(scope="module")
def best_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> tuple[RunManifest, Path]:
    out = tmp_path_factory.mktemp("best")
    # With this learning rate the eval loss rises again after step 2 (4.242 -> 4.249 on the
    # tiny model v2), so patience 1 stops training at step 4 and the best checkpoint is not the last.
    config = run_config(
        out,
        max_steps=8,
        learning_rate=3e-2,
        save_steps=2,
        data={"max_samples": 40, "eval_split": 0.25},
        eval={"loss_every_n_steps": 2, "load_best": True, "early_stopping_patience": 1},
    )
    return train(config), out


def test_early_stopping_on_eval_loss(best_run: tuple[RunManifest, Path]) -> None:
    manifest, out = best_run
    evals = {e["step"]: e["eval_loss"] for e in log_of(out, manifest) if "eval_loss" in e}
    assert manifest.metrics["global_step"] == 4 < 8
    assert list(evals) == [2, 4] and evals[4] > evals[2]
    assert manifest.selected_checkpoint is not None and manifest.selected_checkpoint.stopped_early


def test_load_best_makes_the_best_checkpoint_the_adapter(best_run: tuple[RunManifest, Path]) -> None:
    manifest, out = best_run
    rdir = RunStore(out).run_dir(manifest.run_id)
    evals = {e["step"]: e["eval_loss"] for e in log_of(out, manifest) if "eval_loss" in e}
    chosen = manifest.selected_checkpoint
    assert chosen is not None and chosen.reason == "best_metric"
    best_step = min(evals, key=lambda step: evals[step])
    assert (chosen.name, chosen.step, chosen.metric) == (f"checkpoint-{best_step}", best_step, "eval_loss")
    assert chosen.value == evals[best_step]
    # The adapter is exactly the verified checkpoint's adapter, and not the last step's.
    adapter = manifest.outputs["adapter/adapter_model.safetensors"]
    assert chosen.checkpoint is not None
    assert adapter == chosen.checkpoint.files["adapter_model.safetensors"]
    assert adapter != sha256_file(rdir / "checkpoints" / "checkpoint-4" / "adapter_model.safetensors")
    loaded, raw = RunManifest.load_with_text(RunStore(out).manifest_path(manifest.run_id))
    assert loaded.selected_checkpoint == chosen and loaded.verify(raw=raw, run_directory=rdir).ok


def test_load_best_refuses_an_altered_checkpoint_and_skips_an_unfinished_one(
    best_run: tuple[RunManifest, Path], tmp_path: Path
) -> None:
    from provenir.train.checkpoint_selection import best_checkpoint

    manifest, out = best_run
    rdir = tmp_path / "run"
    shutil.copytree(RunStore(out).run_dir(manifest.run_id), rdir)
    log = log_of(out, manifest)
    best = rdir / "checkpoints" / "checkpoint-2"
    with (best / "adapter_model.safetensors").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ReproducibilityError, match="checkpoint-2: adapter_model.safetensors changed"):
        best_checkpoint(rdir, log, "eval_loss", False, False)
    (best / MARKER_NAME).unlink()  # now it looks unfinished: never a candidate
    folder, chosen = best_checkpoint(rdir, log, "eval_loss", False, False)
    assert folder.name == chosen.name == "checkpoint-4"


def test_full_model_weights_load_from_a_checkpoint_folder(tiny_model_path: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from provenir.train.checkpoint_selection import load_checkpoint_weights

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    model.save_pretrained(tmp_path / "checkpoint-1")
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    load_checkpoint_weights(model, tmp_path / "checkpoint-1")
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
