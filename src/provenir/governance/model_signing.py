"""Model signing with OpenSSF ``model-signing``: a signature over a model folder that *their* verifier accepts.

A run's adapter folder (or full model folder, or any merged model) is signed file by file: the
signature is a Sigstore bundle holding a DSSE envelope around an in-toto statement that lists
the SHA-256 of every file in the folder, so adding, removing or changing any file fails
verification. Key-based signing works offline with an ECDSA P-256 key (the library also takes
P-384 and P-521; it cannot use Ed25519, the manifest key)::

    from provenir.governance.model_signing import sign_model, verify_model

    signed = sign_model("artifacts/runs/<id>/adapter", "model.pem")   # -> artifacts/runs/<id>/model.sig
    verify_model("artifacts/runs/<id>/adapter", "model.pem.pub")      # raises ModelSignatureError if not

Anyone can check the same signature with the library's own command, without Provenir::

    model_signing verify key --no-ignore-git-paths --public_key model.pem.pub \\
        --signature artifacts/runs/<id>/model.sig artifacts/runs/<id>/adapter

Choices made here, and why:

* The signature (``model.sig``) is written *beside* the signed folder, never inside it, so
  signing changes no file of the folder and no hash recorded in the run manifest's ``outputs``.
* Every file counts. By default the library leaves ``.git*`` and ``.github`` paths out of both
  signing and verifying, so a ``.gitignore`` or ``.gitattributes`` added after signing passes its
  default verifier; Provenir signs and verifies with those paths included. A folder that holds
  none of them (adapters and merged models never do) verifies with the library's default
  command too; with ``--no-ignore-git-paths`` it checks exactly what Provenir checks.
* Symbolic links in the folder are refused (the library's default), on signing and verifying.
* Signing a stored run (:func:`sign_run`) first checks the run's manifest, then compares the
  digests it just signed with the manifest's ``outputs``: a signature is only ever made over
  exactly the files the sealed manifest recorded, never over an edited or injected file.

Keyless Sigstore signing (:func:`sign_model_sigstore`) needs network access to Sigstore and an
OIDC identity; offline it fails within seconds with one line. Nothing here is tested online.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from provenir.core.atomic import atomic_write_bytes
from provenir.core.errors import ConfigError, MissingExtraError, ModelSignatureError
from provenir.core.extras import install_hint, require_extra
from provenir.core.hashing import sha256_bytes, sha256_file
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore

if TYPE_CHECKING:
    from provenir.governance.audit import AuditLogger

#: The signature file's name, written beside the signed folder.
SIGNATURE_NAME = "model.sig"

#: Audit events recorded by :func:`sign_run` and :func:`sign_after_training`.
SIGNED_EVENT = "model_signed"
SIGNING_FAILED_EVENT = "model_signing_failed"

#: Curves the library accepts (its ``_check_supported_ec_key``), by the names people use.
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

#: Distribution names of modules the library needs, for the install hint.
_DISTRIBUTIONS = {"OpenSSL": "pyopenssl", "model_signing": "model-signing"}


@dataclass(frozen=True)
class ModelSignature:
    """A signature just written by :func:`sign_model` (or :func:`sign_run`).

    ``files``: path inside the folder (POSIX) -> SHA-256, exactly as the signature lists them.
    ``key_fingerprint``: first 16 hex digits of the SHA-256 of the public key PEM (None for
    Sigstore, whose signer is a certificate identity).
    """

    folder: Path
    signature_path: Path
    method: Literal["key", "sigstore"]
    files: dict[str, str]
    key_fingerprint: str | None
    signature_sha256: str


@dataclass(frozen=True)
class ModelVerification:
    """A signature that verified: the folder holds exactly the signed files.

    ``matches_manifest`` is True when the signed files are also exactly the run manifest's
    recorded outputs for that folder (:func:`verify_run`), None when no manifest was consulted.
    """

    folder: Path
    signature_path: Path
    method: Literal["key", "sigstore"]
    files: dict[str, str]
    key_fingerprint: str | None
    matches_manifest: bool | None = None


# -- folders and signatures ---------------------------------------------------------------------


def default_signature_path(folder: str | os.PathLike[str]) -> Path:
    """``model.sig`` beside ``folder`` (``runs/<id>/adapter`` -> ``runs/<id>/model.sig``)."""
    return Path(folder).parent / SIGNATURE_NAME


def sign_model(
    folder: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    signature_path: str | os.PathLike[str] | None = None,
) -> ModelSignature:
    """Sign every file in ``folder`` with the ECDSA private key at ``key_path``, offline.

    The signature goes to ``signature_path`` (default :func:`default_signature_path`), which
    must lie outside ``folder``; it is written atomically. Raises :class:`ConfigError` for a
    missing, encrypted or non-ECDSA key (an Ed25519 key: "model signing needs an ECDSA P-256
    key, this is Ed25519") and :class:`ModelSignatureError` for a folder that cannot be signed.
    """
    model, target = _folder_and_signature(folder, signature_path)
    public_pem = _private_key_public_pem(Path(key_path))
    lib = _library()
    config = lib.signing.Config().use_elliptic_key_signer(private_key=Path(key_path))
    _write_signature(config.set_hashing_config(_every_file(lib)), model, target)
    files = _signed_files(target)
    return ModelSignature(
        model, target, "key", files, sha256_bytes(public_pem)[:16], sha256_bytes(target.read_bytes())
    )


def sign_model_sigstore(
    folder: str | os.PathLike[str],
    signature_path: str | os.PathLike[str] | None = None,
    *,
    identity_token: str | None = None,
) -> ModelSignature:
    """Sign ``folder`` keylessly with Sigstore (Fulcio certificate, Rekor transparency log).

    Needs the network and an OIDC identity: ``identity_token``, else an ambient CI credential
    (GitHub Actions, GitLab, Buildkite, Google Cloud), else the interactive browser flow.
    Without network access it raises :class:`ModelSignatureError` within seconds.
    """
    model, target = _folder_and_signature(folder, signature_path)
    lib = _library()
    try:
        config = lib.signing.Config().use_sigstore_signer(
            use_ambient_credentials=True, identity_token=identity_token
        )
        _write_signature(config.set_hashing_config(_every_file(lib)), model, target)
    except ModelSignatureError:
        raise
    except Exception as exc:  # noqa: BLE001 - TUF, OIDC, Fulcio and Rekor each fail their own way
        raise ModelSignatureError(
            "keyless Sigstore signing needs network access to Sigstore (trust root, Fulcio, Rekor) "
            f"and an OIDC identity, and failed: {_one_line(exc)}; offline, sign with --key instead"
        ) from None
    files = _signed_files(target)
    return ModelSignature(model, target, "sigstore", files, None, sha256_bytes(target.read_bytes()))


def verify_model(
    folder: str | os.PathLike[str],
    public_key_path: str | os.PathLike[str],
    signature_path: str | os.PathLike[str] | None = None,
) -> ModelVerification:
    """Check ``folder`` against a key-based signature with the library's verifier.

    Every file must be listed with its digest, and nothing else may be there. Raises
    :class:`ModelSignatureError` with the library's reason (which files were added, are
    missing or changed; a key that did not sign it) and :class:`ConfigError` for an unusable key.
    """
    model, target = _folder_and_existing_signature(folder, signature_path)
    public_pem = _public_key_pem(Path(public_key_path))
    lib = _library()
    config = lib.verifying.Config().use_elliptic_key_verifier(public_key=Path(public_key_path))
    _check_signature(config.set_hashing_config(_every_file(lib)), model, target)
    return ModelVerification(model, target, "key", _signed_files(target), sha256_bytes(public_pem)[:16])


def verify_model_sigstore(
    folder: str | os.PathLike[str],
    identity: str,
    oidc_issuer: str,
    signature_path: str | os.PathLike[str] | None = None,
) -> ModelVerification:
    """Check ``folder`` against a Sigstore signature made by ``identity`` at ``oidc_issuer``.

    Needs network access to fetch Sigstore's trust root; raises :class:`ModelSignatureError`.
    """
    model, target = _folder_and_existing_signature(folder, signature_path)
    lib = _library()
    try:
        config = lib.verifying.Config().use_sigstore_verifier(identity=identity, oidc_issuer=oidc_issuer)
    except Exception as exc:  # noqa: BLE001 - fetching the trust root fails in many ways offline
        raise ModelSignatureError(
            f"Sigstore verification needs network access to Sigstore's trust root: {_one_line(exc)}"
        ) from None
    _check_signature(config.set_hashing_config(_every_file(lib)), model, target)
    return ModelVerification(model, target, "sigstore", _signed_files(target), None)


# -- stored runs --------------------------------------------------------------------------------


def run_model_folder(store: RunStore, manifest: RunManifest) -> Path:
    """The folder holding the run's weights (``runs/<id>/adapter``, or ``model`` for full training).

    Found from the manifest: the output file whose hash is ``adapter_hash``; the folder must lie
    inside the run folder. Raises :class:`ModelSignatureError` when the run recorded none.
    """
    run_dir = store.run_dir(manifest.run_id)
    prefix = _model_prefix(manifest)
    if prefix is None:
        raise ModelSignatureError(
            f"run {manifest.run_id} recorded no model folder among its outputs (status "
            f"{manifest.status}): nothing to sign"
        )
    folder = run_dir / prefix
    if folder.is_symlink() or not folder.resolve().is_relative_to(run_dir.resolve()):
        raise ModelSignatureError(
            f"run {manifest.run_id}: model folder {prefix} points outside the run folder"
        )
    return folder


def sign_run(
    ref: str | os.PathLike[str],
    *,
    key_path: str | os.PathLike[str] | None = None,
    sigstore: bool = False,
    identity_token: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    signature_path: str | os.PathLike[str] | None = None,
    actor: str | None = None,
) -> ModelSignature:
    """Sign the model folder of the stored run ``ref`` and record it in the store's audit log.

    ``ref`` is anything :meth:`RunStore.locate` accepts. The manifest must verify (hash, file
    form, signature) and the run must have completed. The folder is signed into a scratch file
    first; only when the signed digests equal the manifest's recorded outputs for that folder
    does it replace ``model.sig``, else :class:`ModelSignatureError` names the files and any
    signature already in place is left alone. Give ``key_path`` or ``sigstore=True``.
    """
    if (key_path is None) == (not sigstore):
        raise ConfigError("sign a model with a key (--key KEY) or keylessly (--sigstore), one of them")
    store, manifest_file = RunStore(output_dir).locate(ref)
    stored = store.open(manifest_file, check_outputs=False)  # the signed digests check the outputs
    if stored.manifest is None or not stored.verification.ok:
        problems = "; ".join(stored.verification.problems)
        raise ModelSignatureError(f"{manifest_file.name} does not verify ({problems}): not signing its model")
    manifest = stored.manifest
    if manifest.status != "completed":
        raise ModelSignatureError(
            f"run {manifest.run_id} did not complete ({manifest.status}): nothing to sign"
        )
    from provenir.governance.audit import AuditLogger

    return _sign_stored(
        store,
        manifest,
        key_path,
        AuditLogger(store.audit_dir),
        signature_path=signature_path,
        sigstore=sigstore,
        identity_token=identity_token,
        actor=actor,
    )


def sign_after_training(
    store: RunStore, manifest: RunManifest, key_path: str | None, audit: AuditLogger
) -> ModelSignature | None:
    """The end-of-``train`` step: sign the run's model folder when ``key_path`` is set (else None).

    Called after the final manifest seal, so ``model.sig`` is not among the sealed outputs. A
    failure is recorded in the audit log and raised as :class:`ModelSignatureError` saying the
    run itself completed and how to sign it afterwards.
    """
    if key_path is None:
        return None
    try:
        return _sign_stored(store, manifest, key_path, audit)
    except (ConfigError, ModelSignatureError, MissingExtraError) as exc:
        reason = _one_line(exc)
        audit.log(SIGNING_FAILED_EVENT, run_id=manifest.run_id, error=reason)
        raise ModelSignatureError(
            f"run {manifest.run_id} completed and its manifest is sealed, but signing its model failed: "
            f"{reason}; sign it later with `provenir sign-model {manifest.run_id} --key KEY`"
        ) from None


def verify_run(
    ref: str | os.PathLike[str],
    *,
    public_key_path: str | os.PathLike[str] | None = None,
    sigstore_identity: str | None = None,
    sigstore_issuer: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    signature_path: str | os.PathLike[str] | None = None,
) -> ModelVerification:
    """Verify the model folder of the stored run ``ref`` against its ``model.sig``.

    The library's verifier must accept the folder, the manifest must verify, and the signed
    files must be exactly the manifest's recorded outputs for that folder; otherwise
    :class:`ModelSignatureError`. Give ``public_key_path``, or the Sigstore identity and issuer.
    """
    if (public_key_path is None) == (sigstore_identity is None):
        raise ConfigError("verify with a public key (--public-key PUB) or a Sigstore identity, one of them")
    if sigstore_identity is not None and sigstore_issuer is None:
        raise ConfigError("a Sigstore identity needs its OIDC issuer (--sigstore-issuer URL)")
    store, manifest_file = RunStore(output_dir).locate(ref)
    stored = store.open(manifest_file, check_outputs=False)
    if stored.manifest is None or not stored.verification.ok:
        problems = "; ".join(stored.verification.problems)
        raise ModelSignatureError(f"{manifest_file.name} does not verify: {problems}")
    manifest = stored.manifest
    folder = run_model_folder(store, manifest)
    if public_key_path is not None:
        result = verify_model(folder, public_key_path, signature_path)
    else:
        assert sigstore_identity is not None and sigstore_issuer is not None
        result = verify_model_sigstore(folder, sigstore_identity, sigstore_issuer, signature_path)
    differences = _differences(result.files, _recorded_files(manifest, folder, store))
    if differences:
        raise ModelSignatureError(
            f"the signature verifies, but the signed files are not the outputs run {manifest.run_id} "
            f"recorded: {'; '.join(differences)}"
        )
    return ModelVerification(
        result.folder, result.signature_path, result.method, result.files, result.key_fingerprint, True
    )


# -- internals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Library:
    hashing: Any
    signing: Any
    verifying: Any


def _library() -> _Library:
    """The library's public modules, or one line naming what to install."""
    try:
        from model_signing import hashing, signing, verifying
    except ModuleNotFoundError as exc:
        missing = (exc.name or "model_signing").split(".")[0]
        if missing == "provenir":
            raise
        dist = _DISTRIBUTIONS.get(missing, missing)
        # model-signing imports OpenSSL (pyopenssl) without declaring it as a dependency.
        undeclared = " (model-signing imports it without declaring it)" if missing == "OpenSSL" else ""
        raise MissingExtraError(
            f"model signing needs {dist}, which is not installed{undeclared}: {install_hint('signing')}",
            module=missing,
            extra="signing",
        ) from None
    return _Library(hashing, signing, verifying)


