from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from provenir.core.config import TINY_MODEL_ID
from provenir.core.errors import ConfigError
from provenir.core.inputs import FileSetPin, diff_file_sets, file_set_digest
from provenir.train.model_files import pin_adapter, pin_model

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


@pytest.fixture()
def home(tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh PROVENIR_HOME (empty digest cache) that still holds the built tiny model."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(tiny_model_path.parent, target_is_directory=True)
    monkeypatch.setenv("PROVENIR_HOME", str(home))
    return home


@pytest.fixture()
def model_copy(tiny_model_path: Path, home: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_path, tmp_path / "model"))


def _flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0xFF]))


def test_local_pin_covers_loading_files_and_records_no_absolute_path(model_copy: Path) -> None:
    pin = pin_model(str(model_copy))
    assert pin.kind == "local" and pin.source == str(model_copy)
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= set(pin.files)
    assert (
        pin.files["model.safetensors"]
        == hashlib.sha256((model_copy / "model.safetensors").read_bytes()).hexdigest()
    )
    assert pin.digest == file_set_digest(pin.files)
    assert pin.requested_revision is None and pin.resolved_revision is None
    # Same bytes, same pin: the copy equals the built-in model, whose pin names no machine path.
    builtin = pin_model(TINY_MODEL_ID)
    assert builtin.kind == "builtin" and builtin.source == TINY_MODEL_ID
    assert (builtin.files, builtin.digest) == (pin.files, pin.digest)
    assert str(Path.home()) not in builtin.model_dump_json()
    assert diff_file_sets("model", builtin, pin) == []


def test_flipped_weight_byte_is_named_then_restored(model_copy: Path) -> None:
    recorded = pin_model(str(model_copy))
    weights = model_copy / "model.safetensors"
    _flip_byte(weights, weights.stat().st_size // 2)
    changed = pin_model(str(model_copy))
    old, new = recorded.files["model.safetensors"], changed.files["model.safetensors"]
    assert old != new and changed.digest != recorded.digest
    assert diff_file_sets("model", recorded, changed) == [
        f"model file model.safetensors changed: sha256 {old[:8]}… -> {new[:8]}…"
    ]
    _flip_byte(weights, weights.stat().st_size // 2)
    restored = pin_model(str(model_copy))
    assert diff_file_sets("model", recorded, restored) == []
    assert restored == recorded


def test_added_and_removed_files_are_named_and_hidden_files_ignored(model_copy: Path) -> None:
    recorded = pin_model(str(model_copy))
    (model_copy / "extra" / "notes").mkdir(parents=True)
    (model_copy / "extra" / "notes" / "readme.txt").write_text("hi")
    (model_copy / "generation_config.json").unlink()
    (model_copy / ".git").mkdir()
    (model_copy / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (model_copy / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    current = pin_model(str(model_copy))
    assert diff_file_sets("model", recorded, current) == [
        "model file extra/notes/readme.txt added",
        "model file generation_config.json removed",
    ]


def test_chat_template_change_is_named(model_copy: Path) -> None:
    recorded = pin_model(str(model_copy))
    cfg_path = model_copy / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    cfg_path.write_text(json.dumps(cfg))
    (model_copy / "chat_template.jinja").write_text("{{ messages }}")
    lines = diff_file_sets("model", recorded, pin_model(str(model_copy)))
    assert lines[0] == "model file chat_template.jinja added"
    assert lines[1].startswith("model file tokenizer_config.json changed: sha256 ")
    assert len(lines) == 2


def test_missing_path_and_empty_folder_errors(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^model path \./x does not exist$"):
        pin_model("./x")
    with pytest.raises(ConfigError, match=r"^model path /no/such/model does not exist$"):
        pin_model("/no/such/model")
    (tmp_path / "empty" / ".cache").mkdir(parents=True)  # only hidden content: nothing to pin
    with pytest.raises(ConfigError, match="model folder empty contains no files"):
        pin_model("empty")
    with pytest.raises(ConfigError, match=r"^adapter path \./nope does not exist$"):
        pin_adapter("./nope")


def _fake_hub_repo(
    cache: Path, repo_id: str, snapshots: dict[str, dict[str, bytes]], refs: dict[str, str]
) -> Path:
    """A cache laid out as huggingface_hub writes it: blobs by hash, snapshots of relative symlinks."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for commit, files in snapshots.items():
        for rel, data in files.items():
            blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            link = repo / "snapshots" / commit / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
    for ref, commit in refs.items():
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return repo


def test_hub_id_resolves_offline_from_the_local_cache(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    v1 = {"config.json": b'{"a": 1}', "model.safetensors": b"w1" * 100, ".gitattributes": b"x"}
    v2 = {**v1, "model.safetensors": b"w2" * 100}
    _fake_hub_repo(cache, "owner/name", {COMMIT_A: v1, COMMIT_B: v2}, {"main": COMMIT_A, "v2": COMMIT_B})

    pin = pin_model("owner/name")
    assert (pin.kind, pin.source, pin.requested_revision, pin.resolved_revision) == (
        "hub", "owner/name", None, COMMIT_A,
    )  # fmt: skip
    assert pin.files == {
        "config.json": hashlib.sha256(b'{"a": 1}').hexdigest(),
        "model.safetensors": hashlib.sha256(b"w1" * 100).hexdigest(),
    }
    assert str(tmp_path) not in pin.model_dump_json()
    assert pin_model("owner/name", revision=COMMIT_A) == pin.model_copy(
        update={"requested_revision": COMMIT_A}
    )

    tagged = pin_model("owner/name", revision="v2")
    assert (tagged.requested_revision, tagged.resolved_revision) == ("v2", COMMIT_B)
    old, new = pin.files["model.safetensors"], tagged.files["model.safetensors"]
    assert diff_file_sets("model", pin, tagged) == [
        f"model revision resolved to {COMMIT_B} (recorded {COMMIT_A})",
        f"model file model.safetensors changed: sha256 {old[:8]}… -> {new[:8]}…",
    ]


def test_hub_snapshot_with_missing_blob_is_refused(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    repo = _fake_hub_repo(cache, "owner/name", {COMMIT_A: {"model.safetensors": b"w"}}, {"main": COMMIT_A})
    for blob in (repo / "blobs").iterdir():
        blob.unlink()
    with pytest.raises(ConfigError, match="model file model.safetensors is a broken link"):
        pin_model("owner/name")


def test_unknown_hub_id_fails_fast_offline(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(
        ConfigError,
        match="model nobody/missing-model is not a local folder and is not in the local Hugging Face cache",
    ):
        pin_model("nobody/missing-model")
    with pytest.raises(ConfigError, match="at revision v3 is not a local folder"):
        pin_model("nobody/missing-model", revision="v3")
    assert time.monotonic() - start < 5


def test_adapter_pin_and_diff(home: Path, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    recorded = pin_adapter(str(adapter))
    assert recorded.kind == "local" and set(recorded.files) == {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    (adapter / "adapter_config.json").write_text('{"r": 16}')
    lines = diff_file_sets("init adapter", recorded, pin_adapter(str(adapter)))
    assert len(lines) == 1 and lines[0].startswith("init adapter file adapter_config.json changed: sha256 ")


def test_diff_of_equal_pins_is_empty() -> None:
    pin = FileSetPin(source="m", kind="local", files={"a": "1" * 64}, digest=file_set_digest({"a": "1" * 64}))
    assert diff_file_sets("model", pin, pin.model_copy()) == []
