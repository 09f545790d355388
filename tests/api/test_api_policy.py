"""The server's signer policy on every endpoint that states verification, and the same words as the
CLI; outputs out of the run folder over the API; served manifests without server paths."""

from __future__ import annotations

import base64
import html
import re
import shutil
from pathlib import Path

import pytest
from api_support import TOKEN

import provenir.data
from provenir.cli.main import main
from provenir.core.config import RunConfig
from provenir.core.hashing import sha256_bytes, sha256_file
from provenir.core.manifest import RunManifest
from provenir.core.signers import fingerprint, public_key_of
from provenir.core.signing_keys import generate_signing_key
from provenir.core.store import RunStore

pytest.importorskip("cryptography")

STRIPPED = "manifest is not signed, but the signer policy requires a signature by a trusted key"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    _, err = capsys.readouterr()
    return int(exc.value.code or 0), " ".join(err.split())


def _signed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[RunStore, RunManifest, Path, Path]:
    from provenir.train.runner import train

    monkeypatch.delenv("PROVENIR_SIGNING_KEY", raising=False)
    ours, theirs = tmp_path / "ours.pem", tmp_path / "theirs.pem"
    generate_signing_key(ours)
    generate_signing_key(theirs)
    store = RunStore(tmp_path / "artifacts")
    config = RunConfig(
        name="policy", backend="stub", output_dir=str(store.root), manifest={"signing_key_path": str(ours)}
    )
    return store, train(config), ours, theirs


def _forge(store: RunStore, run: RunManifest, key: Path | None) -> None:
    forged = run.model_copy(deep=True)
    forged.metrics["train_loss"] = 0.001
    forged.seal(signing_key=key).save(store.manifest_path(run.run_id))


def test_every_reader_fails_stripped_and_foreign_manifests_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], serve, client
) -> None:
    pytest.importorskip("matplotlib")
    store, run, ours, theirs = _signed_run(tmp_path, monkeypatch)
    trusted = public_key_of(ours)
    foreign_fp = fingerprint(base64.b64decode(public_key_of(theirs)))
    ours_fp = fingerprint(base64.b64decode(trusted))
    url, _ = serve(store.root, token=TOKEN, trusted_public_keys=[trusted])
    open_url, _ = serve(store.root, token=TOKEN)  # no signer policy

    def api(base: str) -> tuple[dict, dict, str]:
        verify = client.get(f"{base}/manifests/{run.run_id}/verify").json()
        detail = client.get(f"{base}/runs/{run.run_id}").json()
        report = client.get(f"{base}/runs/{run.run_id}/report")
        assert report.status_code == 200
        return verify, detail, html.unescape(report.text)

    verify, detail, page = api(url)
    assert verify["ok"] and verify["signer_trusted"] is True
    assert detail["verification"]["ok"] and detail["verification"]["signature"] == "valid"
    assert detail["verification"]["outputs_ok"] is None  # the run summary does not re-hash outputs
    assert "by a key the signer policy trusts" in page

    cases = {
        None: STRIPPED,
        theirs: f"signed by key {foreign_fp}, which the signer policy does not trust (trusted: {ours_fp})",
    }
    for key, problem in cases.items():
        _forge(store, run, key)
        verify, detail, page = api(url)
        assert verify["ok"] is False and verify["problems"] == [problem]
        assert detail["verification"]["ok"] is False and detail["verification"]["problems"] == [problem]
        assert verify["signature"] == detail["verification"]["signature"] != "valid"
        assert "This run does not verify" in page and problem in page
        assert "<td>valid" not in page and ">verified<" not in page
        for command in (["manifest", "verify"], ["reproduce"], ["report", "--out", str(tmp_path / "r.html")]):
            code, err = _cli(
                capsys, *command, run.run_id, "--output-dir", str(store.root), "--public-key", trusted
            )
            assert code == 2 and problem in err, (command, err)
        # Without a policy the same server code reports the state but does not fail it.
        verify, detail, page = api(open_url)
        assert verify["ok"] is True and detail["verification"]["ok"] is True
        assert verify["signer_trusted"] is None and ">verified<" in page


