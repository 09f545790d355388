"""RunManifest: the content-addressed, tamper-evident record every run leaves behind.

``manifest_hash`` is the SHA-256 of the RFC 8785 canonical JSON of every other field, so
changing any field is detected. The file is also required to be exactly the serialisation
Provenir writes, so editing any byte (even white space) is detected too. With a signing key
configured the hash is signed with Ed25519; the public key travels in the manifest and its
fingerprint should be compared with the one you trust (or pass ``trusted_public_key``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from provenir.core.atomic import atomic_write_text
from provenir.core.errors import ManifestError, ManifestTamperedError
from provenir.core.extras import require_extra
from provenir.core.hashing import sha256_bytes, sha256_file, sha256_json
from provenir.core.inputs import RunInputs
from provenir.core.selected_checkpoint import SelectedCheckpoint
from provenir.core.signing_keys import SIGNING_KEY_ENV, load_signing_key, public_key_b64

MANIFEST_SCHEMA_VERSION = 2
#: Fields added after schema 2 shipped, left out of the JSON while unset: manifests written before
#: they existed keep their canonical JSON, and so their hash.
_OMITTED_WHEN_NONE = ("selected_checkpoint",)
_RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def new_run_id() -> str:
    """A fresh random UUID4 run id."""
    return str(uuid.uuid4())


def validate_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a canonical lowercase UUID, else raise (blocks path traversal)."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ManifestError(
            f"invalid run id {run_id!r}: expected a UUID like 123e4567-e89b-42d3-a456-426614174000"
        )
    return run_id


def utc_now() -> str:
    """Current time as ISO-8601 UTC with microseconds."""
    return datetime.now(UTC).isoformat()


class Signature(BaseModel):
    """Ed25519 signature over the manifest hash."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["ed25519"] = "ed25519"
    public_key: str = Field(description="Raw 32-byte public key, base64.")
    value: str = Field(description="Signature of the UTF-8 manifest_hash, base64.")

    @property
    def fingerprint(self) -> str:
        """First 16 hex chars of SHA-256(public key): what a person compares."""
        return sha256_bytes(base64.b64decode(self.public_key))[:16]


