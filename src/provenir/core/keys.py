"""Signing key pairs on disk: an Ed25519 key for manifests, an ECDSA P-256 key for model signing.

Two kinds, because the two signers accept different keys: the manifest signature is Ed25519
(:mod:`provenir.core.manifest`), while the OpenSSF ``model-signing`` library used for model
folders (:mod:`provenir.governance.model_signing`) takes only ECDSA keys (P-256, P-384, P-521)
and fails on Ed25519. A run that signs both therefore names two keys
(``manifest.signing_key_path`` and ``manifest.model_signing_key_path``)::

    from provenir.core.keys import generate_key_pair

    pair = generate_key_pair("keys/model.pem", "ecdsa-p256")
    print(pair.public_key, pair.fingerprint)        # keys/model.pem.pub, 16 hex characters

The private key is written mode 0600 from its first byte; the public key goes next to it as
``<path>.pub`` (PEM, SubjectPublicKeyInfo): that is the file a verifier is handed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

from provenir.core.atomic import atomic_write_bytes
from provenir.core.errors import ConfigError
from provenir.core.extras import require_extra
from provenir.core.hashing import sha256_bytes

#: ``ed25519`` signs manifests; ``ecdsa-p256`` signs model folders (OpenSSF model-signing).
KeyAlgorithm = Literal["ed25519", "ecdsa-p256"]
KEY_ALGORITHMS: tuple[str, ...] = get_args(KeyAlgorithm)


@dataclass(frozen=True)
class KeyPair:
    """Where a generated key pair was written, and the public key's fingerprint.

    ``fingerprint``: for Ed25519 the first 16 hex digits of the SHA-256 of the raw public key
    (what ``manifest verify`` prints as the signer); for ECDSA those of the SHA-256 of the
    public key PEM, which is how a ``model-signing`` signature names its key (the bundle's
    ``verificationMaterial.publicKey.hint`` starts with it).
    """

    private_key: Path
    public_key: Path
    algorithm: KeyAlgorithm
    fingerprint: str


def public_key_path(private_key: str | os.PathLike[str]) -> Path:
    """``<private key path>.pub``: where :func:`generate_key_pair` puts the public key."""
    return Path(os.fspath(private_key) + ".pub")


def generate_key_pair(path: str | os.PathLike[str], algorithm: str = "ed25519") -> KeyPair:
    """Write a new private key (PEM, 0600) to ``path`` and its public key to ``<path>.pub``.

    Refuses (:class:`ConfigError`) to overwrite either file and an ``algorithm`` not in
    :data:`KEY_ALGORITHMS`.
    """
    if algorithm not in KEY_ALGORITHMS:
        raise ConfigError(f"unknown key algorithm {algorithm!r}: use one of {', '.join(KEY_ALGORITHMS)}")
    kind = cast(KeyAlgorithm, algorithm)
    private_path, pub_path = Path(path), public_key_path(path)
    for existing in (private_path, pub_path):
        if existing.exists() or existing.is_symlink():
            raise ConfigError(f"{existing} already exists; refusing to overwrite a key")
    require_extra("cryptography", "signing", purpose="creating a signing key")
    from cryptography.hazmat.primitives import serialization

    if kind == "ed25519":
        # The manifest module owns its key format and fingerprint; reuse it unchanged.
        from provenir.core.manifest import generate_signing_key

        fingerprint = generate_signing_key(private_path)
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        public = key.public_key()
    else:
        from cryptography.hazmat.primitives.asymmetric import ec

        ec_key = ec.generate_private_key(ec.SECP256R1())
        pem = ec_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        atomic_write_bytes(private_path, pem, mode=0o600)  # private from the first byte
        public = ec_key.public_key()
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    atomic_write_bytes(pub_path, public_pem, mode=0o644)
    if kind == "ecdsa-p256":
        fingerprint = sha256_bytes(public_pem)[:16]
    return KeyPair(private_path, pub_path, kind, fingerprint)