def _every_file(lib: _Library) -> Any:
    # The library's default skips .git*/.github paths; an added .gitignore must not pass.
    return lib.hashing.Config().set_ignored_paths(paths=[], ignore_git_paths=False)


def _folder_and_signature(
    folder: str | os.PathLike[str], signature_path: str | os.PathLike[str] | None
) -> tuple[Path, Path]:
    model = Path(folder)
    if model.is_symlink() or not model.is_dir():
        raise ModelSignatureError(f"{model} is not a folder: only a model folder can be signed")
    if not any(p.is_file() or p.is_symlink() for p in model.rglob("*")):
        raise ModelSignatureError(f"{model} holds no file: nothing to sign")
    target = Path(signature_path) if signature_path is not None else default_signature_path(model)
    if target.resolve().is_relative_to(model.resolve()):
        raise ModelSignatureError(
            f"signature {target} would lie inside the signed folder {model}; write it beside it "
            f"(default {default_signature_path(model)})"
        )
    return model, target


def _folder_and_existing_signature(
    folder: str | os.PathLike[str], signature_path: str | os.PathLike[str] | None
) -> tuple[Path, Path]:
    model = Path(folder)
    if model.is_symlink() or not model.is_dir():
        raise ModelSignatureError(f"{model} is not a folder")
    target = Path(signature_path) if signature_path is not None else default_signature_path(model)
    if not target.is_file():
        raise ModelSignatureError(
            f"no model signature at {target}: sign the folder first (provenir sign-model)"
        )
    return model, target


