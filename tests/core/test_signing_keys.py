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
