"""--public-key / --trusted-keys on manifest verify, reproduce and report: one verdict, one wording."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from provenir.cli.main import main
from provenir.core.config import RunConfig
from provenir.core.manifest import RunManifest
from provenir.core.signers import fingerprint
from provenir.core.store import RunStore

pytest.importorskip("cryptography")

STRIPPED = "manifest is not signed, but the signer policy requires a signature by a trusted key"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def _keygen(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    code, out, _ = _cli(capsys, "manifest", "keygen", str(path))
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("public key "))
    return line.removeprefix("public key ").strip()


@pytest.fixture()
def signed_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """(store, run, trusted public key, attacker key path, attacker public key)."""
    from provenir.train.runner import train

    monkeypatch.delenv("PROVENIR_SIGNING_KEY", raising=False)
    ours = tmp_path / "ours.pem"
    theirs = tmp_path / "theirs.pem"
    trusted = _keygen(capsys, ours)
    foreign = _keygen(capsys, theirs)
    store = RunStore(tmp_path / "art")
    config = RunConfig(
        name="signed", backend="stub", output_dir=str(store.root), manifest={"signing_key_path": str(ours)}
    )
    return store, train(config), trusted, theirs, foreign


def _forge(store: RunStore, run: RunManifest, key: Path | None) -> None:
    forged = run.model_copy(deep=True)
    forged.metrics["train_loss"] = 0.001
    forged.seal(signing_key=key).save(store.manifest_path(run.run_id))


def test_keygen_prints_the_public_key_verifiers_need(signed_run) -> None:
    store, run, trusted, _, _ = signed_run
    assert run.signature is not None and run.signature.public_key == trusted


def test_manifest_verify_under_a_policy(
    signed_run, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store, run, trusted, theirs, foreign = signed_run
    root = str(store.root)
    code, out, _ = _cli(
        capsys, "manifest", "verify", run.run_id, "--output-dir", root, "--public-key", trusted
    )
    assert code == 0 and "signature valid" in out and "(trusted)" in out

    _forge(store, run, None)
    assert (
        _cli(capsys, "manifest", "verify", run.run_id, "--output-dir", root)[0] == 0
    )  # no policy: as before
    code, _, err = _cli(
        capsys, "manifest", "verify", run.run_id, "--output-dir", root, "--public-key", trusted
    )
    assert code == 2 and STRIPPED in err

    _forge(store, run, theirs)
    keys = tmp_path / "trusted_keys.txt"
    keys.write_text(f"# our release key\n{trusted} ci\n")
    code, _, err = _cli(
        capsys, "manifest", "verify", run.run_id, "--output-dir", root, "--trusted-keys", str(keys)
    )
    fp_foreign = fingerprint(base64.b64decode(foreign))
    fp_trusted = fingerprint(base64.b64decode(trusted))
    assert code == 2
    assert (
        f"signed by key {fp_foreign}, which the signer policy does not trust (trusted: {fp_trusted})" in err
    )
    # Trusting the other key too (repeatable --public-key plus the file): accepted.
    code, _, _ = _cli(
        capsys,
        "manifest",
        "verify",
        run.run_id,
        "--output-dir",
        root,
        "--trusted-keys",
        str(keys),
        "--public-key",
        foreign,
    )
    assert code == 0
    code, _, err = _cli(
        capsys, "manifest", "verify", run.run_id, "--output-dir", root, "--public-key", "nope"
    )
    assert code == 2 and "is not an Ed25519 public key" in err


def test_reproduce_refuses_before_training(signed_run, capsys: pytest.CaptureFixture[str]) -> None:
    store, run, trusted, theirs, _ = signed_run
    root = str(store.root)
    for key in (None, theirs):
        _forge(store, run, key)
        before = store.run_ids()
        code, _, err = _cli(capsys, "reproduce", run.run_id, "--output-dir", root, "--public-key", trusted)
        assert code == 2 and "refusing to reproduce" in err
        assert (STRIPPED in err) if key is None else ("which the signer policy does not trust" in err)
        assert store.run_ids() == before  # nothing trained, no replay manifest written


def test_reproduce_accepts_a_trusted_signer(signed_run, capsys: pytest.CaptureFixture[str]) -> None:
    store, run, trusted, _, _ = signed_run
    code, out, err = _cli(
        capsys, "reproduce", run.run_id, "--output-dir", str(store.root), "--public-key", trusted, "--json"
    )
    assert code == 0, err
    assert len(store.run_ids()) == 2


def test_report_under_a_policy_is_written_marked_failed_and_exits_2(
    signed_run, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    store, run, trusted, theirs, _ = signed_run
    root = str(store.root)
    out = tmp_path / "report.html"
    code, _, _ = _cli(
        capsys, "report", run.run_id, "--output-dir", root, "--out", str(out), "--public-key", trusted
    )
    html = out.read_text()
    assert code == 0 and "by a key the signer policy trusts" in html and ">verified<" in html

    _forge(store, run, theirs)
    code, stdout, err = _cli(
        capsys, "report", run.run_id, "--output-dir", root, "--out", str(out), "--public-key", trusted
    )
    html = out.read_text()
    assert code == 2 and "wrote" in stdout and "marks it FAILED" in err
    assert "which the signer policy does not trust" in err
    assert ">FAILED<" in html and "This run does not verify" in html
    assert "which the signer policy does not trust" in html
    assert "<td>valid" not in html and ">verified<" not in html


def test_serve_refuses_a_bad_trusted_key_before_binding(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("fastapi")
    code, _, err = _cli(capsys, "serve", "--output-dir", str(tmp_path), "--public-key", "nope")
    assert code == 2 and "trusted_public_keys: 'nope' is not an Ed25519 public key" in err
