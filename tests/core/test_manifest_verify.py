"""``RunManifest.verify`` fails, naming the problem, for every way a manifest stops vouching for a run.

``check()`` reports; ``verify()`` is what a reader relies on to stop. Each case asserts that
``verify()`` raises :class:`ManifestTamperedError` and that its one line names what is wrong.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from provenir.core.errors import ManifestTamperedError
from provenir.core.hashing import sha256_file
from provenir.core.manifest import RunManifest
from provenir.core.signers import SignerPolicy, fingerprint, public_key_of
from provenir.core.signing_keys import generate_signing_key


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVENIR_SIGNING_KEY", raising=False)


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter" / "w.bin").write_bytes(b"weights")
    (folder / "train_log.jsonl").write_text("{}\n")
    return folder


def _manifest(run_dir: Path | None = None) -> RunManifest:
    outputs = (
        {rel: sha256_file(run_dir / rel) for rel in ("adapter/w.bin", "train_log.jsonl")}
        if run_dir is not None
        else {}
    )
    return RunManifest(
        name="v",
        backend="stub",
        algorithm="sft",
        config_hash="c" * 64,
        dataset_hash="d" * 64,
        seed=1,
        config={"name": "v"},
        outputs=outputs,
    )


def _fails(manifest: RunManifest, problem: str, **kwargs: object) -> str:
    with pytest.raises(ManifestTamperedError) as caught:
        manifest.verify(**kwargs)
    message = str(caught.value)
    assert message.startswith(f"manifest {manifest.run_id}: ") and "\n" not in message
    assert problem in message, message
    return message


def test_an_intact_manifest_verifies_with_its_state() -> None:
    result = _manifest().seal().verify()
    assert result.ok and result.hash_ok and result.canonical_ok and result.problems == []
    assert result.signature == "unsigned" and result.signer_fingerprint is None and result.outputs_ok is None


def test_an_unsealed_manifest_fails() -> None:
    manifest = _manifest()
    _fails(manifest, "manifest is not sealed (no manifest_hash)")
    assert not manifest.check().hash_ok


def test_a_changed_field_fails() -> None:
    manifest = _manifest().seal()
    manifest.seed = 2
    _fails(manifest, "manifest_hash does not match the content: a field was changed")


def test_a_number_canonical_json_cannot_hold_fails() -> None:
    manifest = _manifest().seal()
    manifest.metrics["loss"] = math.nan
    message = _fails(
        manifest, "manifest holds a number canonical JSON cannot encode (NaN or infinity): edited"
    )
    assert "a field was changed" not in message


def test_edited_bytes_fail(tmp_path: Path) -> None:
    manifest = _manifest().seal()
    raw = manifest.to_json()
    assert manifest.verify(raw=raw).canonical_ok
    _fails(manifest, "file bytes differ from Provenir's serialisation", raw=raw.replace("\n", "\r\n"))
    assert not manifest.check(raw=raw + " ").canonical_ok


def test_a_signature_that_does_not_verify_fails(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    generate_signing_key(key)
    signed = _manifest().seal(key)
    assert signed.verify().signature == "valid"
    forged = _manifest().seal()  # another hash under the first manifest's signature
    forged.signature = signed.signature
    _fails(forged, "signature does not verify")
    garbled = signed.model_copy(deep=True)
    assert garbled.signature is not None
    garbled.signature.value = "!!not base64!!"
    _fails(garbled, "signature does not verify")
    result = forged.check()
    assert result.signature == "invalid" and result.signer_fingerprint is None


def test_a_signer_the_policy_does_not_trust_fails(tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine.pem", tmp_path / "theirs.pem"
    generate_signing_key(mine)
    generate_signing_key(theirs)
    policy = SignerPolicy.from_keys([public_key_of(mine)])
    assert _manifest().seal(mine).verify(policy=policy).signer_trusted is True
    foreign = _manifest().seal(theirs)
    import base64

    theirs_fp = fingerprint(base64.b64decode(public_key_of(theirs)))
    message = _fails(
        foreign, f"signed by key {theirs_fp}, which the signer policy does not trust", policy=policy
    )
    assert fingerprint(base64.b64decode(public_key_of(mine))) in message
    assert foreign.verify().signature == "valid"  # without a policy the signature only proves integrity


def test_an_unsigned_manifest_fails_under_a_policy(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    generate_signing_key(key)
    unsigned = _manifest().seal()
    _fails(
        unsigned,
        "manifest is not signed, but the signer policy requires a signature by a trusted key",
        policy=SignerPolicy.from_keys([public_key_of(key)]),
    )
    _fails(unsigned, "manifest is not signed, but the signer policy requires a signature", policy=SignerPolicy(
        require_signature=True))  # fmt: skip


def test_a_deleted_output_fails_naming_it(run_dir: Path) -> None:
    manifest = _manifest(run_dir).seal()
    assert manifest.verify(run_directory=run_dir).outputs_ok is True
    (run_dir / "adapter" / "w.bin").unlink()
    _fails(manifest, "output adapter/w.bin is missing", run_directory=run_dir)
    assert manifest.check(run_directory=run_dir).outputs_ok is False
    assert manifest.verify().ok  # without the run folder only the record itself is checked


def test_a_changed_output_fails_naming_it(run_dir: Path) -> None:
    manifest = _manifest(run_dir).seal()
    (run_dir / "train_log.jsonl").write_text("{}\n{}\n")
    message = _fails(manifest, "output train_log.jsonl changed (hash differs)", run_directory=run_dir)
    assert "adapter/w.bin" not in message


def test_an_unrecorded_file_in_an_output_folder_fails(run_dir: Path) -> None:
    manifest = _manifest(run_dir).seal()
    (run_dir / "adapter" / "chat_template.jinja").write_text("{{ 'injected' }}")
    (run_dir / "notes.txt").write_text("a file outside every output folder is not judged")
    message = _fails(
        manifest, "adapter/chat_template.jinja is not recorded in the manifest", run_directory=run_dir
    )
    assert "notes.txt" not in message


def test_many_unrecorded_files_are_counted_after_the_first_ones(run_dir: Path) -> None:
    manifest = _manifest(run_dir).seal()
    for i in range(22):  # the first 20 are named, the rest counted
        (run_dir / "adapter" / f"extra{i:02d}.bin").write_bytes(b"x")
    problems = manifest.check(run_directory=run_dir).problems
    assert len(problems) == 21
    assert problems[-1] == "2 more files in output folders are not recorded in the manifest"
    exactly = _manifest(run_dir)
    exactly.outputs["adapter/extra00.bin"] = sha256_file(run_dir / "adapter" / "extra00.bin")
    exactly.outputs["adapter/extra01.bin"] = sha256_file(run_dir / "adapter" / "extra01.bin")
    problems = exactly.seal().check(run_directory=run_dir).problems
    assert len(problems) == 20 and not any("more files" in p for p in problems)


def test_a_linked_output_folder_fails(run_dir: Path, tmp_path: Path) -> None:
    manifest = _manifest(run_dir).seal()
    real = tmp_path / "elsewhere"
    (run_dir / "adapter").rename(real)
    (run_dir / "adapter").symlink_to(real, target_is_directory=True)
    message = _fails(
        manifest, "output folder adapter is a symbolic link, not a folder of the run", run_directory=run_dir
    )
    assert "is not recorded in the manifest" not in message


def test_every_problem_is_reported_together(run_dir: Path, tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    generate_signing_key(key)
    manifest = _manifest(run_dir).seal(key)
    manifest.seed = 5
    (run_dir / "adapter" / "w.bin").unlink()
    problems = manifest.check(run_directory=run_dir).problems
    assert problems == [
        "manifest_hash does not match the content: a field was changed",
        "output adapter/w.bin is missing",
    ]  # the signature still covers the recorded hash: only the changed body is caught


# -- the file form ------------------------------------------------------------------------------


def test_manifests_are_schema_2() -> None:
    assert _manifest().schema_version == 2


def test_sections_newer_than_schema_2_are_left_out_while_unset() -> None:
    text = _manifest().seal().to_json()
    for name in ("audit_checkpoint", "distributed", "selected_checkpoint"):
        assert f'"{name}"' not in text, name
    assert '"inputs": null' in text  # an older optional field is written, as it always was


def test_the_file_is_sorted_two_space_json_in_utf8() -> None:
    import json

    manifest = _manifest()
    manifest.name = "modèle"
    text = manifest.seal().to_json()
    assert text.endswith("}\n") and '\n  "adapter_hash": null,\n' in text
    assert '"name": "modèle"' in text  # not \u00e8
    keys = list(json.loads(text))
    assert keys == sorted(keys)


def test_a_signature_with_characters_outside_base64_does_not_verify(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    generate_signing_key(key)
    signed = _manifest().seal(key)
    assert signed.signature is not None
    for field in ("value", "public_key"):
        forged = signed.model_copy(deep=True)
        assert forged.signature is not None
        text = getattr(forged.signature, field)
        setattr(forged.signature, field, text[:4] + "!" + text[4:])
        _fails(forged, "signature does not verify")
