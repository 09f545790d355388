"""Model signing: signatures over a run's model folder that OpenSSF model-signing's own verifier accepts.

The independent verifier is the ``model_signing`` library itself: its command line
(``python -m model_signing verify key ...``) and its verifying API. Provenir's own
:func:`verify_model` is checked against the same tampering.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import ConfigError, ModelSignatureError
from provenir.core.manifest import RunManifest
from provenir.core.signing_keys import KeyPair, generate_key_pair, public_key_path
from provenir.core.store import RunStore
from provenir.governance.audit import AuditReader
from provenir.governance.model_signing import (
    SIGNATURE_NAME,
    run_model_folder,
    sign_model,
    sign_run,
    verify_model,
    verify_run,
)

pytest.importorskip("model_signing")
pytest.importorskip("OpenSSL")

ED25519_REFUSAL = "model signing needs an ECDSA P-256 key, this is Ed25519"


# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    """An ECDSA P-256 pair, a second one, and an Ed25519 pair (the manifest kind)."""
    folder = tmp_path_factory.mktemp("keys")
    return {
        "ec": generate_key_pair(folder / "model.pem", "ecdsa-p256"),
        "other": generate_key_pair(folder / "other.pem", "ecdsa-p256"),
        "ed": generate_key_pair(folder / "manifest.pem", "ed25519"),
    }


def library_cli_verify(folder: Path, public_key: Path, signature: Path) -> subprocess.CompletedProcess[str]:
    """OpenSSF's own command, as an auditor runs it (every file counted, like Provenir)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "model_signing",
            "verify",
            "key",
            "--no-ignore-git-paths",
            "--public_key",
            str(public_key),
            "--signature",
            str(signature),
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def library_api_accepts(folder: Path, public_key: Path, signature: Path, *, git_paths: bool = True) -> bool:
    """The library's verifying API; ``git_paths=False`` is its default (``.git*`` files skipped)."""
    from model_signing import hashing, verifying

    config = verifying.Config().use_elliptic_key_verifier(public_key=public_key)
    if git_paths:
        config.set_hashing_config(hashing.Config().set_ignored_paths(paths=[], ignore_git_paths=False))
    try:
        config.verify(folder, signature)
    except ValueError:
        return False
    return True


