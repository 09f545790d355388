"""``selected_checkpoint`` in the manifest: sealed like every field, absent (not null) while unset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenir.core.errors import ManifestTamperedError
from provenir.core.manifest import RunManifest
from provenir.core.selected_checkpoint import SelectedCheckpoint
from provenir.core.store import RunStore


def manifest(selected: SelectedCheckpoint | None = None) -> RunManifest:
    return RunManifest(
        name="t",
        backend="trl",
        algorithm="sft",
        config_hash="c" * 64,
        dataset_hash="d" * 64,
        seed=1,
        config={"name": "t"},
        selected_checkpoint=selected,
    ).seal()


def test_unset_it_leaves_the_json_and_hash_of_older_manifests_alone() -> None:
    plain = manifest()
    assert "selected_checkpoint" not in json.loads(plain.to_json())
    # A manifest written before the field existed (no such key) loads, verifies and re-serialises byte-equal.
    older = json.loads(plain.to_json())
    loaded = RunManifest.model_validate(older)
    assert loaded.to_json() == plain.to_json() and loaded.verify(raw=plain.to_json()).ok


def test_it_is_sealed_and_a_change_is_detected(tmp_path: Path) -> None:
    chosen = SelectedCheckpoint(
        name="checkpoint-4", step=4, reason="best_metric", metric="eval_loss", value=1.5, stopped_early=True
    )
    sealed = manifest(chosen)
    path = sealed.save(RunStore(tmp_path).manifest_path(sealed.run_id))
    loaded, raw = RunManifest.load_with_text(path)
    assert loaded.selected_checkpoint == chosen and loaded.verify(raw=raw).ok
    data = json.loads(raw)
    data["selected_checkpoint"]["name"] = "checkpoint-6"
    edited = RunManifest.model_validate(data)
    with pytest.raises(ManifestTamperedError, match="manifest_hash does not match"):
        edited.verify()