@dataclass
class ManifestVerification:
    """Outcome of :meth:`RunManifest.check`."""

    hash_ok: bool
    canonical_ok: bool
    signature: Literal["valid", "invalid", "unsigned", "untrusted", "unknown"]
    signer_fingerprint: str | None = None
    outputs_ok: bool | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found wrong (an unsigned manifest can be ok)."""
        return not self.problems


class RunManifest(BaseModel):
    """Everything needed to know what produced a model and to replay it."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = MANIFEST_SCHEMA_VERSION
    run_id: str = Field(default_factory=new_run_id)
    name: str
    status: Literal["running", "completed", "failed"] = "running"
    backend: str
    algorithm: str
    config_hash: str
    dataset_hash: str
    eval_dataset_hash: str | None = None
    git_sha: str | None = None
    git_dirty: bool | None = None
    seed: int
    timestamp: str = Field(default_factory=utc_now, description="ISO-8601 start time (UTC).")
    finished_at: str | None = None
    provenance: list[str] = Field(default_factory=list, description="Parent run ids, oldest first.")
    relation: str | None = Field(
        None, description="How this run relates to its parent: reproduce, rlaif, resume."
    )
    config: dict[str, Any]
    data_path: str | None = None
    inputs: RunInputs | None = Field(
        None, description="What the run consumed, pinned by content (None in schema-1 manifests)."
    )
    environment: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(
        default_factory=dict, description="Path (relative to run dir) -> SHA-256."
    )
    adapter_hash: str | None = Field(None, description="SHA-256 of the adapter (or model) weights file.")
    metrics: dict[str, float] = Field(default_factory=dict)
    eval: dict[str, Any] | None = None
    scans: dict[str, Any] | None = None
    resumed_from: str | None = None
    selected_checkpoint: SelectedCheckpoint | None = Field(
        None, description="Which weights became the adapter and why (see core.selected_checkpoint)."
    )
    error: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    manifest_hash: str | None = None
    signature: Signature | None = None

    @model_serializer(mode="wrap")
    def _omit_unset_new_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in _OMITTED_WHEN_NONE:
            if name in data and data[name] is None:
                del data[name]
        return data

    # -- sealing ----------------------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        """Every field the hash covers (all but manifest_hash and signature)."""
        return self.model_dump(mode="json", exclude={"manifest_hash", "signature"})

    def compute_hash(self) -> str:
        """SHA-256 over the canonical JSON of :meth:`body`."""
        return sha256_json(self.body())

    def seal(self, signing_key: str | os.PathLike[str] | None = None) -> RunManifest:
        """Set ``manifest_hash`` and, with a key (or ``$PROVENIR_SIGNING_KEY``), the signature."""
        self.manifest_hash = self.compute_hash()
        key_path = signing_key or os.environ.get(SIGNING_KEY_ENV)
        self.signature = _sign(self.manifest_hash, Path(key_path)) if key_path else None
        return self

    # -- checking ---------------------------------------------------------------------------

    def check(
        self,
        *,
        raw: str | None = None,
        trusted_public_key: str | None = None,
        run_directory: str | os.PathLike[str] | None = None,
    ) -> ManifestVerification:
        """Verify hash, file form (``raw``: the file text), signature and, optionally, outputs."""
        problems: list[str] = []
        hash_ok = self.manifest_hash is not None and self.manifest_hash == self.compute_hash()
        if self.manifest_hash is None:
            problems.append("manifest is not sealed (no manifest_hash)")
        elif not hash_ok:
            problems.append("manifest_hash does not match the content: a field was changed")
        canonical_ok = raw is None or raw == self.to_json()
        if not canonical_ok:
            problems.append(
                "file bytes differ from Provenir's serialisation of the same content: the file was edited"
            )
        sig_state, fingerprint = _check_signature(self, trusted_public_key)
        if sig_state == "invalid":
            problems.append("signature does not verify")
        elif sig_state == "untrusted":
            problems.append("signed by a key other than the trusted one")
        outputs_ok = None
        if run_directory is not None:
            outputs_ok = True
            base = Path(run_directory)
            for rel, expected in sorted(self.outputs.items()):
                f = base / rel
                if not f.is_file():
                    outputs_ok = False
                    problems.append(f"output {rel} is missing")
                elif sha256_file(f) != expected:
                    outputs_ok = False
                    problems.append(f"output {rel} changed (hash differs)")
        return ManifestVerification(hash_ok, canonical_ok, sig_state, fingerprint, outputs_ok, problems)

    def verify(self, **kwargs: Any) -> ManifestVerification:
        """Like :meth:`check` but raises :class:`ManifestTamperedError` on any problem."""
        result = self.check(**kwargs)
        if not result.ok:
            raise ManifestTamperedError(f"manifest {self.run_id}: " + "; ".join(result.problems))
        return result

    # -- files ------------------------------------------------------------------------------

    def to_json(self) -> str:
        """The exact text Provenir writes (sorted keys, 2-space indent, trailing newline)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (temp file, fsync, rename)."""
        return atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunManifest:
        """Read a manifest file; a clear :class:`ManifestError` if it is missing or malformed."""
        manifest, _ = cls.load_with_text(path)
        return manifest

    @classmethod
    def load_with_text(cls, path: str | os.PathLike[str]) -> tuple[RunManifest, str]:
        """Read a manifest and the raw text it came from (for :meth:`check`'s byte check)."""
        p = Path(path)
        if not p.is_file():
            raise ManifestError(f"manifest not found: {p}")
        try:
            # Bytes, not text mode: newline translation would hide CRLF edits from the byte check.
            raw = p.read_bytes().decode("utf-8")
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestTamperedError(
                f"{p}: not valid manifest JSON ({exc}); the file is corrupt or was edited"
            ) from None
        try:
            return cls.model_validate(data), raw
        except ValidationError as exc:
            from provenir.core.config import format_validation_error

            raise ManifestTamperedError(
                f"{p}: not a valid manifest ({format_validation_error(exc)})"
            ) from None


# -- signing ------------------------------------------------------------------------------------


def generate_signing_key(path: str | os.PathLike[str]) -> str:
    """Write a new Ed25519 private key (PEM, mode 0600) to ``path``; return its fingerprint."""
    require_extra("cryptography", "signing", purpose="creating a signing key")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    p = Path(path)
    atomic_write_text(p, pem.decode(), mode=0o600)  # private from the first byte
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_bytes(raw)[:16]


def _sign(manifest_hash: str, key_path: Path) -> Signature:
    key = load_signing_key(key_path, purpose="signing a manifest")
    return Signature(
        public_key=public_key_b64(key),
        value=base64.b64encode(key.sign(manifest_hash.encode())).decode(),
    )


def _check_signature(
    manifest: RunManifest, trusted_public_key: str | None
) -> tuple[Literal["valid", "invalid", "unsigned", "untrusted"], str | None]:
    sig = manifest.signature
    if sig is None:
        return ("untrusted" if trusted_public_key else "unsigned"), None
    require_extra("cryptography", "signing", purpose="checking a manifest signature")
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(sig.public_key, validate=True))
        # The signature covers the recorded hash; a changed body is caught by the hash check.
        public.verify(base64.b64decode(sig.value, validate=True), (manifest.manifest_hash or "").encode())
    except (InvalidSignature, ValueError):
        return "invalid", None
    if trusted_public_key is not None and trusted_public_key != sig.public_key:
        return "untrusted", sig.fingerprint
    return "valid", sig.fingerprint