def _write_signature(config: Any, model: Path, target: Path) -> None:
    """Let the library sign into a scratch folder, then move the bytes into place atomically."""
    with tempfile.TemporaryDirectory(prefix="provenir-sig-") as scratch:
        scratch_file = Path(scratch) / SIGNATURE_NAME
        try:
            config.sign(model, scratch_file)
        except (ValueError, OSError) as exc:  # a symbolic link in the folder, an unreadable file
            raise ModelSignatureError(f"{model}: cannot sign: {_one_line(exc)}") from None
        atomic_write_bytes(target, scratch_file.read_bytes())


def _check_signature(config: Any, model: Path, target: Path) -> None:
    try:
        config.verify(model, target)
    except Exception as exc:  # noqa: BLE001 - the library reports every failure as some exception
        reason = _one_line(exc)
        if reason.startswith("Signature mismatch"):
            # The envelope verified (the listed digests are authentic) but the files differ; the
            # library prints raw digest bytes, so name the files in words instead.
            reason = "; ".join(_folder_differences(_signed_files(target), model)) or reason
        raise ModelSignatureError(f"{model} does not match its signature {target.name}: {reason}") from None


def _folder_differences(signed: dict[str, str], model: Path) -> list[str]:
    present = {
        p.relative_to(model).as_posix(): p for p in sorted(model.rglob("*")) if p.is_file() or p.is_symlink()
    }
    problems = [f"{name} was added" for name in sorted(present.keys() - signed)]
    problems += [f"{name} is missing" for name in sorted(signed.keys() - present)]
    problems += [
        f"{name} changed"
        for name in sorted(signed.keys() & present.keys())
        if present[name].is_symlink() or sha256_file(present[name]) != signed[name]
    ]
    return problems


