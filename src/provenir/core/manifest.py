"""RunManifest: the content-addressed, tamper-evident record every run leaves behind.

``manifest_hash`` is the SHA-256 of the RFC 8785 canonical JSON of every other field, so
changing any field is detected. The file is also required to be exactly the serialisation
Provenir writes, so editing any byte (even white space) is detected too. With a signing key
configured the hash is signed with Ed25519; the public key travels in the manifest, so a
signature alone proves integrity, not origin: pass a :class:`~provenir.core.signers.SignerPolicy`
(trusted keys) to require a signer.

Output files are checked inside the run folder only (:mod:`provenir.core.confined`): a recorded
path that is absolute, has ``..`` parts or runs through a link out of the folder is reported,
never read. Every *subfolder* of the run folder that holds a recorded output (``adapter/``,
``model/``) must hold nothing else: an unrecorded file there (an injected
``chat_template.jinja`` the tokenizer would load) is a problem. The run folder's top level is
not checked for extra files: other commands add files there after the run is sealed
(``eval.json``, ``MODEL_CARD.md``, signatures and attestations), next to its input pins
(``config.yaml``, ``data/``) and ``checkpoints/``.
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
    ValidationError,
)

from provenir.core.atomic import atomic_write_text
from provenir.core.confined import digest_inside, entries_inside, file_problem, plain_relative
from provenir.core.distributed_run import DistributedRun
from provenir.core.errors import ManifestError, ManifestTamperedError
from provenir.core.extras import require_extra
from provenir.core.hashing import sha256_bytes, sha256_json
from provenir.core.inputs import RunInputs
from provenir.core.selected_checkpoint import SelectedCheckpoint
from provenir.core.signers import SignerPolicy
from provenir.core.signing_keys import SIGNING_KEY_ENV, load_signing_key, public_key_b64
from provenir.core.tree_head import TreeHead

MANIFEST_SCHEMA_VERSION = 2
#: Fields added after schema 2 shipped, left out of the JSON while unset: manifests written before
#: they existed keep their canonical JSON, and so their hash.
_RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: Unrecorded files named one by one in a verification; the rest are counted.
MAX_UNRECORDED_SHOWN = 20
#: Sections newer than schema 2's first manifests, written only when set.
_OMITTED_WHEN_UNSET = ("audit_checkpoint", "distributed", "selected_checkpoint", "gate_spec_sha256")


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
    signer_trusted: bool | None = None
    """True: the signer is a key of the signer policy; False: it is not (or there is no valid
    signature); None: no trusted keys were given, so the signer's origin was not checked."""

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
    distributed: DistributedRun | None = Field(
        None,
        description="Runs launched through torchrun: nodes, world size, restarts, every rank's host and "
        "environment digest.",
    )
    extra: dict[str, Any] = Field(default_factory=dict)
    audit_checkpoint: TreeHead | None = Field(
        None,
        description="Signed tree head of the store's audit log at the end of the run (records 1..size "
        "and their Merkle root): `provenir audit verify` checks the log still hashes to it, so "
        "records removed or rewritten after the run are detected. Absent in older manifests.",
    )
    gate_spec_sha256: str | None = Field(
        None,
        description="SHA-256 of the config's pre-registered gate section as sealed at the start of training "
        "(RunConfig.gate_spec_sha256); `provenir gate` compares the spec it decides with against it. "
        "Absent when the run registered no gate.",
    )
    manifest_hash: str | None = None
    signature: Signature | None = None

    # -- sealing ----------------------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        """Every field the hash covers (all but manifest_hash and signature)."""
        return self._dump(exclude={"manifest_hash", "signature"})

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
        policy: SignerPolicy | None = None,
        run_directory: str | os.PathLike[str] | None = None,
    ) -> ManifestVerification:
        """Verify hash, file form (``raw``: the file text), signature under ``policy`` and,
        optionally, the outputs inside ``run_directory`` (see the module docs for the rules).

        ``policy`` None accepts an unsigned manifest and any valid signature (the state is still
        reported); with a policy an unsigned or foreign-signed manifest is a problem.
        """
        problems: list[str] = []
        try:
            computed: str | None = self.compute_hash()
        except ValueError:
            computed = None  # NaN or infinity: canonical JSON has none, so Provenir never sealed it
        hash_ok = self.manifest_hash is not None and self.manifest_hash == computed
        if self.manifest_hash is None:
            problems.append("manifest is not sealed (no manifest_hash)")
        elif computed is None:
            problems.append("manifest holds a number canonical JSON cannot encode (NaN or infinity): edited")
        elif not hash_ok:
            problems.append("manifest_hash does not match the content: a field was changed")
        canonical_ok = raw is None or raw == self.to_json()
        if not canonical_ok:
            problems.append(
                "file bytes differ from Provenir's serialisation of the same content: the file was edited"
            )
        crypto_state, public_key = _check_signature(self)
        sig_state, trusted, sig_problem = (policy or SignerPolicy()).judge(crypto_state, public_key)
        if sig_problem is not None:
            problems.append(sig_problem)
        fingerprint = self.signature.fingerprint if crypto_state == "valid" and self.signature else None
        outputs_ok = None
        if run_directory is not None:
            output_problems = self.check_outputs(run_directory)
            outputs_ok = not output_problems
            problems.extend(output_problems)
        return ManifestVerification(
            hash_ok, canonical_ok, sig_state, fingerprint, outputs_ok, problems, signer_trusted=trusted
        )

    def check_outputs(self, run_directory: str | os.PathLike[str]) -> list[str]:
        """Problems with the recorded outputs inside ``run_directory`` (empty: all intact).

        Each recorded file must be a regular file inside the folder with its recorded hash, and
        each subfolder holding a recorded output must hold no unrecorded file (module docs).
        """
        problems: list[str] = []
        for rel, expected in sorted(self.outputs.items()):
            problem = file_problem("output", rel, digest_inside(run_directory, rel), expected)
            if problem is not None:
                problems.append(problem)
        recorded = {rel for rel in self.outputs if plain_relative(rel)}
        folders = sorted({rel.split("/", 1)[0] for rel in recorded if "/" in rel})
        unrecorded: list[str] = []
        for folder in folders:
            if Path(run_directory, folder).is_symlink():
                problems.append(f"output folder {folder} is a symbolic link, not a folder of the run")
                continue
            for entry in entries_inside(run_directory, folder):
                if entry.rel not in recorded:
                    unrecorded.append(entry.rel)
        for rel in unrecorded[:MAX_UNRECORDED_SHOWN]:
            problems.append(f"{rel} is not recorded in the manifest")
        if len(unrecorded) > MAX_UNRECORDED_SHOWN:
            more = len(unrecorded) - MAX_UNRECORDED_SHOWN
            problems.append(f"{more} more files in output folders are not recorded in the manifest")
        return problems

    def verify(self, **kwargs: Any) -> ManifestVerification:
        """Like :meth:`check` but raises :class:`ManifestTamperedError` on any problem."""
        result = self.check(**kwargs)
        if not result.ok:
            raise ManifestTamperedError(f"manifest {self.run_id}: " + "; ".join(result.problems))
        return result

    # -- files ------------------------------------------------------------------------------

    def to_json(self) -> str:
        """The exact text Provenir writes (sorted keys, 2-space indent, trailing newline)."""
        return json.dumps(self._dump(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def _dump(self, exclude: set[str] | None = None) -> dict[str, Any]:
        # Manifests written before these sections existed have no such keys: leaving them out
        # when unset keeps their hash and exact bytes verifying. (Not a pydantic model
        # serializer: that turned NaN metrics into null.)
        omit = set(exclude or ())
        omit.update(name for name in _OMITTED_WHEN_UNSET if getattr(self, name) is None)
        return self.model_dump(mode="json", exclude=omit)

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


def _sign(manifest_hash: str, key_path: Path) -> Signature:
    key = load_signing_key(key_path, purpose="signing a manifest")
    return Signature(
        public_key=public_key_b64(key),
        value=base64.b64encode(key.sign(manifest_hash.encode())).decode(),
    )


def _check_signature(
    manifest: RunManifest,
) -> tuple[Literal["valid", "invalid", "unsigned"], bytes | None]:
    """The signature's cryptographic state against its own embedded key, and that key (raw).

    Whether that key is one to trust is the :class:`SignerPolicy`'s call, not this function's.
    """
    sig = manifest.signature
    if sig is None:
        return "unsigned", None
    require_extra("cryptography", "signing", purpose="checking a manifest signature")
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        raw_key = base64.b64decode(sig.public_key, validate=True)
        public = Ed25519PublicKey.from_public_bytes(raw_key)
        # The signature covers the recorded hash; a changed body is caught by the hash check.
        public.verify(base64.b64decode(sig.value, validate=True), (manifest.manifest_hash or "").encode())
    except (InvalidSignature, ValueError):
        return "invalid", None
    return "valid", raw_key
