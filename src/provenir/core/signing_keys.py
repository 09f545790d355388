"""Ed25519 signing keys: loading the PEM key ``provenir manifest keygen`` writes, and naming keys.

One loader for everything Provenir signs (manifests, DSSE attestations), so a key that signs
one signs the other and a bad key fails with the same message everywhere::

    from provenir.core.signing_keys import load_signing_key, public_key_b64, fingerprint

    key = load_signing_key("keys/run.pem")     # ConfigError with an actionable line if unusable
    public = public_key_b64(key)               # what `--public-key` and manifests carry
    fingerprint(public)                        # first 16 hex chars of SHA-256(raw public key)

A key is named by its *fingerprint*: the first 16 hex characters of the SHA-256 of the raw
32-byte public key. Manifests show it as the signer and DSSE envelopes carry it as ``keyid``.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import TYPE_CHECKING

from provenir.core.errors import ConfigError
from provenir.core.extras import require_extra
from provenir.core.hashing import sha256_bytes

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: Environment variable naming the signing key when the config names none.
SIGNING_KEY_ENV = "PROVENIR_SIGNING_KEY"


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


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key of ``key``, base64 (the form ``--public-key`` takes)."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def public_key_object(public_key: str) -> Ed25519PublicKey:
    """A ``cryptography`` public key from its base64 raw form (see :func:`decode_public_key`)."""
    require_extra("cryptography", "signing", purpose="checking a signature")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(decode_public_key(public_key))


def fingerprint(public_key: str) -> str:
    """First 16 hex chars of SHA-256 of the raw public key given in base64: what a person compares."""
    return sha256_bytes(decode_public_key(public_key))[:16]


def decode_public_key(public_key: str) -> bytes:
    """The raw bytes of a base64 Ed25519 public key; :class:`ConfigError` unless it is 32 bytes."""
    try:
        raw = base64.b64decode(public_key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            f"{public_key[:60]!r} is not an Ed25519 public key (expected 32 bytes in base64, "
            "like signature.public_key in a signed manifest)"
        )
    return raw


def read_trusted_keys(path: str | os.PathLike[str]) -> list[str]:
    """Base64 Ed25519 public keys from a trusted-keys file, one per line.

    Blank lines and lines starting with ``#`` are skipped; anything after the key on its line
    (separated by white space) is a free-form label, e.g. ``MCowBQ...= release signer``.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read trusted keys file {p} ({exc})") from None
    keys: list[str] = []
    for lineno, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key = text.split()[0]
        try:
            decode_public_key(key)
        except ConfigError:
            raise ConfigError(
                f"{p}:{lineno}: not a base64 Ed25519 public key (one key per line, # for comments)"
            ) from None
        keys.append(key)
    if not keys:
        raise ConfigError(f"{p}: no public keys in it (one base64 Ed25519 public key per line)")
    return keys