def _signed_files(signature: Path) -> dict[str, str]:
    """The ``path -> sha256`` list inside a signature (authenticated only once it has verified)."""
    try:
        bundle = json.loads(signature.read_text(encoding="utf-8"))
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"], validate=True))
        resources = statement["predicate"]["resources"]
        return {str(r["name"]): str(r["digest"]) for r in resources if r.get("algorithm") == "sha256"}
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ModelSignatureError(f"{signature}: not a model-signing signature ({_one_line(exc)})") from None


def _private_key_public_pem(path: Path) -> bytes:
    """The public key PEM of the ECDSA private key at ``path``; one-line errors for anything else."""
    require_extra("cryptography", "signing", purpose="model signing")
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if not path.is_file():
        raise ConfigError(f"model signing key not found: {path}")
    data = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        hint = "; this is a public key, pass the private key" if b"PUBLIC KEY" in data else ""
        raise ConfigError(f"{path}: not an unencrypted PEM private key ({_one_line(exc)}){hint}") from None
    return _require_ecdsa(key.public_key(), path)


def _public_key_pem(path: Path) -> bytes:
    require_extra("cryptography", "signing", purpose="model signature verification")
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if not path.is_file():
        raise ConfigError(f"public key not found: {path}")
    data = path.read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        hint = "; this is a private key, pass its .pub file" if b"PRIVATE KEY" in data else ""
        raise ConfigError(f"{path}: not a PEM public key ({_one_line(exc)}){hint}") from None
    return _require_ecdsa(key, path)


