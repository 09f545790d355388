"""GET /manifests/{run_id} (bytes as stored) and /verify (tampering of any kind is reported)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from api_support import TOKEN, make_manifest, run_id_for

from provenir.core.signing_keys import generate_signing_key
from provenir.core.store import RunStore


def _verify(client, url: str, rid: str) -> dict:
    r = client.get(f"{url}/manifests/{rid}/verify")
    assert r.status_code == 200, r.text
    return r.json()


def test_manifest_is_served_byte_for_byte(artifacts: Path, serve, client) -> None:
    manifest = make_manifest(artifacts, 0)
    url, _ = serve(artifacts, token=TOKEN)
    r = client.get(f"{url}/manifests/{manifest.run_id}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.content == RunStore(artifacts).manifest_path(manifest.run_id).read_bytes()
    assert client.get(f"{url}/manifests/{run_id_for(42)}").status_code == 404


def test_verify_reports_each_kind_of_tampering(artifacts: Path, serve, client) -> None:
    manifest = make_manifest(artifacts, 0)
    rid = manifest.run_id
    path = RunStore(artifacts).manifest_path(rid)
    url, _ = serve(artifacts, token=TOKEN)
    clean = _verify(client, url, rid)
    assert clean == {
        "run_id": rid,
        "ok": True,
        "hash_ok": True,
        "canonical_ok": True,
        "signature": "unsigned",
        "signer_fingerprint": None,
        "signer_trusted": None,
        "outputs_ok": True,
        "problems": [],
    }
    original = path.read_text()

    # A field changed in place (the hash no longer matches).
    path.write_text(original.replace('"seed": 0', '"seed": 1'))
    edited = _verify(client, url, rid)
    assert edited["ok"] is False and edited["hash_ok"] is False
    assert any("a field was changed" in p for p in edited["problems"])
    # The changed file is still served as stored, so a client can see what changed.
    assert b'"seed": 1' in client.get(f"{url}/manifests/{rid}").content

    # Same content, different bytes (re-indented): caught by the exact-bytes check.
    path.write_text(json.dumps(json.loads(original), indent=4, sort_keys=True) + "\n")
    reformatted = _verify(client, url, rid)
    assert (
        reformatted["ok"] is False and reformatted["hash_ok"] is True and reformatted["canonical_ok"] is False
    )

    # Not JSON at all: verify says so, and the raw endpoint refuses to call it JSON.
    path.write_text(original[:-20])
    broken = _verify(client, url, rid)
    assert broken["ok"] is False and broken["signature"] == "unknown"
    assert str(artifacts) not in json.dumps(broken)
    raw = client.get(f"{url}/manifests/{rid}")
    assert raw.status_code == 409 and raw.json()["error"] == "tampered"

    path.write_text(original)
    assert _verify(client, url, rid)["ok"] is True


def test_verify_checks_output_files(artifacts: Path, serve, client) -> None:
    from provenir.core.config import RunConfig
    from provenir.train.runner import train

    manifest = train(RunConfig(name="outs", backend="stub", output_dir=str(artifacts)))
    url, _ = serve(artifacts, token=TOKEN)
    assert _verify(client, url, manifest.run_id)["ok"] is True
    adapter = RunStore(artifacts).run_dir(manifest.run_id) / "adapter" / "stub_adapter.bin"
    adapter.write_bytes(adapter.read_bytes() + b"\0")
    changed = _verify(client, url, manifest.run_id)
    assert changed["ok"] is False and changed["outputs_ok"] is False and changed["hash_ok"] is True
    assert any("stub_adapter.bin changed" in p for p in changed["problems"])
    adapter.unlink()
    assert any("is missing" in p for p in _verify(client, url, manifest.run_id)["problems"])


def test_verify_catches_a_manifest_copied_under_another_id(artifacts: Path, serve, client) -> None:
    manifest = make_manifest(artifacts, 0)
    other = run_id_for(7)
    RunStore(artifacts).manifest_path(other).write_text(manifest.to_json())
    url, _ = serve(artifacts, token=TOKEN)
    result = _verify(client, url, other)
    # Intact by itself (hash and bytes fine), but not the run its file name claims.
    assert result["hash_ok"] is True and result["ok"] is False
    assert any(f"holds run {manifest.run_id}" in p for p in result["problems"])


def test_verify_signatures_against_the_trusted_key(artifacts: Path, tmp_path: Path, serve, client) -> None:
    key = tmp_path / "signing.pem"
    fingerprint = generate_signing_key(key)
    signed = make_manifest(artifacts, 0)
    signed.seal(signing_key=key).save(RunStore(artifacts).manifest_path(signed.run_id))
    unsigned = make_manifest(artifacts, 1)
    url, _ = serve(artifacts, token=TOKEN)
    result = _verify(client, url, signed.run_id)
    assert result["ok"] is True and result["signature"] == "valid"
    assert result["signer_fingerprint"] == fingerprint

    trusted = signed.signature.public_key
    url2, _ = serve(artifacts, token=TOKEN, trusted_public_keys=[trusted])
    assert _verify(client, url2, signed.run_id)["signature"] == "valid"
    not_signed = _verify(client, url2, unsigned.run_id)
    # Unsigned under a signer policy: the state says so, and it fails.
    assert not_signed["ok"] is False and not_signed["signature"] == "unsigned"

    other = base64.b64encode(b"\1" * 32).decode()
    url3, _ = serve(artifacts, token=TOKEN, trusted_public_keys=[other])
    foreign = _verify(client, url3, signed.run_id)
    assert foreign["ok"] is False and foreign["signature"] == "untrusted"
