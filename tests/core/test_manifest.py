from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenir.core.errors import ManifestError, ManifestTamperedError
from provenir.core.manifest import RunManifest, validate_run_id
from provenir.core.signers import SignerPolicy
from provenir.core.signing_keys import generate_signing_key
from provenir.core.store import RunStore


def make_manifest() -> RunManifest:
    return RunManifest(
        name="t",
        backend="stub",
        algorithm="sft",
        config_hash="c" * 64,
        dataset_hash="d" * 64,
        seed=42,
        provenance=["11111111-1111-4111-8111-111111111111"],
        config={"name": "t", "seed": 42},
        outputs={"adapter/w.bin": "e" * 64},
        adapter_hash="e" * 64,
        metrics={"final_loss": 1.25},
        environment={"python": "3.11"},
    ).seal()


def test_seed_fields_present() -> None:
    m = make_manifest()
    for field in ("run_id", "config_hash", "dataset_hash", "git_sha", "seed", "timestamp", "provenance"):
        assert field in m.model_dump()
    validate_run_id(m.run_id)


def test_sections_newer_than_the_first_schema_2_manifests_are_written_only_when_set() -> None:
    # Omitted rather than null, so manifests sealed before these sections existed keep their bytes.
    m = make_manifest()
    for name in ("audit_checkpoint", "distributed", "selected_checkpoint", "gate_spec_sha256"):
        assert name not in json.loads(m.to_json())
    set_one = m.model_copy(update={"gate_spec_sha256": "a" * 64})
    assert json.loads(set_one.to_json())["gate_spec_sha256"] == "a" * 64


def test_sealed_manifest_verifies_and_round_trips(tmp_path: Path) -> None:
    m = make_manifest()
    path = m.save(RunStore(tmp_path).manifest_path(m.run_id))
    loaded, raw = RunManifest.load_with_text(path)
    assert loaded == m
    assert loaded.verify(raw=raw).ok


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.__setitem__("seed", 43),
        lambda d: d.__setitem__("dataset_hash", "0" * 64),
        lambda d: d["config"].__setitem__("seed", 1),
        lambda d: d["metrics"].__setitem__("final_loss", 1.24),
        lambda d: d["provenance"].clear(),
        lambda d: d["outputs"].__setitem__("adapter/w.bin", "f" * 64),
        lambda d: d.__setitem__("status", "failed"),
        lambda d: d.__setitem__("git_sha", "abc"),
    ],
)
def test_any_field_change_is_detected(tmp_path: Path, mutate) -> None:
    m = make_manifest()
    data = m.model_dump(mode="json")
    mutate(data)
    tampered = RunManifest.model_validate(data)
    with pytest.raises(ManifestTamperedError, match="a field was changed"):
        tampered.verify()


def test_any_byte_change_is_detected(tmp_path: Path) -> None:
    m = make_manifest()
    path = m.save(tmp_path / "m.json")
    original = path.read_bytes()
    # Every position, flipping to a different byte: whatever it breaks, verification fails.
    for i in range(0, len(original), 7):
        changed = bytearray(original)
        changed[i] = ord(" ") if changed[i] != ord(" ") else ord("x")
        path.write_bytes(bytes(changed))
        with pytest.raises((ManifestTamperedError, ManifestError)):
            loaded, raw = RunManifest.load_with_text(path)
            loaded.verify(raw=raw)


def test_signature(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    fingerprint = generate_signing_key(key)
    m = make_manifest().seal(key)
    result = m.verify()
    assert result.signature == "valid" and result.signer_fingerprint == fingerprint
    policy = SignerPolicy.from_keys([m.signature.public_key])
    assert m.verify(policy=policy).ok
    # Re-signing a changed manifest with another key is caught when a trusted key is given.
    other = tmp_path / "other.pem"
    generate_signing_key(other)
    forged = make_manifest().seal(other)
    assert forged.check(policy=policy).signature == "untrusted"
    # A signature copied onto a different hash does not verify.
    data = make_manifest().model_dump(mode="json")
    data["signature"] = m.signature.model_dump()
    copied = RunManifest.model_validate(data)
    assert copied.check().signature == "invalid"


def test_output_files_are_checked(tmp_path: Path) -> None:
    rdir = tmp_path / "run"
    (rdir / "adapter").mkdir(parents=True)
    (rdir / "adapter" / "w.bin").write_bytes(b"weights")
    from provenir.core.hashing import sha256_file

    m = make_manifest()
    m.outputs = {"adapter/w.bin": sha256_file(rdir / "adapter" / "w.bin")}
    m.seal()
    assert m.check(run_directory=rdir).outputs_ok
    (rdir / "adapter" / "w.bin").write_bytes(b"weightz")
    result = m.check(run_directory=rdir)
    assert not result.ok and "adapter/w.bin changed" in result.problems[0]


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        RunManifest.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ManifestTamperedError, match="not valid manifest JSON"):
        RunManifest.load(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"name": "x"}))
    with pytest.raises(ManifestTamperedError, match="not a valid manifest"):
        RunManifest.load(wrong)


@pytest.mark.parametrize("bad", ["../etc/passwd", "abc", "11111111-1111-4111-8111-11111111111/", ""])
def test_run_id_validation_blocks_traversal(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ManifestError):
        RunStore(tmp_path).manifest_path(bad)


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = make_manifest()
    path = m.save(tmp_path / "m.json")
    before = path.read_bytes()

    def crash(*a: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("provenir.core.atomic.os.replace", crash)
    m.metrics["final_loss"] = 0.5
    with pytest.raises(KeyboardInterrupt):
        m.seal().save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_signing_key_is_private(tmp_path: Path) -> None:
    import stat

    key = tmp_path / "key.pem"
    generate_signing_key(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