def _require_ecdsa(public_key: Any, path: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if not (isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in _CURVES):
        raise ConfigError(
            f"{path}: model signing needs an ECDSA P-256 key, this is {_describe(public_key)} "
            "(create one with `provenir manifest keygen KEY --algorithm ecdsa-p256`)"
        )
    pem: bytes = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def _describe(public_key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA-{public_key.key_size}"
    if isinstance(public_key, dsa.DSAPublicKey):
        return "DSA"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"ECDSA on {public_key.curve.name} (P-256, P-384 and P-521 are supported)"
    return type(public_key).__name__


def _model_prefix(manifest: RunManifest) -> str | None:
    """The folder (relative to the run folder) of the output file whose hash is ``adapter_hash``."""
    if manifest.adapter_hash is None:
        return None
    for rel, sha in sorted(manifest.outputs.items()):
        path = PurePosixPath(rel)
        if sha != manifest.adapter_hash or path.is_absolute() or ".." in path.parts:
            continue
        if len(path.parts) >= 2:
            return path.parent.as_posix()
    return None


def _recorded_files(manifest: RunManifest, folder: Path, store: RunStore) -> dict[str, str]:
    """The manifest's outputs inside ``folder``, keyed by their path inside it."""
    prefix = folder.relative_to(store.run_dir(manifest.run_id)).as_posix() + "/"
    return {rel[len(prefix) :]: sha for rel, sha in manifest.outputs.items() if rel.startswith(prefix)}


def _differences(signed: dict[str, str], recorded: dict[str, str]) -> list[str]:
    problems = [f"{name} is not among the recorded outputs" for name in sorted(signed.keys() - recorded)]
    problems += [f"{name} is recorded but was not signed" for name in sorted(recorded.keys() - signed)]
    problems += [
        f"{name} differs from the recorded hash"
        for name in sorted(signed.keys() & recorded.keys())
        if signed[name] != recorded[name]
    ]
    return problems


def _sign_stored(
    store: RunStore,
    manifest: RunManifest,
    key_path: str | os.PathLike[str] | None,
    audit: AuditLogger,
    *,
    signature_path: str | os.PathLike[str] | None = None,
    sigstore: bool = False,
    identity_token: str | None = None,
    actor: str | None = None,
) -> ModelSignature:
    folder = run_model_folder(store, manifest)
    target = Path(signature_path) if signature_path is not None else default_signature_path(folder)
    _folder_and_signature(folder, target)  # refuse a signature inside the folder before any work
    # Sign into scratch first: a signature over files the sealed manifest does not vouch for
    # must never replace the one in place (which may still be good evidence of the original).
    with tempfile.TemporaryDirectory(prefix="provenir-sig-") as scratch:
        draft = Path(scratch) / SIGNATURE_NAME
        if sigstore:
            signed = sign_model_sigstore(folder, draft, identity_token=identity_token)
        else:
            assert key_path is not None
            signed = sign_model(folder, key_path, draft)
        differences = _differences(signed.files, _recorded_files(manifest, folder, store))
        if differences:
            raise ModelSignatureError(
                f"run {manifest.run_id}: {folder.name} no longer holds the files its manifest recorded "
                f"({'; '.join(differences)}); not signed"
            )
        atomic_write_bytes(target, draft.read_bytes())
    signed = dataclasses.replace(signed, signature_path=target)
    run_dir = store.run_dir(manifest.run_id).resolve()
    where = signed.signature_path.resolve()
    audit.log(
        SIGNED_EVENT,
        actor=actor,
        run_id=manifest.run_id,
        method=signed.method,
        folder=folder.resolve().relative_to(run_dir).as_posix(),
        # Inside the run folder by its path there; elsewhere by name only (no server paths).
        signature=where.relative_to(run_dir).as_posix() if where.is_relative_to(run_dir) else where.name,
        files=len(signed.files),
        key_fingerprint=signed.key_fingerprint,
        signature_sha256=signed.signature_sha256,
        manifest_hash=manifest.manifest_hash,
    )
    return signed


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
