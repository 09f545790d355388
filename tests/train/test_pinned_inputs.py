"""Every input of a run is pinned by content, and a replay refuses before training when one differs.

Model files, the chat template, dataset sources and the exact rows (after scanning, masking,
splitting and mixing) are recorded in ``manifest.inputs``; ``reproduce`` re-derives them and
names what changed. Distributed ranks train on the stored rows, so ``data.scan: mask`` under DDP
trains on masked rows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import DataError, ReproducibilityError
from provenir.core.hashing import sha256_file, sha256_rows
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.data.loading import split_rows
from provenir.data.mixture import interleave
from provenir.train.reproduce import reproduce
from provenir.train.runner import train

# A ChatML-like Jinja template for the copied tiny tokenizer (it ships without one).
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def provenir(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provenir.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def counts(root: Path) -> tuple[int, int]:
    store = RunStore(root)
    return len(store.run_ids()), len(list(store.runs_dir.iterdir())) if store.runs_dir.is_dir() else 0


@pytest.mark.slow
def test_changed_model_file_or_chat_template_is_refused_before_training(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    model = shutil.copytree(tiny_model_path, tmp_path / "model")
    tok_config = model / "tokenizer_config.json"
    settings = json.loads(tok_config.read_text())
    tok_config.write_text(json.dumps({**settings, "chat_template": CHAT_TEMPLATE}, indent=2))
    root = tmp_path / "artifacts"
    config = RunConfig.from_dict(
        {
            "model_name_or_path": str(model),
            "output_dir": str(root),
            "max_steps": 2,
            "batch_size": 4,
            "gradient_checkpointing": False,
            "data": {"max_samples": 8, "template": "tokenizer"},
        }
    )
    original = train(config)
    pins = original.inputs
    assert pins is not None and pins.model is not None and pins.chat_template is not None
    assert pins.model.kind == "local" and pins.model.files["model.safetensors"] == sha256_file(
        model / "model.safetensors"
    )
    assert pins.chat_template.origin == "tokenizer"
    env = original.environment
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text().splitlines()
            if ln.startswith("model name")
        ]
        if names:
            assert env["cpu"]["model"] == names[0]
    assert "executable" not in env and sys.executable not in json.dumps(env)
    import torch

    assert env["torch"]["version"] == torch.__version__  # the trl backend records torch's build
    # ... and its settings as training ran (Trainer's full_determinism), not the process defaults.
    assert env["torch"]["deterministic_algorithms"] is True
    manifest = RunStore(root).manifest_path(original.run_id)
    before = counts(root)

    weights = model / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0x01
    weights.write_bytes(bytes(blob))
    proc = provenir("reproduce", str(manifest), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "model file model.safetensors changed: sha256 " in proc.stderr
    assert counts(root) == before  # refused before any run folder or manifest was written
    blob[-1] ^= 0x01
    weights.write_bytes(bytes(blob))

    tok_config.write_text(
        json.dumps({**settings, "chat_template": CHAT_TEMPLATE.replace("}}\n{{", "}}: {{")}, indent=2)
    )
    proc = provenir("reproduce", str(manifest), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "chat template tokenizer changed" in proc.stderr
    assert "model file tokenizer_config.json changed" in proc.stderr
    assert counts(root) == before
    tok_config.write_text(json.dumps({**settings, "chat_template": CHAT_TEMPLATE}, indent=2))

    result = reproduce(manifest)
    assert result.identical, result.environment_changes
    assert result.replay.inputs == original.inputs


def test_secrets_only_in_eval_rows_are_found(tmp_path: Path) -> None:
    train_rows = [{"prompt": f"question {i}", "response": f"answer {i}"} for i in range(12)]
    token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    base = {"backend": "stub", "output_dir": str(tmp_path / "artifacts")}
    # eval_path: the secret is in the eval file only.
    train_file = write_jsonl(tmp_path / "train.jsonl", train_rows)
    eval_file = write_jsonl(tmp_path / "eval.jsonl", [{"prompt": "q", "response": f"token = '{token}'"}])
    data = {"path": str(train_file), "eval_path": str(eval_file)}
    with pytest.raises(DataError, match="eval data contains PII or secrets"):
        train(RunConfig.from_dict({**base, "data": {**data, "scan": "refuse"}}))
    reported = train(RunConfig.from_dict({**base, "data": {**data, "scan": "report"}}))
    assert reported.scans is not None
    assert not reported.scans["has_secrets"] and reported.scans["eval"]["has_secrets"]

    # eval_split: the secret sits in a row that the seeded split sends to eval.
    _, held = split_rows(train_rows, 0.25, seed=42)
    planted = [dict(r, response=f"token = '{token}'") if r in held else r for r in train_rows]
    split_file = write_jsonl(tmp_path / "split.jsonl", planted)
    with pytest.raises(DataError, match="eval data contains PII or secrets"):
        train(
            RunConfig.from_dict(
                {**base, "data": {"path": str(split_file), "eval_split": 0.25, "scan": "refuse"}}
            )
        )
    masked = train(
        RunConfig.from_dict({**base, "data": {"path": str(split_file), "eval_split": 0.25, "scan": "mask"}})
    )
    stored = RunStore(tmp_path / "artifacts").run_dir(masked.run_id) / "data" / "eval.jsonl"
    assert token not in stored.read_text() and "<SECRET_" in stored.read_text()
    assert masked.inputs is not None and masked.inputs.eval_rows is not None
    assert masked.inputs.eval_rows.sha256 == sha256_file(stored)


def test_mixture_is_seeded_weighted_and_recorded(tmp_path: Path) -> None:
    a = [{"prompt": f"a{i}", "response": f"A{i}"} for i in range(30)]
    b = [{"prompt": f"b{i}", "response": f"B{i}"} for i in range(30)]
    fa, fb = write_jsonl(tmp_path / "a.jsonl", a), write_jsonl(tmp_path / "b.jsonl", b)
    root = tmp_path / "artifacts"

    def run(seed: int) -> RunManifest:
        sources = [{"path": str(fa), "weight": 3.0}, {"path": str(fb), "weight": 1.0, "max_samples": 20}]
        config = {"backend": "stub", "seed": seed, "output_dir": str(root), "data": {"sources": sources}}
        return train(RunConfig.from_dict(config))

    first, again, other = run(7), run(7), run(8)
    assert first.inputs is not None and again.inputs is not None and other.inputs is not None
    expected, used = interleave([a, b[:20]], [3.0, 1.0], seed=7)
    pins = first.inputs.datasets
    assert [(p.uri, p.weight, p.rows, p.rows_used) for p in pins] == [
        (str(fa), 3.0, 30, used[0]),
        (str(fb), 1.0, 20, used[1]),
    ]
    assert first.inputs.training_rows.count == len(expected) == sum(used)
    assert first.inputs.training_rows.sha256 == sha256_rows(expected)
    assert used[0] > used[1] > 0  # weight 3:1, and both sources contribute
    stored = RunStore(root).run_dir(first.run_id) / first.inputs.training_rows.path
    assert sha256_file(stored) == first.inputs.training_rows.sha256
    assert again.inputs.training_rows == first.inputs.training_rows
    assert other.inputs.training_rows.sha256 != first.inputs.training_rows.sha256
    assert RunStore(root).verify(first.run_id).ok


def test_stored_rows_are_checked_and_unfinished_runs_are_not_reproduced(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    manifest = train(RunConfig.from_dict({"backend": "stub", "output_dir": str(root)}))
    store = RunStore(root)
    rows_file = store.run_dir(manifest.run_id) / "data" / "train.jsonl"
    rows_file.write_text(rows_file.read_text().replace("a", "b", 1))
    assert any("input rows data/train.jsonl changed" in p for p in store.verify(manifest.run_id).problems)

    manifest.status = "running"
    manifest.seal().save(store.manifest_path(manifest.run_id))
    with pytest.raises(ReproducibilityError, match="is running: only a completed run can be reproduced"):
        reproduce(store.manifest_path(manifest.run_id))


@pytest.mark.slow
def test_ddp_with_scan_mask_trains_on_the_masked_rows(tmp_path: Path, tiny_model_path: Path) -> None:
    from provenir.governance.scanners import masker_for

    rows = [
        {"prompt": f"Who do I write to about order {i}?", "response": f"Write to agent{i}@example.com today."}
        for i in range(16)
    ]
    raw = write_jsonl(tmp_path / "raw.jsonl", rows)
    premasked = write_jsonl(tmp_path / "premasked.jsonl", masker_for().mask(rows))
    common = {
        "output_dir": str(tmp_path / "artifacts"),
        "device": "cpu",
        "max_steps": 2,
        "batch_size": 4,
        "gradient_checkpointing": False,
        "distributed": {"strategy": "ddp", "num_processes": 2},
    }
    masked_run = train(RunConfig.from_dict({**common, "data": {"path": str(raw), "scan": "mask"}}))
    premasked_run = train(RunConfig.from_dict({**common, "data": {"path": str(premasked)}}))
    assert masked_run.scans is not None and masked_run.scans["action"] == "masked"
    assert masked_run.extra["world_size"] == premasked_run.extra["world_size"] == 2
    assert masked_run.inputs is not None and premasked_run.inputs is not None
    assert masked_run.inputs.training_rows.sha256 == premasked_run.inputs.training_rows.sha256
    assert masked_run.adapter_hash == premasked_run.adapter_hash
    assert masked_run.environment["torch"]["deterministic_algorithms"] is True  # reported by rank 0
