"""Model cards: HF metadata with CIs, provenance, eval_result forms, safe output paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import GovernanceError
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.governance.model_card import ModelCardGenerator, safe_card_path

EVAL = {"metrics": {"exact_match": {"mean": 0.5, "ci_lower": 0.4, "ci_upper": 0.6, "n": 50}}}


def _manifest(**kw: object) -> RunManifest:
    cfg = RunConfig(name="my-run", backend="stub")
    fields = dict(
        name="my-run",
        backend="stub",
        algorithm="sft",
        config_hash=cfg.config_hash(),
        dataset_hash="a" * 64,
        seed=42,
        config=cfg.model_dump(mode="json"),
        status="completed",
    )
    fields.update(kw)
    return RunManifest(**fields).seal()  # type: ignore[arg-type]


class _EvalObject:
    def to_dict(self) -> dict:
        return EVAL


def test_seed_snippet_produces_a_parsable_hub_card(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    manifest = _manifest(scans={"has_pii": True, "action": "report", "pii": {"counts": {"EMAIL": 2}}})
    card = ModelCardGenerator().generate(manifest, _EvalObject())
    out = card.save(tmp_path / "MODEL_CARD.md")
    loaded = ModelCard.load(out)
    data = loaded.data.to_dict()
    assert data["base_model"] == "provenir/tiny-llama" and data["license"] == "other"
    assert {"provenir", "sft", "lora"} <= set(data["tags"])
    metric = data["model-index"][0]["results"][0]["metrics"][0]
    assert metric["type"] == "exact_match" and metric["value"] == 0.5
    assert metric["args"] == {"ci_lower": 0.4, "ci_upper": 0.6, "n": 50}
    assert "| exact_match | 0.5000 | [0.4000, 0.6000] | 50 |" in loaded.text
    assert manifest.manifest_hash in loaded.text and "(verified)" in loaded.text
    assert "Signature: unsigned" in loaded.text and "PII scan: EMAIL=2" in loaded.text
    assert "PII was found in the training data and was not masked." in loaded.text


def test_eval_result_forms_and_fallback_to_manifest_eval() -> None:
    gen = ModelCardGenerator(license="apache-2.0")
    none_card = gen.generate(_manifest(), None)
    assert "model-index" not in none_card.data and "No evaluation results" in none_card.text
    assert none_card.data["license"] == "apache-2.0"
    from_manifest = gen.generate(_manifest(eval=EVAL), None)
    assert from_manifest.data["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.5
    with pytest.raises(GovernanceError, match="eval_result must be"):
        gen.generate(_manifest(), {"exact_match": 0.5})
    with pytest.raises(GovernanceError, match="numeric 'mean'"):
        gen.generate(_manifest(), {"metrics": {"em": {"mean": "high"}}})


def test_tampered_manifest_is_reported_in_the_card(tmp_path: Path) -> None:
    m = _manifest()
    path = m.save(RunStore(tmp_path).manifest_path(m.run_id))
    path.write_text(path.read_text().replace('"seed": 42', '"seed": 43'))
    card = ModelCardGenerator().generate(path, EVAL)
    assert "DOES NOT MATCH" in card.text and "failed verification" in card.text


def test_crafted_names_cannot_escape_the_chosen_folder(tmp_path: Path) -> None:
    card = ModelCardGenerator().generate(_manifest(name="../../etc/evil\n---\nx: y"), EVAL)
    assert "\n---\nx: y" not in card.text.split("---", 2)[2]  # name cannot break out of its line
    for bad in ["../x.md", "a/b.md", "/etc/passwd.md", "..md", "x.txt", "x\0.md", ""]:
        with pytest.raises(GovernanceError):
            safe_card_path(tmp_path, bad)
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "cards").mkdir()
    os.symlink(outside / "MODEL_CARD.md", tmp_path / "cards" / "MODEL_CARD.md")
    with pytest.raises(GovernanceError, match="escapes"):
        card.save_in(tmp_path / "cards")
    assert not (outside / "MODEL_CARD.md").exists()
    assert card.save_in(tmp_path / "ok", "card-1.md").read_text() == card.text
