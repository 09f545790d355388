"""Take the README's console screenshots: ``python tests/api/console/take_screenshots.py docs/images``.

Builds a store like the browser tests' (plus one real LoRA run of the built-in tiny model, so the
run page has training curves and evaluation intervals), serves it with a token, signs in through
the form in headless Chromium and saves the runs page (``console.png``) and that run's page down to its
final metrics (``console-run.png``). Not a test: run it by hand when the console's look changes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from console_support import TOKEN, build_store

from provenir.api.app import create_app
from provenir.api.server import BackgroundServer
from provenir.api.settings import ApiSettings
from provenir.core.config import RunConfig
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore


def real_run(root: Path) -> RunManifest:
    """A 6-step LoRA SFT run of the built-in tiny model, evaluated during and after training."""
    from provenir.data.loading import load_train_data
    from provenir.train.backends.trl_backend import TRLBackend
    from provenir.train.eval_callback import EvalCallback, EvalCallbackConfig
    from provenir.train.evaluation import evaluate_run
    from provenir.train.runner import RunOptions, train
    from provenir.train.tiny_model import ensure_tiny_model

    ensure_tiny_model()
    config = RunConfig.from_dict(
        {
            "name": "tiny-llama-lora",
            "output_dir": str(root),
            "max_steps": 6,
            "batch_size": 4,
            "gradient_checkpointing": False,
            "data": {"max_samples": 24, "eval_split": 0.25},
        }
    )
    callback = EvalCallback(
        EvalCallbackConfig(eval_every_n_steps=2, template="alpaca", max_new_tokens=8),
        eval_dataset=load_train_data(config).eval,
    )
    manifest = train(config, RunOptions(backend=TRLBackend(callbacks=[callback], progress=False)))
    evaluate_run(RunStore(root).manifest_path(manifest.run_id), max_new_tokens=8)
    return manifest


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp()) / "artifacts"
    build_store(root)
    run = real_run(root)
    out.mkdir(parents=True, exist_ok=True)
    app = create_app(ApiSettings(output_dir=root, token=TOKEN))
    with BackgroundServer(app) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(base_url=server.url, viewport={"width": 1360, "height": 760})
        page.goto("/ui/login")
        page.fill("#token", TOKEN)
        page.click("form.login button[type=submit]")
        page.wait_for_url("**/ui")
        page.screenshot(path=str(out / "console.png"), full_page=True)
        page.goto(f"/ui/runs/{run.run_id}")
        # From the top of the run page down through its training curves and final metrics.
        bottom = page.locator("#regression-gate").bounding_box()
        height = bottom["y"] if bottom else 2400
        page.screenshot(
            path=str(out / "console-run.png"),
            full_page=True,
            clip={"x": 0, "y": 0, "width": 1360, "height": height},
        )
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images"))
