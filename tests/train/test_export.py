"""provenir export --merge: base + adapter merged into safetensors, checked, recorded by a child manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import ConfigError, ReproducibilityError
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.train.export import EXPORT_RELATION, LOGITS_TOLERANCE, export_run
from provenir.train.runner import train

pytestmark = pytest.mark.slow

#: Not the export's own check batch: the test compares on texts the export never saw.
TEXTS = ["Name three colours.", "The quick brown fox jumps over the lazy dog. " * 3]


def run_config(out: Path, **overrides: Any) -> RunConfig:
    base: dict[str, Any] = {
        "name": "export-me",
        "output_dir": str(out),
        "max_steps": 3,
        "batch_size": 4,
        "learning_rate": 5e-3,
        "gradient_checkpointing": False,
        # DoRA and a trained, tied lm_head: the two things a naive merge gets wrong.
        "peft": {"rank": 4, "alpha": 8, "use_dora": True, "modules_to_save": ["lm_head"]},
        "data": {"max_samples": 8},
    }
    base.update(overrides)
    return RunConfig.from_dict(base)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> tuple[RunManifest, Path]:
    out = tmp_path_factory.mktemp("export") / "artifacts"
    return train(run_config(out)), out


def logits(model: Any, tokenizer: Any) -> Any:
    import torch

    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits[batch["attention_mask"].bool()]


def test_merged_export_loads_and_equals_base_plus_adapter(
    trained: tuple[RunManifest, Path], tmp_path: Path, tiny_model_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parent, out = trained
    result = export_run(parent.run_id, output_dir=out, out=tmp_path / "merged")
    merged_dir = tmp_path / "merged"
    assert sorted(p.name for p in merged_dir.iterdir()) == sorted(result.files)
    assert "model.safetensors" in result.files and not any(n.startswith("adapter") for n in result.files)

    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32).eval()
    base_logits = logits(base, tokenizer)
    adapter_dir = RunStore(out).run_dir(parent.run_id) / "adapter"
    with_adapter = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    expected = logits(with_adapter, tokenizer)
    got = logits(merged, tokenizer)
    assert float((got - expected).abs().max()) <= LOGITS_TOLERANCE
    assert float((expected - base_logits).abs().max()) > 1e-3  # the adapter really changes the model
    assert result.max_abs_diff <= LOGITS_TOLERANCE


def test_the_child_manifest_verifies_and_lists_every_file(
    trained: tuple[RunManifest, Path], tmp_path: Path
) -> None:
    from provenir.core.hashing import sha256_file

    parent, out = trained
    result = export_run(parent.run_id, output_dir=out)
    store = RunStore(out)
    child = result.manifest
    assert child.relation == EXPORT_RELATION and child.provenance[-1] == parent.run_id
    assert child.config_hash == parent.config_hash and child.status == "completed"
    model_dir = store.run_dir(child.run_id) / "model"
    on_disk = {
        f"model/{p.relative_to(model_dir).as_posix()}": sha256_file(p)
        for p in model_dir.rglob("*")
        if p.is_file()
    }
    assert child.outputs == on_disk
    assert child.adapter_hash == on_disk["model/model.safetensors"]
    check = child.extra["export"]
    assert check["logits_check"]["max_abs_diff"] <= LOGITS_TOLERANCE
    assert check["base_model"]["digest"] == parent.inputs.model.digest  # type: ignore[union-attr]
    assert store.verify(child.run_id).ok
    body = result.to_dict()  # what `provenir export --json` prints
    assert json.loads(json.dumps(body)) == body
    assert body["run_id"] == child.run_id and body["parent_run_id"] == parent.run_id
    assert body["model_dir"] == str(model_dir) and body["out"] is None and body["signature"] is None
    assert body["files"] == result.files and body["logits_max_abs_diff"] == result.max_abs_diff

    (model_dir / "config.json").write_text((model_dir / "config.json").read_text() + " ")
    problems = store.verify(child.run_id).problems
    assert problems == ["output model/config.json changed (hash differs)"]


def test_export_signs_the_merged_model_with_a_model_signing_key(
    trained: tuple[RunManifest, Path], tmp_path: Path
) -> None:
    pytest.importorskip("model_signing")
    from provenir.core.signing_keys import generate_key_pair
    from provenir.governance.model_signing import verify_model, verify_run

    parent, out = trained
    key = generate_key_pair(tmp_path / "model.pem", "ecdsa-p256")
    sealer = generate_key_pair(tmp_path / "run.pem", "ed25519")
    result = export_run(
        parent.run_id,
        output_dir=out,
        out=tmp_path / "merged",
        model_signing_key=key.private_key,
        signing_key=sealer.private_key,
    )
    assert RunStore(out).verify(result.manifest.run_id).signature == "valid"
    assert (
        RunStore(out).attestation_path(result.manifest.run_id).is_file()
    )  # signed provenance, as after train
    assert result.signature is not None
    assert result.signature.signature_path == RunStore(out).run_dir(result.manifest.run_id) / "model.sig"
    assert verify_run(result.manifest.run_id, public_key_path=key.public_key, output_dir=out).matches_manifest
    # The same signature vouches for the copy placed at --out: same names, same bytes.
    verify_model(tmp_path / "merged", key.public_key, result.signature.signature_path)


def test_a_changed_base_model_is_refused(tmp_path: Path, tiny_model_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(tiny_model_path, base)
    parent = train(
        run_config(tmp_path / "artifacts", model_name_or_path=str(base), max_steps=1, peft={"rank": 2})
    )
    (base / "NOTES.md").write_text("edited after training\n")
    with pytest.raises(ReproducibilityError, match="model file NOTES.md added"):
        export_run(parent.run_id, output_dir=tmp_path / "artifacts")
    assert RunStore(tmp_path / "artifacts").run_ids() == [parent.run_id]  # nothing was recorded


def test_export_refuses_a_non_empty_out_folder_before_any_work(
    trained: tuple[RunManifest, Path], tmp_path: Path
) -> None:
    parent, out = trained
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    before = RunStore(out).run_ids()
    with pytest.raises(ConfigError, match="not an empty folder"):
        export_run(parent.run_id, output_dir=out, out=tmp_path / "taken")
    assert RunStore(out).run_ids() == before


def test_export_cli(
    trained: tuple[RunManifest, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from provenir.cli.main import main

    parent, out = trained
    with pytest.raises(SystemExit) as exc:
        main(["export", parent.run_id, "--output-dir", str(out), "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error: export writes a merged model: pass --merge")
    with pytest.raises(SystemExit) as done:
        main(["export", parent.run_id, "--merge", "--output-dir", str(out), "--out", str(tmp_path / "m")])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert f"merged run {parent.run_id} into {tmp_path / 'm'}" in printed
    assert (tmp_path / "m" / "model.safetensors").is_file()
