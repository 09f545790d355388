"""ApiSettings: where the REST API reads artifacts from, and who may read them.

Precedence (lowest first): defaults < YAML file (``provenir serve --config api.yaml``) <
environment (``PROVENIR_API_TOKEN``) < explicit keyword overrides (CLI flags)::

    from provenir.api.settings import load_settings

    settings = load_settings("api.yaml", output_dir="artifacts")

The token is a :class:`pydantic.SecretStr`, so printing or logging the settings never shows it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from provenir.core.errors import ConfigError
from provenir.core.signers import SignerPolicy
from provenir.core.store import RunStore, default_output_dir

TOKEN_ENV = "PROVENIR_API_TOKEN"
#: Shorter tokens are refused: a bearer token is the only thing standing between the network and
#: the audit log, and short ones can be guessed.
MIN_TOKEN_LENGTH = 16


class ApiSettings(BaseModel):
    """Configuration of the read-only REST API (one field per setting, each documented)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output_dir: Path = Field(
        default_factory=lambda: Path(default_output_dir()),
        description="Artifacts root: manifests/<run_id>.json, runs/<run_id>/ (eval.json) and audit/ "
        "(default: $PROVENIR_OUTPUT_DIR, else artifacts).",
    )
    audit_dir: Path | None = Field(
        None, description="Audit log folder; default <output_dir>/audit (what `provenir audit` uses)."
    )
    index_path: Path | None = Field(
        None,
        description="SQLite run index (a cache rebuilt from the manifests); default "
        "<output_dir>/index/runs.sqlite3.",
    )
    token: SecretStr | None = Field(
        None,
        description=f"Bearer token; when set every endpoint but /health requires it. Also ${TOKEN_ENV}.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (CORS). Empty (default): no CORS headers.",
    )
    trusted_public_keys: list[str] = Field(
        default_factory=list,
        description="Signer policy: Ed25519 public keys (base64, or PEM PUBLIC KEY blocks) a manifest "
        "must be signed by. With any (here or in trusted_keys_file), an unsigned or foreign-signed "
        "manifest fails on every endpoint that states verification (/manifests/{id}/verify, "
        "/runs/{id}, /runs/{id}/report).",
    )
    trusted_keys_file: Path | None = Field(
        None,
        description="File of trusted public keys (one base64 key per line, # comments, or PEM blocks), "
        "read once at startup; combined with trusted_public_keys.",
    )
    require_signature: bool = Field(
        False,
        description="Without trusted keys: still fail unsigned manifests (any valid signature passes, "
        "which proves integrity but not origin). Implied by any trusted key.",
    )
    serve_sealed_manifests: bool = Field(
        False,
        description="GET /manifests/{id} serves the sealed file byte for byte, local paths included, so "
        "clients can check its hash and signature themselves. Default (false): a JSON view with "
        "absolute server paths replaced (header X-Provenir-Manifest-View: redacted).",
    )
    max_header_bytes: int = Field(
        8192,
        ge=1024,
        le=1 << 20,
        description="Largest total size of a request's headers; larger requests get 431. The HTTP "
        "parser also drops a connection whose request line and headers exceed twice this (400).",
    )
    index_max_age_s: float = Field(
        5.0,
        ge=0,
        description="Longest time (seconds) the run index may go without a full re-scan of the "
        "manifests folder; 0 re-scans on every listing. Renames (how Provenir saves) are seen at once.",
    )

    @field_validator("token")
    @classmethod
    def _token_strength(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if secret != secret.strip() or any(ch.isspace() for ch in secret):
            raise ValueError("the API token must not contain white space")
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"the API token must be at least {MIN_TOKEN_LENGTH} characters "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"CORS origin {origin!r} must look like https://host[:port] (or be '*')")
        return value

    _policy: SignerPolicy | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _signer_policy(self) -> ApiSettings:
        # Built (and the keys file read) once, so a bad key stops the server at startup, not a request.
        try:
            self._policy = SignerPolicy.from_options(
                self.trusted_public_keys or None,
                self.trusted_keys_file,
                require_signature=self.require_signature,
                keys_source="trusted_public_keys",
            )
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def signer_policy(self) -> SignerPolicy | None:
        """The policy every verifying endpoint applies (None: unsigned manifests can verify)."""
        return self._policy

    @property
    def store(self) -> RunStore:
        """The run store served: every manifest, run folder and verification goes through it."""
        return RunStore(self.output_dir)

    @property
    def resolved_audit_dir(self) -> Path:
        """The audit folder actually used."""
        return self.audit_dir if self.audit_dir is not None else self.store.audit_dir

    @property
    def resolved_index_path(self) -> Path:
        """The SQLite index file actually used."""
        return self.index_path if self.index_path is not None else self.store.index_dir / "runs.sqlite3"

    @property
    def auth_enabled(self) -> bool:
        """True when a token is configured (every endpoint but /health then requires it)."""
        return self.token is not None


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> ApiSettings:
    """Build :class:`ApiSettings` from defaults < ``config_file`` < environment < ``overrides``.

    ``None`` values in ``overrides`` mean "not given" (so unset CLI flags do not mask the file).
    Any problem is a :class:`ConfigError` naming the field.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        import yaml

        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"API config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of API settings")
        values.update(loaded)
    env_token = os.environ.get(TOKEN_ENV)
    if env_token:
        values["token"] = env_token
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ApiSettings.model_validate(values)
    except ValidationError as exc:
        # Not core's formatter: it echoes the offending value, and that value may be the token.
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        ]
        raise ConfigError("invalid API settings: " + "; ".join(parts)) from None