def test_outputs_out_of_the_run_folder_over_the_api(tmp_path: Path, serve, client) -> None:
    from provenir.train.runner import train

    store = RunStore(tmp_path / "artifacts")
    run = train(RunConfig(name="escape", backend="stub", output_dir=str(store.root)))
    secret = tmp_path / "secret"
    secret.write_text("x")
    forged = run.model_copy(deep=True)
    forged.outputs["../../../secret"] = sha256_file(secret)
    forged.outputs[str(secret)] = sha256_file(secret)
    forged.seal().save(store.manifest_path(run.run_id))
    (store.run_dir(run.run_id) / "adapter" / "chat_template.jinja").write_text("{{ evil }}")
    url, _ = serve(store.root, token=TOKEN)
    result = client.get(f"{url}/manifests/{run.run_id}/verify").json()
    assert result["ok"] is False and result["outputs_ok"] is False
    assert result["problems"] == [
        "output path '../../../secret' is not a plain relative path inside the run folder; not read",
        "output path '<server path>/secret' is not a plain relative path inside the run folder; not read",
        "adapter/chat_template.jinja is not recorded in the manifest",
    ]
    secret.unlink()
    assert client.get(f"{url}/manifests/{run.run_id}/verify").json()["problems"] == result["problems"]


_ABSOLUTE = re.compile(r"(?<![\w.~:/\\<-])/(?:tmp|home|root|work|usr|var|private|Users)/")


def test_served_manifests_runs_and_reports_carry_no_server_paths(tmp_path: Path, serve, client) -> None:
    pytest.importorskip("matplotlib")
    from provenir.train.runner import train

    data = tmp_path / "private-data" / "train.jsonl"
    data.parent.mkdir()
    shutil.copy(Path(provenir.data.__file__).parent / "builtin" / "sft_sample.jsonl", data)
    store = RunStore(tmp_path / "artifacts")
    config = RunConfig(
        name="paths", backend="stub", output_dir=str(store.root.resolve()), data={"path": str(data)}
    )
    run = train(config)
    sealed = store.manifest_path(run.run_id).read_bytes()
    assert str(tmp_path).encode() in sealed  # the file records local paths: facts of the run

    url, _ = serve(store.root, token=TOKEN)
    served = client.get(f"{url}/manifests/{run.run_id}")
    assert served.headers["x-provenir-manifest-view"] == "redacted"
    assert served.headers["x-provenir-manifest-sha256"] == sha256_bytes(sealed)
    assert str(tmp_path) not in served.text and not _ABSOLUTE.search(served.text)
    view = served.json()
    assert view["config"]["output_dir"] == "<artifacts>"
    assert view["data_path"] == "<server path>/train.jsonl"
    assert view["manifest_hash"] == run.manifest_hash  # every non-path field as sealed
    assert view["outputs"] == run.outputs and view["metrics"] == run.metrics

    detail = client.get(f"{url}/runs/{run.run_id}")
    report = client.get(f"{url}/runs/{run.run_id}/report")
    for text in (detail.text, html.unescape(report.text)):
        assert str(tmp_path) not in text and not _ABSOLUTE.search(text), _ABSOLUTE.search(text)
    assert "<server path>/train.jsonl" in html.unescape(report.text)

    # An operator whose clients check hashes and signatures themselves serves the sealed bytes.
    sealed_url, _ = serve(store.root, token=TOKEN, serve_sealed_manifests=True)
    exact = client.get(f"{sealed_url}/manifests/{run.run_id}")
    assert exact.content == sealed and exact.headers["x-provenir-manifest-view"] == "sealed"


def test_the_server_policy_is_built_once_from_settings(tmp_path: Path) -> None:
    from provenir.api.settings import load_settings
    from provenir.core.errors import ConfigError

    key = tmp_path / "k.pem"
    generate_signing_key(key)
    trusted = public_key_of(key)
    assert load_settings(output_dir=tmp_path).signer_policy is None
    keys_file = tmp_path / "trusted.txt"
    keys_file.write_text(f"# ci\n{trusted} release\n")
    api_yaml = tmp_path / "api.yaml"
    api_yaml.write_text(f"trusted_keys_file: {keys_file}\n")
    from_file = load_settings(api_yaml, output_dir=tmp_path).signer_policy
    assert from_file is not None and from_file.fingerprints == [fingerprint(base64.b64decode(trusted))]
    assert load_settings(output_dir=tmp_path, trusted_public_keys=[trusted]).signer_policy == from_file
    any_signer = load_settings(output_dir=tmp_path, require_signature=True).signer_policy
    assert any_signer is not None and any_signer.require_signature and not any_signer.trusted_keys
    with pytest.raises(ConfigError, match="trusted_public_keys: 'nope' is not an Ed25519 public key"):
        load_settings(output_dir=tmp_path, trusted_public_keys=["nope"])
    with pytest.raises(ConfigError, match="trusted keys file not found"):
        load_settings(output_dir=tmp_path, trusted_keys_file=tmp_path / "missing.txt")
