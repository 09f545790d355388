"""SignerPolicy (who may sign) and the confined output check (what verify may read)."""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import ConfigError
from provenir.core.hashing import sha256_file
from provenir.core.manifest import RunManifest
from provenir.core.signers import (
    SignerPolicy,
    fingerprint,
    parse_public_key,
    public_key_of,
    read_trusted_keys,
)
from provenir.core.signing_keys import generate_signing_key
from provenir.core.store import RunStore

pytest.importorskip("cryptography")


def _key(tmp_path: Path, name: str) -> tuple[Path, str]:
    path = tmp_path / f"{name}.pem"
    generate_signing_key(path)
    return path, public_key_of(path)


def _fp(public_key_b64: str) -> str:
    return fingerprint(base64.b64decode(public_key_b64))


def stub_run(root: Path, signing_key: Path | None = None) -> RunManifest:
    """A finished stub-backend run (instant), signed with ``signing_key`` when given."""
    from provenir.train.runner import train

    manifest: dict[str, Any] = {"signing_key_path": str(signing_key)} if signing_key else {}
    return train(RunConfig(name="policy", backend="stub", output_dir=str(root), manifest=manifest))


def forge(store: RunStore, manifest: RunManifest, signing_key: Path | None) -> None:
    """What an attacker with write access does: change a field and reseal (with their own key, or
    none: the signature stripped and ``manifest_hash`` recomputed)."""
    forged = manifest.model_copy(deep=True)
    forged.metrics["train_loss"] = 0.001
    forged.seal(signing_key=signing_key).save(store.manifest_path(manifest.run_id))


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVENIR_SIGNING_KEY", raising=False)


# -- keys and the trusted-keys file -------------------------------------------------------------


