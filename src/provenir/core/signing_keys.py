"""Signing keys on disk: creating key pairs, loading the private key that signs, naming keys.

Two kinds, because the two signers accept different keys: manifests and DSSE attestations are
signed with Ed25519, while the OpenSSF ``model-signing`` library used for model folders
(:mod:`provenir.governance.model_signing`) takes only ECDSA keys (P-256, P-384, P-521) and fails
on Ed25519. A run that signs both names two keys (``manifest.signing_key_path`` and
``manifest.model_signing_key_path``)::

    from provenir.core.signing_keys import generate_key_pair, load_signing_key, public_key_b64

    pair = generate_key_pair("keys/run.pem")          # Ed25519; keys/run.pem.pub beside it
    key = load_signing_key("keys/run.pem")            # ConfigError with an actionable line if unusable
    public = public_key_b64(key)                      # what `--public-key` and manifests carry

Private keys are written mode 0600 from their first byte. An Ed25519 key is named by its
*fingerprint* (:func:`provenir.core.signers.fingerprint`): the first 16 hex characters of the
SHA-256 of the raw 32-byte public key; manifests show it as the signer and DSSE envelopes carry
it as ``keyid``. The verifying side (public keys, trusted-keys files, the signer policy) lives in
:mod:`provenir.core.signers`.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast, get_args

from provenir.core.atomic import atomic_write_bytes
from provenir.core.errors import ConfigError
from provenir.core.extras import require_extra
from provenir.core.hashing import sha256_bytes
from provenir.core.signers import fingerprint, parse_public_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: Environment variable naming the signing key when the config names none.
SIGNING_KEY_ENV = "PROVENIR_SIGNING_KEY"

#: ``ed25519`` signs manifests and attestations; ``ecdsa-p256`` signs model folders.
KeyAlgorithm = Literal["ed25519", "ecdsa-p256"]
KEY_ALGORITHMS: tuple[str, ...] = get_args(KeyAlgorithm)


def signing_key_path(configured: str | os.PathLike[str] | None = None) -> Path | None:
    """The key to sign with: ``configured`` if given, else ``$PROVENIR_SIGNING_KEY``, else None."""
    chosen = configured or os.environ.get(SIGNING_KEY_ENV)
    return Path(chosen) if chosen else None


def load_signing_key(path: str | os.PathLike[str], *, purpose: str = "signing") -> Ed25519PrivateKey:
    """The unencrypted Ed25519 PEM private key at ``path``; :class:`ConfigError` naming what is wrong."""
    require_extra("cryptography", "signing", purpose=purpose)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key_path = Path(path)
    if not key_path.is_file():
        raise ConfigError(f"signing key not found: {key_path}")
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{key_path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{key_path}: signing key must be Ed25519")
    return key


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key of ``key``."""
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key of ``key``, base64 (the form ``--public-key`` takes)."""
    return base64.b64encode(raw_public_key(key)).decode()


def public_key_object(public_key: str) -> Ed25519PublicKey:
    """A ``cryptography`` public key from base64 or PEM text (see :func:`~provenir.core.signers.parse_public_key`)."""
    require_extra("cryptography", "signing", purpose="checking a signature")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(parse_public_key(public_key))


def generate_signing_key(path: str | os.PathLike[str]) -> str:
    """Write a new Ed25519 private key (PEM, mode 0600) to ``path``; return its fingerprint."""
    require_extra("cryptography", "signing", purpose="creating a signing key")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    atomic_write_bytes(path, pem, mode=0o600)  # private from the first byte
    return fingerprint(raw_public_key(key))


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
        key_fingerprint = generate_signing_key(private_path)
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
        key_fingerprint = sha256_bytes(public_pem)[:16]
    return KeyPair(private_path, pub_path, kind, key_fingerprint)
