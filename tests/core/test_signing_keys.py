"""One Ed25519 key loader for manifests and attestations (trusted-keys files: tests/core/test_signers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provenir.core.errors import ConfigError
from provenir.core.manifest import RunManifest
from provenir.core.signers import fingerprint, parse_public_key
from provenir.core.signing_keys import generate_signing_key, load_signing_key, public_key_b64


def test_the_manifest_signer_is_the_loaded_key(tmp_path: Path) -> None:
    key_path = tmp_path / "run.pem"
    printed = generate_signing_key(key_path)
    public = public_key_b64(load_signing_key(key_path))
    manifest = RunManifest(
        name="n", backend="stub", algorithm="sft", config_hash="c", dataset_hash="d", seed=0, config={}
    ).seal(key_path)
    assert manifest.signature is not None and manifest.signature.public_key == public
    assert fingerprint(parse_public_key(public)) == manifest.signature.fingerprint == printed


def test_unusable_keys_are_one_actionable_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="signing key not found"):
        load_signing_key(tmp_path / "missing.pem")
    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ConfigError, match="must be Ed25519"):
        load_signing_key(ec_key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        load_signing_key(garbage)


def test_the_signing_key_is_the_configured_one_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provenir.core.signing_keys import SIGNING_KEY_ENV, signing_key_path

    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    assert signing_key_path() is None
    assert signing_key_path("run.pem") == Path("run.pem")
    monkeypatch.setenv(SIGNING_KEY_ENV, str(tmp_path / "env.pem"))
    assert signing_key_path() == tmp_path / "env.pem"
    assert signing_key_path("run.pem") == Path("run.pem")


def test_a_public_key_must_be_32_bytes_of_base64(tmp_path: Path) -> None:
    import base64

    from provenir.core.signers import parse_public_key as decode_public_key
    from provenir.core.signing_keys import public_key_object

    generate_signing_key(tmp_path / "k.pem")
    key = load_signing_key(tmp_path / "k.pem")
    public = public_key_b64(key)
    assert decode_public_key(f"  {public}\n") == base64.b64decode(public)
    assert public_key_object(public).verify(key.sign(b"m"), b"m") is None
    for bad in (
        "",
        "not base64!",
        base64.b64encode(b"x" * 31).decode(),
        base64.b64encode(b"x" * 33).decode(),
    ):
        with pytest.raises(ConfigError, match="is not an Ed25519 public key"):
            decode_public_key(bad)
    with pytest.raises(ConfigError, match="not an Ed25519 public key"):
        decode_public_key("AAAA")


def test_fingerprint_is_the_first_16_hex_of_the_raw_keys_sha256() -> None:
    import base64
    import hashlib

    raw = bytes(range(32))
    assert (
        fingerprint(parse_public_key(base64.b64encode(raw).decode())) == hashlib.sha256(raw).hexdigest()[:16]
    )


def test_key_pairs_name_their_files_and_fingerprints(tmp_path: Path) -> None:
    import hashlib
    import stat

    from provenir.core.signing_keys import KEY_ALGORITHMS, generate_key_pair, public_key_path

    assert KEY_ALGORITHMS == ("ed25519", "ecdsa-p256")
    ed = generate_key_pair(tmp_path / "ed.pem")
    assert ed.algorithm == "ed25519" and ed.public_key == public_key_path(tmp_path / "ed.pem")
    assert ed.fingerprint == fingerprint(parse_public_key(public_key_b64(load_signing_key(ed.private_key))))
    ec_pair = generate_key_pair(tmp_path / "ec.pem", "ecdsa-p256")
    assert ec_pair.algorithm == "ecdsa-p256"
    assert ec_pair.fingerprint == hashlib.sha256(ec_pair.public_key.read_bytes()).hexdigest()[:16]
    for pair in (ed, ec_pair):  # the public key is for handing out: readable, never executable
        assert stat.S_IMODE(pair.public_key.stat().st_mode) == 0o644
        assert stat.S_IMODE(pair.private_key.stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="unknown key algorithm 'rsa': use one of ed25519, ecdsa-p256"):
        generate_key_pair(tmp_path / "rsa.pem", "rsa")
    assert not (tmp_path / "rsa.pem").exists()


def test_a_key_pair_never_overwrites_a_link(tmp_path: Path) -> None:
    from provenir.core.signing_keys import generate_key_pair

    (tmp_path / "dangling.pem").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="already exists"):
        generate_key_pair(tmp_path / "dangling.pem")
    assert not (tmp_path / "nowhere").exists()
