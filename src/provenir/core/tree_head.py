"""Signed tree heads of the audit log: size, Merkle root and time, signed with the run's key.

A tree head (a *checkpoint* in transparency-log terms) commits to the first ``size`` records
of the audit log: anyone holding one can later check that the log still starts with exactly
those records (:mod:`provenir.governance.audit`) and ask for proofs against it. Heads are
written at the end of every run, sealed into its manifest (``RunManifest.audit_checkpoint``)
and appended to ``<audit>/checkpoints.jsonl``.

The signature is Ed25519 (the key ``provenir manifest keygen`` writes) over the checkpoint
text of the C2SP ``tlog-checkpoint`` format, so the note that :meth:`TreeHead.to_note` prints is
checked by C2SP signed-note verifiers (e.g. Go's ``golang.org/x/mod/sumdb/note``)::

    provenir-audit
    150
    <base64 root hash>
    2025-01-01T00:00:00.000000+00:00

    — provenir-audit <base64(4-byte key id || 64-byte signature)>

Without a key the head is still recorded, with ``signature: null`` (unsigned): it then
proves nothing about who wrote it, only what the log held.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: The log's name in checkpoints (the first line of the signed note, and the key name).
AUDIT_ORIGIN = "provenir-audit"


class TreeHead(BaseModel):
    """A (possibly signed) tree head of the audit log."""

    model_config = ConfigDict(extra="forbid")

    origin: str = Field(AUDIT_ORIGIN, description="The log's name (first line of the checkpoint note).")
    size: int = Field(ge=0, description="Number of records the tree covers (records 1..size).")
    root: str = Field(pattern=r"^[0-9a-f]{64}$", description="RFC 9162 Merkle tree hash, hex.")
    timestamp: str = Field(description="When the head was made (ISO-8601 UTC).")
    public_key: str | None = Field(None, description="Raw Ed25519 public key, base64; null when unsigned.")
    signature: str | None = Field(
        None, description="Ed25519 signature of the checkpoint text, base64; null when unsigned."
    )

    @property
    def signed(self) -> bool:
        """True when the head carries a signature and the key to check it with.

        A signature without its key cannot be checked, so such a head is shown as unsigned, in
        step with :meth:`signature_state`.
        """
        return self.signature is not None and self.public_key is not None

    @property
    def fingerprint(self) -> str | None:
        """First 16 hex chars of SHA-256(public key), as ``provenir manifest keygen`` prints."""
        if self.public_key is None:
            return None
        return hashlib.sha256(base64.b64decode(self.public_key)).hexdigest()[:16]

    def checkpoint_text(self) -> str:
        """The signed text: origin, size, base64 root, timestamp (an extension line), newline-ended."""
        root_b64 = base64.b64encode(bytes.fromhex(self.root)).decode()
        return f"{self.origin}\n{self.size}\n{root_b64}\n{self.timestamp}\n"

    def to_note(self) -> str:
        """The head as a C2SP signed note (no signature line when unsigned)."""
        text = self.checkpoint_text()
        if self.signature is None or self.public_key is None:
            return text
        key_id = _key_id(self.origin, base64.b64decode(self.public_key))
        blob = base64.b64encode(key_id + base64.b64decode(self.signature)).decode()
        return f"{text}\n\u2014 {self.origin} {blob}\n"

    def signature_state(
        self, trusted_public_key: str | None = None
    ) -> Literal["valid", "invalid", "unsigned", "untrusted"]:
        """Check the signature; ``untrusted`` when it is valid but not by ``trusted_public_key``."""
        if self.signature is None or self.public_key is None:
            return "untrusted" if trusted_public_key else "unsigned"
        from provenir.core.extras import require_extra

        require_extra("cryptography", "signing", purpose="checking an audit tree head signature")
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(self.public_key, validate=True))
            public.verify(base64.b64decode(self.signature, validate=True), self.checkpoint_text().encode())
        except (InvalidSignature, ValueError):
            return "invalid"
        if trusted_public_key is not None and trusted_public_key != self.public_key:
            return "untrusted"
        return "valid"


def make_tree_head(size: int, root: bytes, signing_key: str | os.PathLike[str] | None = None) -> TreeHead:
    """A head for ``size`` records with ``root``, signed when a key (or ``$PROVENIR_SIGNING_KEY``) is set."""
    from provenir.core.manifest import SIGNING_KEY_ENV, _sign

    head = TreeHead(
        size=size, root=root.hex(), timestamp=datetime.now(UTC).isoformat(timespec="microseconds")
    )
    key_path = signing_key or os.environ.get(SIGNING_KEY_ENV)
    if key_path:
        signed = _sign(head.checkpoint_text(), Path(key_path))
        head.public_key, head.signature = signed.public_key, signed.value
    return head


def _key_id(name: str, public_key: bytes) -> bytes:
    # C2SP signed-note key ID for Ed25519: SHA-256(name || 0x0A || 0x01 || key)[:4].
    return hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4]
