"""Runs to report on: one real tiny-model run (trained and evaluated once per module) and stub runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore


@pytest.fixture(scope="module")
def real_run(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunManifest]:
    """A real LoRA SFT run of the built-in model, evaluated during training and afterwards."""
    from provenir.data.loading import load_train_data
    from provenir.train.backends.trl_backend import TRLBackend
    from provenir.train.eval_callback import EvalCallback, EvalCallbackConfig
    from provenir.train.evaluation import evaluate_run
    from provenir.train.runner import RunOptions, train

    out = tmp_path_factory.mktemp("real") / "artifacts"
    config = RunConfig.from_dict(
        {
            "output_dir": str(out),
            "max_steps": 4,
            "batch_size": 4,
            "gradient_checkpointing": False,
            "data": {"max_samples": 16, "eval_split": 0.25},
        }
    )
    callback = EvalCallback(
        EvalCallbackConfig(eval_every_n_steps=2, template="alpaca", max_new_tokens=8),
        eval_dataset=load_train_data(config).eval,
    )
    manifest = train(config, RunOptions(backend=TRLBackend(callbacks=[callback], progress=False)))
    evaluate_run(RunStore(out).manifest_path(manifest.run_id), max_new_tokens=8)
    return out, RunManifest.load(RunStore(out).manifest_path(manifest.run_id))