def test_public_keys_parse_from_base64_and_pem(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    path, b64 = _key(tmp_path, "a")
    raw = base64.b64decode(b64)
    assert parse_public_key(b64) == raw and len(raw) == 32
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert parse_public_key(pem) == raw
    with pytest.raises(ConfigError, match="private key"):
        parse_public_key(path.read_text(), source="--public-key")
    for bad in ("", "not base64!", base64.b64encode(b"x" * 31).decode()):
        with pytest.raises(ConfigError, match=r"--public-key: .* is not an Ed25519 public key"):
            parse_public_key(bad, source="--public-key")


def test_trusted_keys_file_format(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    _, a = _key(tmp_path, "a")
    b_path, b = _key(tmp_path, "b")
    pem = (
        serialization.load_pem_private_key(b_path.read_bytes(), password=None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    keys = tmp_path / "trusted.txt"
    keys.write_text(f"# release signers\n\n{a} release-ci (2025)\n{pem}\n")
    assert len(read_trusted_keys(keys)) == 2
    policy = SignerPolicy.from_file(keys)
    assert policy.fingerprints == sorted([_fp(a), _fp(b)]) and policy.require_signature

    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody yet\n")
    with pytest.raises(ConfigError, match="no trusted key"):
        SignerPolicy.from_file(empty)
    broken = tmp_path / "broken.txt"
    broken.write_text(f"{a}\nnot-a-key\n")
    with pytest.raises(ConfigError, match="broken.txt line 2"):
        SignerPolicy.from_file(broken)
    with pytest.raises(ConfigError, match="not found"):
        SignerPolicy.from_file(tmp_path / "missing.txt")
    unclosed = tmp_path / "unclosed.txt"
    unclosed.write_text(pem.rsplit("-----END", 1)[0])
    with pytest.raises(ConfigError, match="not closed"):
        SignerPolicy.from_file(unclosed)


def test_policy_from_options(tmp_path: Path) -> None:
    _, a = _key(tmp_path, "a")
    _, b = _key(tmp_path, "b")
    keys = tmp_path / "trusted.txt"
    keys.write_text(b + "\n")
    assert SignerPolicy.from_options(None, None) is None
    assert SignerPolicy.from_options([], None) is None
    both = SignerPolicy.from_options([a], keys)
    assert both is not None and both.fingerprints == sorted([_fp(a), _fp(b)])
    any_signer = SignerPolicy.from_options(require_signature=True)
    assert any_signer is not None and any_signer.require_signature and not any_signer.trusted_keys
    # Trusted keys without requiring a signature would let a stripped manifest through.
    with pytest.raises(ConfigError, match="always requires a signature"):
        SignerPolicy(frozenset({base64.b64decode(a)}), require_signature=False)


def test_policy_public_keys_round_trip_as_command_line_keys(tmp_path: Path) -> None:
    _, a = _key(tmp_path, "a")
    _, b = _key(tmp_path, "b")
    policy = SignerPolicy.from_keys([b, a])
    assert sorted(policy.public_keys) == sorted([a, b])
    assert policy.public_keys == sorted(policy.public_keys, key=base64.b64decode)
    assert SignerPolicy.from_keys(policy.public_keys) == policy
    assert SignerPolicy(require_signature=True).public_keys == []


# -- the verdict under a policy -----------------------------------------------------------------


def test_signed_stripped_and_foreign_manifests_under_a_policy(tmp_path: Path) -> None:
    a_path, a = _key(tmp_path, "a")
    b_path, b = _key(tmp_path, "b")
    store = RunStore(tmp_path / "art")
    policy = SignerPolicy.from_keys([a])
    run = stub_run(store.root, a_path)

    good = store.verify(run.run_id, policy=policy)
    assert good.ok and good.signature == "valid" and good.signer_trusted is True
    assert good.signer_fingerprint == _fp(a)

    forge(store, run, None)  # stripped, hash recomputed
    assert store.verify(run.run_id).ok  # no policy: an unsigned manifest is fine, as before
    stripped = store.verify(run.run_id, policy=policy)
    assert not stripped.ok and stripped.signature == "unsigned" and stripped.signer_trusted is False
    assert stripped.problems == [
        "manifest is not signed, but the signer policy requires a signature by a trusted key"
    ]

    forge(store, run, b_path)  # re-signed with another key
    unchecked = store.verify(run.run_id)
    assert unchecked.ok and unchecked.signature == "valid" and unchecked.signer_trusted is None
    foreign = store.verify(run.run_id, policy=policy)
    assert not foreign.ok and foreign.signature == "untrusted" and foreign.signer_trusted is False
    assert foreign.problems == [
        f"signed by key {_fp(b)}, which the signer policy does not trust (trusted: {_fp(a)})"
    ]
    # Trusting both keys accepts it: the policy is the only difference.
    assert store.verify(run.run_id, policy=SignerPolicy.from_keys([a, b])).ok


def test_require_signature_without_keys_accepts_any_signer(tmp_path: Path) -> None:
    b_path, _ = _key(tmp_path, "b")
    store = RunStore(tmp_path / "art")
    run = stub_run(store.root)
    any_signer = SignerPolicy(require_signature=True)
    unsigned = store.verify(run.run_id, policy=any_signer)
    assert unsigned.problems == ["manifest is not signed, but the signer policy requires a signature"]
    forge(store, run, b_path)
    signed = store.verify(run.run_id, policy=any_signer)
    assert signed.ok and signed.signer_trusted is None  # origin not checked: no keys


def test_invalid_signature_fails_with_or_without_policy(tmp_path: Path) -> None:
    a_path, a = _key(tmp_path, "a")
    store = RunStore(tmp_path / "art")
    run = stub_run(store.root, a_path)
    data = run.model_dump(mode="json")
    data["signature"]["value"] = base64.b64encode(b"\0" * 64).decode()
    store.manifest_path(run.run_id).write_text(RunManifest.model_validate(data).to_json())
    for policy in (None, SignerPolicy.from_keys([a])):
        result = store.verify(run.run_id, policy=policy)
        assert result.signature == "invalid" and result.problems == ["signature does not verify"]


# -- outputs stay inside the run folder ---------------------------------------------------------


@pytest.fixture()
def opened_paths() -> Iterator[list[str]]:
    """Every path passed to open()/os.open() while the fixture is active (a Python audit hook)."""
    seen: list[str] = []
    active = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if active[0] and event == "open" and isinstance(args[0], str | bytes):
            seen.append(os.fsdecode(args[0]))

    sys.addaudithook(hook)  # hooks cannot be removed: switch it off instead
    yield seen
    active[0] = False


def _with_outputs(store: RunStore, run: RunManifest, outputs: dict[str, str]) -> None:
    changed = run.model_copy(deep=True)
    changed.outputs = {**run.outputs, **outputs}
    changed.seal().save(store.manifest_path(run.run_id))


def test_outputs_outside_the_run_folder_are_reported_without_reading_them(
    tmp_path: Path, opened_paths: list[str]
) -> None:
    store = RunStore(tmp_path / "art")
    run = stub_run(store.root)
    secret = tmp_path / "secret"
    secret.write_text("top secret\n")
    real_hash = sha256_file(secret)
    rel_up = "../../../secret"  # from art/runs/<id>: tmp_path/secret
    assert (store.run_dir(run.run_id) / rel_up).resolve() == secret.resolve()
    _with_outputs(store, run, {rel_up: real_hash, str(secret): real_hash})
    opened_paths.clear()
    result = store.verify(run.run_id)
    assert not result.ok and result.outputs_ok is False
    assert result.problems == [
        f"output path {rel_up!r} is not a plain relative path inside the run folder; not read",
        f"output path {str(secret)!r} is not a plain relative path inside the run folder; not read",
    ]
    assert not [p for p in opened_paths if "secret" in p]
    # No oracle: the verdict is the same whether the outside file exists or not.
    secret.unlink()
    assert store.verify(run.run_id).problems == result.problems


def test_symlinks_out_of_the_run_folder_are_reported_not_followed(
    tmp_path: Path, opened_paths: list[str]
) -> None:
    store = RunStore(tmp_path / "art")
    run = stub_run(store.root)
    rdir = store.run_dir(run.run_id)
    secret = tmp_path / "secret"
    secret.write_text("top secret\n")
    (rdir / "adapter" / "absolute.bin").symlink_to(secret)
    (rdir / "adapter" / "relative.bin").symlink_to("../../../../secret")
    (rdir / "adapter" / "inside.bin").symlink_to("../train_log.jsonl")  # stays inside: followed
    digest = sha256_file(secret)
    _with_outputs(
        store,
        run,
        {
            "adapter/absolute.bin": digest,
            "adapter/relative.bin": digest,
            "adapter/inside.bin": run.outputs["train_log.jsonl"],
        },
    )
    opened_paths.clear()
    result = store.verify(run.run_id)
    assert result.problems == [
        "output adapter/absolute.bin is behind a symbolic link that leaves the run folder; not read",
        "output adapter/relative.bin is behind a symbolic link that leaves the run folder; not read",
    ]
    assert not [p for p in opened_paths if "secret" in p]
    secret.unlink()
    assert store.verify(run.run_id).problems == result.problems  # a dangling link reads the same


def test_a_linked_output_folder_and_a_linked_run_folder_are_reported(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "art")
    run = stub_run(store.root)
    rdir = store.run_dir(run.run_id)
    elsewhere = tmp_path / "elsewhere"
    (rdir / "adapter").rename(elsewhere)
    (rdir / "adapter").symlink_to(elsewhere)
    problems = store.verify(run.run_id).problems
    assert "output folder adapter is a symbolic link, not a folder of the run" in problems
    assert any("adapter/stub_adapter.bin is behind a symbolic link" in p for p in problems)

    (rdir / "adapter").unlink()
    elsewhere.rename(rdir / "adapter")
    assert store.verify(run.run_id).ok
    moved = tmp_path / "moved-run"
    rdir.rename(moved)
    rdir.symlink_to(moved)
    linked = store.verify(run.run_id)
    assert linked.outputs_ok is False
    assert linked.problems == [f"run folder runs/{run.run_id} is a symbolic link: outputs not checked"]


def test_unrecorded_files_in_output_folders_are_reported(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "art")
    run = stub_run(store.root)
    rdir = store.run_dir(run.run_id)
    # Files other commands add to the run folder's top level, and checkpoints: not outputs.
    (rdir / "eval.json").write_text("{}")
    (rdir / "MODEL_CARD.md").write_text("# card")
    (rdir / "model.sig").write_text("sig")
    (rdir / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (rdir / "checkpoints" / "checkpoint-1" / "weights.bin").write_bytes(b"w")
    assert store.verify(run.run_id).ok

    (rdir / "adapter" / "chat_template.jinja").write_text("{{ evil }}")
    (rdir / "adapter" / "extra" / "deeper").mkdir(parents=True)
    (rdir / "adapter" / "extra" / "deeper" / "hook.py").write_text("import os")
    (rdir / "adapter" / "tokenizer.json").symlink_to("../config.yaml")
    os.mkfifo(rdir / "adapter" / "pipe")
    result = store.verify(run.run_id)
    assert not result.ok and result.outputs_ok is False and result.hash_ok
    assert result.problems == [
        "adapter/chat_template.jinja is not recorded in the manifest",
        "adapter/extra/deeper/hook.py is not recorded in the manifest",
        "adapter/pipe is not recorded in the manifest",
        "adapter/tokenizer.json is not recorded in the manifest",
    ]
    # Without output checks (a quick manifest check) nothing under the run folder is read.
    assert store.verify(run.run_id, check_outputs=False).ok


def test_many_unrecorded_files_are_counted_not_listed(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "art")
    run = stub_run(store.root)
    adapter = store.run_dir(run.run_id) / "adapter"
    for i in range(25):
        (adapter / f"extra-{i:02d}.txt").write_text("x")
    problems = store.verify(run.run_id).problems
    assert (
        len(problems) == 21
        and problems[-1] == "5 more files in output folders are not recorded in the manifest"
    )


def test_a_recorded_output_that_is_not_a_regular_file(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "art")
    run = stub_run(store.root)
    log = store.run_dir(run.run_id) / "train_log.jsonl"
    log.unlink()
    os.mkfifo(log)  # opening a FIFO to hash it would block the verifier forever
    assert store.verify(run.run_id).problems == ["output train_log.jsonl is not a regular file"]


# -- each refusal and description, by its words -------------------------------------------------


def test_a_policy_refuses_keys_that_are_not_32_bytes_and_an_empty_key_list() -> None:
    with pytest.raises(ConfigError, match="a trusted key must be 32 raw bytes, got 31"):
        SignerPolicy(frozenset({b"k" * 31}), require_signature=True)
    with pytest.raises(ConfigError, match="--public-key: no trusted key given"):
        SignerPolicy.from_keys([])


def test_a_policy_describes_what_it_demands(tmp_path: Path) -> None:
    _, a = _key(tmp_path, "a")
    _, b = _key(tmp_path, "b")
    one = SignerPolicy.from_keys([a])
    assert one.describe() == f"signed by a trusted key ({_fp(a)})"
    two = SignerPolicy.from_keys([a, b])
    assert two.describe() == f"signed by one of 2 trusted keys ({', '.join(sorted([_fp(a), _fp(b)]))})"
    assert SignerPolicy(require_signature=True).describe() == "signed (by any key)"
    assert SignerPolicy().describe() == "no signer policy"


def test_judging_an_invalid_signature_says_whether_origin_was_checked(tmp_path: Path) -> None:
    from provenir.core.signers import INVALID_SIGNATURE

    _, a = _key(tmp_path, "a")
    assert SignerPolicy.from_keys([a]).judge("invalid", None) == ("invalid", False, INVALID_SIGNATURE)
    assert SignerPolicy().judge("invalid", None) == ("invalid", None, INVALID_SIGNATURE)


def test_a_bad_key_is_quoted_by_its_start_only() -> None:
    with pytest.raises(ConfigError) as long_key:
        parse_public_key("ABCDEFGHIJKLMNOPQRSTUVWXYZ", source="--public-key")
    assert "'ABCDEFGHIJKL…'" in str(long_key.value) and "MNOP" not in str(long_key.value)
    with pytest.raises(ConfigError) as short_key:
        parse_public_key("ABCDEFGHIJKL", source="--public-key")
    assert "'ABCDEFGHIJKL'" in str(short_key.value) and "…" not in str(short_key.value)
    with pytest.raises(ConfigError) as one_more:
        parse_public_key("ABCDEFGHIJKLM", source="--public-key")
    assert "'ABCDEFGHIJKL…'" in str(one_more.value)


def test_a_base64_key_with_other_characters_is_refused(tmp_path: Path) -> None:
    _, a = _key(tmp_path, "a")
    with pytest.raises(ConfigError, match="is not an Ed25519 public key"):
        parse_public_key(a[:8] + "!" + a[8:])


def test_pem_keys_that_are_unreadable_or_not_ed25519_are_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    garbled = "-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----"
    with pytest.raises(ConfigError, match="k.pub: not a readable PEM public key"):
        parse_public_key(garbled, source="k.pub")
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ConfigError, match="k.pub: the PEM public key is not an Ed25519 key"):
        parse_public_key(ec_pem, source="k.pub")


def test_an_unreadable_or_empty_trusted_keys_file_says_why(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the trusted keys file \(Is a directory\)"):
        read_trusted_keys(tmp_path)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"cannot read the trusted keys file \(UnicodeDecodeError\)"):
        read_trusted_keys(binary)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody yet\n\n")
    with pytest.raises(ConfigError, match="no trusted key in the file"):
        read_trusted_keys(empty)