def stub_run(out: Path, **manifest_section: str) -> RunManifest:
    from provenir.train.runner import train

    overrides: dict[str, object] = {"backend": "stub", "output_dir": str(out)}
    if manifest_section:
        overrides["manifest"] = manifest_section
    return train(RunConfig.from_dict(overrides))


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``provenir ARGS`` in this process: (exit code, stdout, stderr)."""
    from provenir.cli.main import main

    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def flip_one_byte(path: Path) -> bytes:
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return original


# -- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256"])
def test_keygen_writes_a_private_key_0600_and_its_public_key_beside_it(
    tmp_path: Path, algorithm: str
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    pair = generate_key_pair(tmp_path / "k.pem", algorithm)
    assert pair.public_key == public_key_path(pair.private_key) == tmp_path / "k.pem.pub"
    assert stat.S_IMODE(pair.private_key.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(pair.private_key.read_bytes(), password=None)
    public = serialization.load_pem_public_key(pair.public_key.read_bytes())
    expected = ed25519.Ed25519PublicKey if algorithm == "ed25519" else ec.EllipticCurvePublicKey
    assert isinstance(public, expected)
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert private.public_key().public_bytes(*raw) == public.public_bytes(*raw)
    if algorithm == "ecdsa-p256":
        assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"

    with pytest.raises(ConfigError, match="already exists"):
        generate_key_pair(tmp_path / "k.pem", algorithm)
    (tmp_path / "only.pem.pub").write_text("someone else's public key")
    with pytest.raises(ConfigError, match="only.pem.pub already exists"):
        generate_key_pair(tmp_path / "only.pem", algorithm)
    assert not (tmp_path / "only.pem").exists()


def test_keygen_cli_takes_an_algorithm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "manifest", "keygen", str(tmp_path / "m.pem"), "--algorithm", "ecdsa-p256")
    assert code == 0 and "m.pem.pub" in out
    code, _, err = cli(capsys, "manifest", "keygen", str(tmp_path / "r.pem"), "--algorithm", "rsa")
    assert code == 2 and "unknown key algorithm 'rsa'" in one_line_error(err)


def test_the_model_signing_key_is_not_part_of_the_config_hash() -> None:
    """Which key signs the finished folder does not change what is trained; old configs keep their hash."""
    plain = RunConfig.from_dict({"backend": "stub"})
    keyed = RunConfig.from_dict({"backend": "stub", "manifest": {"model_signing_key_path": "model.pem"}})
    assert plain.config_hash() == keyed.config_hash()
    manifest_keyed = RunConfig.from_dict({"backend": "stub", "manifest": {"signing_key_path": "m.pem"}})
    assert manifest_keyed.config_hash() != plain.config_hash()  # only that one field is left out


# -- signing and the library's verifier ---------------------------------------------------------


def test_a_signed_stub_adapter_is_accepted_by_model_signings_own_cli(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    out = tmp_path / "artifacts"
    manifest = stub_run(out)
    store = RunStore(out)
    folder = run_model_folder(store, manifest)
    assert folder == store.run_dir(manifest.run_id) / "adapter"

    signed = sign_run(manifest.run_id, key_path=keys["ec"].private_key, output_dir=out)
    assert signed.signature_path == folder.parent / SIGNATURE_NAME  # beside the folder, not in it
    assert set(signed.files) == {p.name for p in folder.iterdir()}
    # The bundle names its key by the SHA-256 of the public key PEM; keygen's fingerprint is its start.
    bundle = json.loads(signed.signature_path.read_text(encoding="utf-8"))
    assert bundle["verificationMaterial"]["publicKey"]["hint"].startswith(keys["ec"].fingerprint)

    proc = library_cli_verify(folder, keys["ec"].public_key, signed.signature_path)
    assert proc.returncode == 0 and "Verification succeeded" in proc.stdout, proc.stdout + proc.stderr
    # Signing changed nothing the manifest sealed.
    assert store.verify(manifest.run_id).ok
    assert RunManifest.load(store.manifest_path(manifest.run_id)).outputs == manifest.outputs

    checked = verify_run(manifest.run_id, public_key_path=keys["ec"].public_key, output_dir=out)
    assert checked.matches_manifest is True and checked.files == signed.files

    [record] = AuditReader(store.audit_dir).query(event="model_signed").records
    assert record.run_id == manifest.run_id
    assert record.fields["key_fingerprint"] == keys["ec"].fingerprint
    assert record.fields["folder"] == "adapter" and record.fields["signature"] == SIGNATURE_NAME


def test_a_valid_signature_over_files_the_manifest_did_not_record_fails_verify_run(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """Someone with the model key re-signs an edited adapter: the library accepts it, the run does not."""
    out = tmp_path / "artifacts"
    manifest = stub_run(out)
    folder = run_model_folder(RunStore(out), manifest)
    (folder / "chat_template.jinja").write_text("{{ 'injected' }}")
    sign_model(folder, keys["ec"].private_key)  # straight through the library, no manifest check
    assert library_api_accepts(folder, keys["ec"].public_key, folder.parent / SIGNATURE_NAME)
    with pytest.raises(ModelSignatureError, match="chat_template.jinja is not among the recorded outputs"):
        verify_run(manifest.run_id, public_key_path=keys["ec"].public_key, output_dir=out)


def test_tampering_with_the_tiny_model_folder_fails_every_verifier(
    tmp_path: Path, tiny_model_path: Path, keys: dict[str, KeyPair]
) -> None:
    folder = tmp_path / "tiny-model"
    shutil.copytree(tiny_model_path, folder)
    signature = tmp_path / "tiny-model.sig"
    signed = sign_model(folder, keys["ec"].private_key, signature)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert len(signed.files) == len(files) >= 5
    public = keys["ec"].public_key
    proc = library_cli_verify(folder, public, signature)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert verify_model(folder, public, signature).files == signed.files

    for path in files:  # a one-byte change in any file
        original = flip_one_byte(path)
        assert not library_api_accepts(folder, public, signature), path.name
        with pytest.raises(ModelSignatureError, match=f"{path.name} changed"):
            verify_model(folder, public, signature)
        path.write_bytes(original)
    assert library_api_accepts(folder, public, signature)

    injected = folder / "chat_template.jinja"  # a file the tokenizer would load
    injected.write_text("{{ 'pwned' }}")
    assert not library_api_accepts(folder, public, signature)
    with pytest.raises(ModelSignatureError, match="chat_template.jinja was added"):
        verify_model(folder, public, signature)
    injected.unlink()

    removed = folder / "generation_config.json"
    kept = removed.read_bytes()
    removed.unlink()
    assert not library_api_accepts(folder, public, signature)
    with pytest.raises(ModelSignatureError, match="generation_config.json is missing"):
        verify_model(folder, public, signature)
    removed.write_bytes(kept)

    # A different key did not sign it.
    with pytest.raises(ModelSignatureError, match="Key mismatch"):
        verify_model(folder, keys["other"].public_key, signature)
    assert library_cli_verify(folder, keys["other"].public_key, signature).returncode == 1


def test_an_added_git_file_fails_provenirs_verify_though_the_library_default_skips_it(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    """Why Provenir counts every file: model_signing skips .git* paths unless told otherwise."""
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    signature = tmp_path / SIGNATURE_NAME
    sign_model(folder, keys["ec"].private_key, signature)
    (folder / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    with pytest.raises(ModelSignatureError, match=".gitattributes was added"):
        verify_model(folder, keys["ec"].public_key, signature)
    assert not library_api_accepts(folder, keys["ec"].public_key, signature)
    assert library_api_accepts(folder, keys["ec"].public_key, signature, git_paths=False)


def test_an_ed25519_key_is_refused_with_one_line(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights")
    with pytest.raises(ConfigError, match=ED25519_REFUSAL) as caught:
        sign_model(folder, keys["ed"].private_key)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / SIGNATURE_NAME).exists()
    sign_model(folder, keys["ec"].private_key)
    with pytest.raises(ConfigError, match=ED25519_REFUSAL):
        verify_model(folder, keys["ed"].public_key)


def test_unsignable_folders_and_signature_places_are_refused(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    with pytest.raises(ModelSignatureError, match="holds no file"):
        sign_model(folder, keys["ec"].private_key)
    (folder / "w.bin").write_bytes(b"weights")
    with pytest.raises(ModelSignatureError, match="inside the signed folder"):
        sign_model(folder, keys["ec"].private_key, folder / SIGNATURE_NAME)
    (folder / "link.bin").symlink_to(tmp_path / "elsewhere.bin")
    (tmp_path / "elsewhere.bin").write_bytes(b"outside")
    with pytest.raises(ModelSignatureError, match="cannot sign"):
        sign_model(folder, keys["ec"].private_key)
    assert not (tmp_path / SIGNATURE_NAME).exists()


# -- end of training ----------------------------------------------------------------------------


def test_train_signs_the_adapter_after_the_final_seal(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    out = tmp_path / "artifacts"
    manifest = stub_run(out, model_signing_key_path=str(keys["ec"].private_key))
    store = RunStore(out)
    folder = store.run_dir(manifest.run_id) / "adapter"
    signature = folder.parent / SIGNATURE_NAME
    assert signature.is_file()
    assert not any(SIGNATURE_NAME in rel for rel in manifest.outputs)  # sealed before signing
    assert store.verify(manifest.run_id).ok
    proc = library_cli_verify(folder, keys["ec"].public_key, signature)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = [
        r.event for r in AuditReader(store.audit_dir).query(run_id=manifest.run_id, order="asc").records
    ]
    assert events[-2:] == ["training_completed", "model_signed"]


def test_train_with_an_ed25519_model_key_completes_then_says_signing_failed(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    out = tmp_path / "artifacts"
    with pytest.raises(ModelSignatureError, match="completed and its manifest is sealed") as caught:
        stub_run(out, model_signing_key_path=str(keys["ed"].private_key))
    assert ED25519_REFUSAL in str(caught.value) and "provenir sign-model" in str(caught.value)
    store = RunStore(out)
    (run_id,) = store.run_ids()
    assert RunManifest.load(store.manifest_path(run_id)).status == "completed"
    assert not (store.run_dir(run_id) / SIGNATURE_NAME).exists()
    [failed] = AuditReader(store.audit_dir).query(event="model_signing_failed").records
    assert ED25519_REFUSAL in failed.fields["error"]


# -- the command line ---------------------------------------------------------------------------


def test_sign_and_verify_model_exit_codes(
    tmp_path: Path, keys: dict[str, KeyPair], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "artifacts"
    run_id = stub_run(out).run_id
    where = ("--output-dir", str(out))
    ec, other, ed = keys["ec"], keys["other"], keys["ed"]

    code, _, err = cli(capsys, "sign-model", run_id, "--key", str(ed.private_key), *where)
    assert code == 2 and ED25519_REFUSAL in one_line_error(err)
    code, _, err = cli(capsys, "sign-model", run_id, *where)
    assert code == 2 and "--key KEY" in one_line_error(err)
    code, _, err = cli(capsys, "verify-model", run_id, "--public-key", str(ec.public_key), *where)
    assert code == 2 and "no model signature" in one_line_error(err)

    code, out_text, err = cli(capsys, "sign-model", run_id[:8], "--key", str(ec.private_key), *where)
    assert code == 0, err
    assert "signed" in out_text and ec.fingerprint in out_text
    code, out_text, err = cli(capsys, "verify-model", "latest", "--public-key", str(ec.public_key), *where)
    assert code == 0 and out_text.startswith("ok "), err
    code, _, err = cli(capsys, "verify-model", run_id, "--public-key", str(other.public_key), *where)
    assert code == 2 and "Key mismatch" in one_line_error(err)
    code, _, err = cli(capsys, "verify-model", run_id, "--public-key", str(ec.private_key), *where)
    assert code == 2 and "pass its .pub file" in one_line_error(err)

    adapter = RunStore(out).run_dir(run_id) / "adapter"
    signature = adapter.parent / SIGNATURE_NAME
    good = signature.read_bytes()
    flip_one_byte(adapter / "stub_adapter.bin")
    code, _, err = cli(capsys, "verify-model", run_id, "--public-key", str(ec.public_key), *where)
    assert code == 2 and "stub_adapter.bin changed" in one_line_error(err)
    # Re-signing a tampered folder is refused, and the good signature stays in place.
    code, _, err = cli(capsys, "sign-model", run_id, "--key", str(ec.private_key), *where)
    assert code == 2 and "stub_adapter.bin differs from the recorded hash" in one_line_error(err)
    assert signature.read_bytes() == good


def _run_offline_cli(tmp_path: Path, prelude: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "offline_cli.py"
    script.write_text(
        textwrap.dedent(prelude) + "\nfrom provenir.cli.main import main\nmain(sys.argv[1:])\n",
        encoding="utf-8",
    )
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )


def test_keyless_sigstore_signing_fails_fast_and_cleanly_offline(tmp_path: Path) -> None:
    """The network is cut inside the child process, so this holds on a machine that has one too."""
    out = tmp_path / "artifacts"
    run_id = stub_run(out).run_id
    prelude = """
        import socket, sys

        def _unreachable(*args, **kwargs):
            raise OSError(101, "Network is unreachable (cut by the test)")

        socket.socket.connect = _unreachable
        socket.create_connection = _unreachable
        socket.getaddrinfo = _unreachable
    """
    started = time.monotonic()
    proc = _run_offline_cli(tmp_path, prelude, "sign-model", run_id, "--sigstore", "--output-dir", str(out))
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "needs network access to Sigstore" in one_line_error(proc.stderr)
    assert elapsed < 60
    assert not (RunStore(out).run_dir(run_id) / SIGNATURE_NAME).exists()


def test_a_missing_pyopenssl_names_the_signing_extra(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights")
    prelude = """
        import sys

        sys.modules["OpenSSL"] = None  # as if pyopenssl were not installed
        from provenir.governance.model_signing import sign_model
        from provenir.core.errors import MissingExtraError

        try:
            sign_model(sys.argv[1], sys.argv[2])
        except MissingExtraError as exc:
            print(exc)
            sys.exit(3)
    """
    script = tmp_path / "no_openssl.py"
    script.write_text(textwrap.dedent(prelude), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script), str(folder), str(keys["ec"].private_key)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    undeclared = "(model-signing imports it without declaring it)"
    assert f"model signing needs pyopenssl, which is not installed {undeclared}" in proc.stdout
    assert "pip install 'provenir[signing]'" in proc.stdout
