"""SignerPolicy: whose signatures a command or server accepts on a run manifest.

A manifest's Ed25519 signature is checked against the public key the manifest itself carries,
so by itself it proves integrity, not origin: anyone who can write the file can strip the
signature (and recompute ``manifest_hash``) or re-sign it with a key of their own. A policy
closes that gap: with one, a manifest must be signed, and signed by a key the verifier chose
to trust, or verification fails, in every reader alike (``provenir manifest verify``,
``reproduce``, ``report``, and every endpoint of ``provenir serve`` that states verification).
Without a policy an unsigned manifest can verify, and the signature state is only reported.

Keys are given as the base64 of the raw 32-byte Ed25519 public key (what ``provenir manifest
keygen`` prints and a signed manifest's ``signature.public_key`` holds) or as a PEM
``PUBLIC KEY`` block. A trusted-keys file (``--trusted-keys FILE``) is UTF-8 text:

* blank lines and lines starting with ``#`` are ignored;
* any other line is one base64 key, optionally followed by white space and a label
  (``q83vEjRW...= release-ci``);
* a PEM ``-----BEGIN PUBLIC KEY-----`` ... ``-----END PUBLIC KEY-----`` block is one key.

::

    from provenir.core.signers import SignerPolicy

    policy = SignerPolicy.from_options(["q83v...="], "trusted_keys.txt")
    store.verify("latest", policy=policy)
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from provenir.core.errors import ConfigError
from provenir.core.extras import require_extra
from provenir.core.hashing import sha256_bytes

#: Length of a raw Ed25519 public key.
ED25519_KEY_BYTES = 32

SignatureState = Literal["valid", "invalid", "unsigned", "untrusted"]

_PEM_BEGIN = "-----BEGIN "
_PEM_END = "-----END "


def fingerprint(public_key: bytes) -> str:
    """First 16 hex characters of SHA-256(raw public key): what a person compares."""
    return sha256_bytes(public_key)[:16]


@dataclass(frozen=True)
class SignerPolicy:
    """Which signers a verifier accepts.

    ``trusted_keys``: raw 32-byte Ed25519 public keys; a manifest must be signed by one of them.
    ``require_signature``: an unsigned manifest fails. Always true when keys are given (an
    unsigned manifest would otherwise walk around the keys); true without keys means "signed by
    some key" (integrity only). ``SignerPolicy()`` accepts anything, as no policy does.
    """

    trusted_keys: frozenset[bytes] = field(default_factory=frozenset)
    require_signature: bool = False

    def __post_init__(self) -> None:
        for key in self.trusted_keys:
            if len(key) != ED25519_KEY_BYTES:
                raise ConfigError(f"a trusted key must be {ED25519_KEY_BYTES} raw bytes, got {len(key)}")
        if self.trusted_keys and not self.require_signature:
            raise ConfigError(
                "a signer policy with trusted keys always requires a signature "
                "(an unsigned manifest would otherwise bypass the keys)"
            )

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_keys(cls, keys: Iterable[str], *, source: str = "--public-key") -> SignerPolicy:
        """A policy trusting ``keys`` (base64 or PEM each); ``source`` names them in errors."""
        parsed = frozenset(parse_public_key(k, source=source) for k in keys)
        if not parsed:
            raise ConfigError(f"{source}: no trusted key given")
        return cls(parsed, require_signature=True)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SignerPolicy:
        """A policy trusting every key in a trusted-keys file (format: see the module docs)."""
        return cls.from_keys(read_trusted_keys(path), source=str(path))

    @classmethod
    def from_options(
        cls,
        public_keys: Sequence[str] | None = None,
        trusted_keys_file: str | os.PathLike[str] | None = None,
        *,
        require_signature: bool = False,
        keys_source: str = "--public-key",
    ) -> SignerPolicy | None:
        """The policy of the command-line options (``--public-key`` repeated, ``--trusted-keys``),
        or None when none was given (no policy: today's permissive verification).

        Keys from both options are trusted together. ``require_signature`` alone asks for a
        valid signature by any key. ``keys_source`` names ``public_keys`` in errors.
        """
        keys: set[bytes] = set()
        if public_keys:
            keys |= cls.from_keys(public_keys, source=keys_source).trusted_keys
        if trusted_keys_file is not None:
            keys |= cls.from_file(trusted_keys_file).trusted_keys
        if not keys and not require_signature:
            return None
        return cls(frozenset(keys), require_signature=True)

    # -- judging ----------------------------------------------------------------------------

    @property
    def fingerprints(self) -> list[str]:
        """Sorted fingerprints of the trusted keys."""
        return sorted(fingerprint(k) for k in self.trusted_keys)

    @property
    def public_keys(self) -> list[str]:
        """The trusted keys in base64 (as ``--public-key`` takes them), sorted by their bytes."""
        return [base64.b64encode(k).decode() for k in sorted(self.trusted_keys)]

    def trusts(self, public_key: bytes) -> bool:
        """True when ``public_key`` (raw bytes) is one of the trusted keys."""
        return public_key in self.trusted_keys

    def describe(self) -> str:
        """One line: what this policy demands (``signed by one of 2 trusted keys (ab.., cd..)``)."""
        if self.trusted_keys:
            n = len(self.trusted_keys)
            keys = "a trusted key" if n == 1 else f"one of {n} trusted keys"
            return f"signed by {keys} ({', '.join(self.fingerprints)})"
        if self.require_signature:
            return "signed (by any key)"
        return "no signer policy"

    def judge(
        self, state: Literal["valid", "invalid", "unsigned"], public_key: bytes | None
    ) -> tuple[SignatureState, bool | None, str | None]:
        """Apply the policy to a signature's cryptographic state.

        Returns ``(state, signer_trusted, problem)``: ``state`` becomes ``untrusted`` for a valid
        signature by a key outside the policy; ``signer_trusted`` is None when the policy names
        no keys (origin not checked); ``problem`` is the one-line text every reader reports.
        """
        if state == "invalid":
            return "invalid", False if self.trusted_keys else None, INVALID_SIGNATURE
        if state == "unsigned":
            if self.require_signature:
                return "unsigned", False if self.trusted_keys else None, self._unsigned_problem()
            return "unsigned", None, None
        if not self.trusted_keys:
            return "valid", None, None
        if public_key is not None and self.trusts(public_key):
            return "valid", True, None
        shown = fingerprint(public_key) if public_key is not None else "?"
        return (
            "untrusted",
            False,
            (
                f"signed by key {shown}, which the signer policy does not trust "
                f"(trusted: {', '.join(self.fingerprints)})"
            ),
        )

    def _unsigned_problem(self) -> str:
        if self.trusted_keys:
            return "manifest is not signed, but the signer policy requires a signature by a trusted key"
        return "manifest is not signed, but the signer policy requires a signature"


#: The problem every reader reports for a signature that does not verify against its own key.
INVALID_SIGNATURE = "signature does not verify"


# -- keys -----------------------------------------------------------------------------------------


def parse_public_key(text: str, *, source: str = "key") -> bytes:
    """The raw 32 bytes of an Ed25519 public key given as base64 or as a PEM ``PUBLIC KEY`` block.

    Raises :class:`ConfigError` naming ``source`` (never echoing more than the key's start).
    """
    stripped = text.strip()
    shown = (stripped[:12] + "…") if len(stripped) > 12 else stripped
    if stripped.startswith(_PEM_BEGIN):
        return _pem_public_key(stripped, source=source)
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != ED25519_KEY_BYTES:
        raise ConfigError(
            f"{source}: {shown!r} is not an Ed25519 public key (base64 of {ED25519_KEY_BYTES} bytes, "
            "as `provenir manifest keygen` prints, or a PEM PUBLIC KEY block)"
        )
    return raw


def _pem_public_key(pem: str, *, source: str) -> bytes:
    if "PRIVATE KEY" in pem.splitlines()[0]:
        raise ConfigError(
            f"{source}: this is a private key; trust its public key instead "
            "(`provenir manifest keygen` prints it)"
        )
    require_extra("cryptography", "signing", purpose="reading a PEM public key")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError):
        raise ConfigError(f"{source}: not a readable PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{source}: the PEM public key is not an Ed25519 key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def read_trusted_keys(path: str | os.PathLike[str]) -> list[str]:
    """The keys of a trusted-keys file, as text (base64 keys and whole PEM blocks).

    Raises :class:`ConfigError` when the file is missing, unreadable, holds an unterminated PEM
    block, or holds no key at all (an empty policy file must not silently trust nothing).
    """
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"trusted keys file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{p}: cannot read the trusted keys file ({reason})") from None
    keys: list[str] = []
    pem: list[str] | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if pem is not None:
            pem.append(stripped)
            if stripped.startswith(_PEM_END):
                keys.append("\n".join(pem))
                pem = None
            continue
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith(_PEM_BEGIN):
            pem = [stripped]
            continue
        key = stripped.split(None, 1)[0]  # the rest of the line is a label
        parse_public_key(key, source=f"{p} line {lineno}")  # fail on the line, not later
        keys.append(key)
    if pem is not None:
        raise ConfigError(f"{p}: a PEM block is not closed ({_PEM_END}... line missing)")
    if not keys:
        raise ConfigError(f"{p}: no trusted key in the file (one base64 key per line, or PEM blocks)")
    return keys


def public_key_of(private_key_path: str | os.PathLike[str]) -> str:
    """The base64 raw public key of an Ed25519 private key file (PEM), to hand to verifiers."""
    from provenir.core.signing_keys import load_signing_key, public_key_b64

    return public_key_b64(load_signing_key(private_key_path, purpose="reading a signing key"))
