"""Model signing refusals one by one: keys, folders, signatures and runs that must not be signed or trusted."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import ConfigError, ModelSignatureError
from provenir.core.manifest import RunManifest
from provenir.core.signing_keys import KeyPair, generate_key_pair
from provenir.core.store import RunStore
from provenir.governance.audit import AuditReader
from provenir.governance.model_signing import (
    SIGNATURE_NAME,
    run_model_folder,
    sign_model,
    sign_run,
    verify_model,
    verify_model_sigstore,
    verify_run,
)

pytest.importorskip("model_signing")
pytest.importorskip("OpenSSL")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_key_pair(tmp_path_factory.mktemp("keys") / "model.pem", "ecdsa-p256")


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    model = tmp_path / "adapter"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    return model


def _stub_run(out: Path) -> RunManifest:
    from provenir.train.runner import train

    return train(RunConfig.from_dict({"backend": "stub", "output_dir": str(out)}))


def _write_key(path: Path, key: object) -> Path:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def test_a_verified_signature_names_its_key_by_fingerprint(folder: Path, pair: KeyPair) -> None:
    signed = sign_model(folder, pair.private_key)
    checked = verify_model(folder, pair.public_key)
    assert signed.key_fingerprint == checked.key_fingerprint == pair.fingerprint
    assert len(checked.key_fingerprint or "") == 16 and checked.matches_manifest is None


@pytest.mark.parametrize(
    ("make", "described"),
    [
        (lambda: __import__("cryptography.hazmat.primitives.asymmetric.ed448", fromlist=["x"])
         .Ed448PrivateKey.generate(), "this is Ed448"),
        (lambda: __import__("cryptography.hazmat.primitives.asymmetric.rsa", fromlist=["x"])
         .generate_private_key(65537, 2048), "this is RSA-2048"),
        (lambda: __import__("cryptography.hazmat.primitives.asymmetric.dsa", fromlist=["x"])
         .generate_private_key(1024), "this is DSA"),
        (lambda: __import__("cryptography.hazmat.primitives.asymmetric.ec", fromlist=["x"])
         .generate_private_key(__import__("cryptography.hazmat.primitives.asymmetric.ec", fromlist=["x"])
                               .SECP256K1()), "this is ECDSA on secp256k1 (P-256, P-384 and P-521 are supported)"),
        (lambda: __import__("cryptography.hazmat.primitives.asymmetric.x25519", fromlist=["x"])
         .X25519PrivateKey.generate(), "this is X25519PublicKey"),
    ],
)  # fmt: skip
def test_an_unusable_key_is_named_by_its_kind(tmp_path: Path, folder: Path, make, described: str) -> None:
    key = _write_key(tmp_path / "k.pem", make())
    with pytest.raises(ConfigError, match="model signing needs an ECDSA P-256 key") as caught:
        sign_model(folder, key)
    assert described in str(caught.value)
    assert not (tmp_path / SIGNATURE_NAME).exists()


def test_missing_and_swapped_key_files_are_named(tmp_path: Path, folder: Path, pair: KeyPair) -> None:
    with pytest.raises(ConfigError, match="model signing key not found"):
        sign_model(folder, tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="this is a public key, pass the private key"):
        sign_model(folder, pair.public_key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key") as caught:
        sign_model(folder, garbage)
    assert "public key" not in str(caught.value)
    sign_model(folder, pair.private_key)
    with pytest.raises(ConfigError, match="public key not found"):
        verify_model(folder, tmp_path / "missing.pub")
    with pytest.raises(ConfigError, match="not a PEM public key") as caught:
        verify_model(folder, garbage)
    assert "private key" not in str(caught.value)


def test_only_a_real_folder_is_signed_or_verified(tmp_path: Path, folder: Path, pair: KeyPair) -> None:
    link = tmp_path / "link"
    link.symlink_to(folder, target_is_directory=True)
    for target in (folder / "w.bin", link, tmp_path / "missing"):
        with pytest.raises(ModelSignatureError, match="is not a folder: only a model folder can be signed"):
            sign_model(target, pair.private_key)
    sign_model(folder, pair.private_key)
    for target in (folder / "w.bin", link):
        with pytest.raises(ModelSignatureError, match="is not a folder"):
            verify_model(target, pair.public_key, folder.parent / SIGNATURE_NAME)


def test_a_signature_file_that_is_not_one_is_named(folder: Path, pair: KeyPair) -> None:
    from provenir.governance.model_signing import _signed_files

    signed = sign_model(folder, pair.private_key)
    assert _signed_files(signed.signature_path) == signed.files
    bundle = json.loads(signed.signature_path.read_text())
    payload = bundle["dsseEnvelope"]["payload"]
    assert base64.b64decode(payload, validate=True)
    # Characters outside base64 are an error, never silently skipped.
    junk = {**bundle, "dsseEnvelope": {**bundle["dsseEnvelope"], "payload": payload[:8] + "!" + payload[8:]}}
    for broken in ("{not json", json.dumps({**bundle, "dsseEnvelope": {}}), json.dumps(junk)):
        signed.signature_path.write_text(broken)
        with pytest.raises(ModelSignatureError, match="not a model-signing signature"):
            _signed_files(signed.signature_path)
        with pytest.raises(ModelSignatureError):
            verify_model(folder, pair.public_key)


def test_sigstore_verification_offline_fails_with_one_line(
    folder: Path, pair: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError(101, "Network is unreachable (cut by the test)")

    monkeypatch.setattr(socket.socket, "connect", unreachable)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(socket, "getaddrinfo", unreachable)
    sign_model(folder, pair.private_key)
    with pytest.raises(ModelSignatureError, match="Sigstore verification needs network access") as caught:
        verify_model_sigstore(folder, "someone@example.com", "https://accounts.example.com")
    assert "\n" not in str(caught.value)


# -- stored runs ------------------------------------------------------------------------------------


def test_a_run_without_a_model_folder_has_nothing_to_sign(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    base = {"name": "m", "backend": "stub", "algorithm": "sft", "config_hash": "c", "dataset_hash": "d"}
    for outputs, adapter_hash in (
        ({"w.bin": "a" * 64}, "a" * 64),  # a weights file at the top of the run folder: no folder
        ({"../evil/w.bin": "a" * 64}, "a" * 64),  # a folder outside the run folder
        ({"adapter/w.bin": "a" * 64}, "b" * 64),  # no output has the weights' hash
        ({"adapter/w.bin": "a" * 64}, None),
    ):
        manifest = RunManifest(**base, seed=0, config={}, outputs=outputs, adapter_hash=adapter_hash)
        with pytest.raises(ModelSignatureError, match="recorded no model folder among its outputs"):
            run_model_folder(store, manifest)


def test_a_model_folder_that_is_a_link_out_of_the_run_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    manifest = _stub_run(out)
    store = RunStore(out)
    adapter = store.run_dir(manifest.run_id) / "adapter"
    elsewhere = tmp_path / "elsewhere"
    adapter.rename(elsewhere)
    adapter.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ModelSignatureError, match="model folder adapter points outside the run folder"):
        run_model_folder(store, manifest)


def test_a_run_that_does_not_verify_or_did_not_complete_is_not_signed_or_trusted(
    tmp_path: Path, pair: KeyPair
) -> None:
    out = tmp_path / "artifacts"
    manifest = _stub_run(out)
    store = RunStore(out)
    path = store.manifest_path(manifest.run_id)
    sign_run(manifest.run_id, key_path=pair.private_key, output_dir=out)
    good = path.read_text()
    path.write_text(good.replace('"seed": ', '"seed": 1', 1))
    with pytest.raises(ModelSignatureError, match="does not verify .*: not signing its model"):
        sign_run(manifest.run_id, key_path=pair.private_key, output_dir=out)
    with pytest.raises(ModelSignatureError, match=f"{path.name} does not verify: "):
        verify_run(manifest.run_id, public_key_path=pair.public_key, output_dir=out)
    path.write_text(good)
    failed = RunManifest.load(path)
    failed.status = "failed"
    failed.seal().save(path)
    with pytest.raises(ModelSignatureError, match="did not complete \\(failed\\): nothing to sign"):
        sign_run(manifest.run_id, key_path=pair.private_key, output_dir=out)


def test_verify_run_names_the_signature_verdict_for_a_changed_file(tmp_path: Path, pair: KeyPair) -> None:
    out = tmp_path / "artifacts"
    manifest = _stub_run(out)
    sign_run(manifest.run_id, key_path=pair.private_key, output_dir=out)
    weights = RunStore(out).run_dir(manifest.run_id) / "adapter" / "stub_adapter.bin"
    weights.write_bytes(weights.read_bytes() + b"!")
    with pytest.raises(
        ModelSignatureError, match="does not match its signature model.sig: stub_adapter.bin changed"
    ):
        verify_run(manifest.run_id, public_key_path=pair.public_key, output_dir=out)


def test_verify_run_takes_a_key_or_a_complete_sigstore_identity(tmp_path: Path, pair: KeyPair) -> None:
    with pytest.raises(ConfigError, match="one of them"):
        verify_run("latest", output_dir=tmp_path)
    with pytest.raises(ConfigError, match="one of them"):
        verify_run("latest", public_key_path=pair.public_key, sigstore_identity="a@b.c", output_dir=tmp_path)
    with pytest.raises(ConfigError, match="needs its OIDC issuer"):
        verify_run("latest", sigstore_identity="a@b.c", output_dir=tmp_path)


def test_a_signature_outside_the_run_folder_is_logged_by_name_only(tmp_path: Path, pair: KeyPair) -> None:
    out = tmp_path / "artifacts"
    manifest = _stub_run(out)
    elsewhere = tmp_path / "signatures" / "release.sig"
    elsewhere.parent.mkdir()
    sign_run(manifest.run_id, key_path=pair.private_key, output_dir=out, signature_path=elsewhere)
    [record] = AuditReader(RunStore(out).audit_dir).query(event="model_signed").records
    assert record.fields["signature"] == "release.sig"
    assert str(tmp_path) not in json.dumps(record.to_dict())


def test_a_missing_model_signing_library_names_its_distribution(
    folder: Path, pair: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from provenir.core.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "model_signing", None)
    with pytest.raises(
        MissingExtraError, match="model signing needs model-signing, which is not installed: "
    ) as caught:
        sign_model(folder, pair.private_key)
    assert "without declaring it" not in str(caught.value)


# -- keyless signing, without the network: Sigstore's signer stood in for by a key ---------------------


@pytest.fixture()
def offline_sigstore(monkeypatch: pytest.MonkeyPatch, pair: KeyPair) -> dict[str, object]:
    """Sigstore's signer and verifier replaced by the library's own key-based ones (no network).

    Provenir's code around them (scratch file, atomic move, digests read back, the result) runs
    unchanged; only the Fulcio/Rekor round trip is skipped. Records the arguments Provenir passed.
    """
    from model_signing import signing, verifying

    seen: dict[str, object] = {}

    def signer(self: signing.Config, **kwargs: object) -> signing.Config:
        seen["signer"] = kwargs
        return self.use_elliptic_key_signer(private_key=pair.private_key)

    def verifier(self: verifying.Config, **kwargs: object) -> verifying.Config:
        seen["verifier"] = kwargs
        return self.use_elliptic_key_verifier(public_key=pair.public_key)

    monkeypatch.setattr(signing.Config, "use_sigstore_signer", signer)
    monkeypatch.setattr(verifying.Config, "use_sigstore_verifier", verifier)
    return seen


def test_keyless_signing_uses_ambient_credentials_and_returns_the_signature(
    folder: Path, offline_sigstore: dict[str, object]
) -> None:
    from provenir.governance.model_signing import sign_model_sigstore

    signed = sign_model_sigstore(folder, identity_token="token-from-ci")
    assert offline_sigstore["signer"] == {"use_ambient_credentials": True, "identity_token": "token-from-ci"}
    assert signed.method == "sigstore" and signed.key_fingerprint is None
    assert signed.signature_path == folder.parent / SIGNATURE_NAME and set(signed.files) == {"w.bin"}
    checked = verify_model_sigstore(folder, "ci@example.com", "https://issuer.example.com")
    assert offline_sigstore["verifier"] == {
        "identity": "ci@example.com",
        "oidc_issuer": "https://issuer.example.com",
    }
    assert checked.method == "sigstore" and checked.files == signed.files and checked.key_fingerprint is None


def test_keyless_signing_keeps_the_reason_a_folder_cannot_be_signed(
    tmp_path: Path, folder: Path, offline_sigstore: dict[str, object]
) -> None:
    from provenir.governance.model_signing import sign_model_sigstore

    (tmp_path / "elsewhere.bin").write_bytes(b"outside")
    (folder / "link.bin").symlink_to(tmp_path / "elsewhere.bin")
    with pytest.raises(ModelSignatureError, match="cannot sign") as caught:
        sign_model_sigstore(folder)
    assert "network" not in str(caught.value)


def test_verify_run_with_a_sigstore_identity_reaches_sigstore(
    tmp_path: Path, pair: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "artifacts"
    manifest = _stub_run(out)
    sign_run(manifest.run_id, key_path=pair.private_key, output_dir=out)

    def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError(101, "Network is unreachable (cut by the test)")

    monkeypatch.setattr(socket.socket, "connect", unreachable)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(socket, "getaddrinfo", unreachable)
    with pytest.raises(ModelSignatureError, match="Sigstore verification needs network access"):
        verify_run(
            manifest.run_id,
            sigstore_identity="ci@example.com",
            sigstore_issuer="https://issuer.example.com",
            output_dir=out,
        )


def test_a_model_folder_that_is_a_link_is_refused_even_inside_the_run(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    manifest = _stub_run(out)
    store = RunStore(out)
    adapter = store.run_dir(manifest.run_id) / "adapter"
    inside = store.run_dir(manifest.run_id) / "real-adapter"
    adapter.rename(inside)
    adapter.symlink_to(inside, target_is_directory=True)
    with pytest.raises(ModelSignatureError, match="model folder adapter points outside the run folder"):
        run_model_folder(store, manifest)


def test_an_import_error_inside_provenir_is_not_blamed_on_the_signing_extra(
    folder: Path, pair: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    broken = types.ModuleType("model_signing")

    def __getattr__(name: str) -> object:  # noqa: N807 - a module's attribute hook
        raise ModuleNotFoundError("No module named 'provenir.missing'", name="provenir.missing")

    broken.__getattr__ = __getattr__  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "model_signing", broken)
    with pytest.raises(ModuleNotFoundError, match="provenir.missing"):
        sign_model(folder, pair.private_key)
