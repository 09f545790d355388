"""Model cards: HF metadata with CIs, provenance, eval_result forms, safe output paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import BackendError, GovernanceError
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.governance.model_card import ModelCardGenerator, safe_card_path

EVAL = {"metrics": {"exact_match": {"mean": 0.5, "ci_lower": 0.4, "ci_upper": 0.6, "n": 50}}}


def _manifest(**kw: object) -> RunManifest:
    cfg = RunConfig(name="my-run", backend="stub")
    fields = dict(
        name="my-run",
        backend="stub",
        algorithm="sft",
        config_hash=cfg.config_hash(),
        dataset_hash="a" * 64,
        seed=42,
        config=cfg.model_dump(mode="json"),
        status="completed",
    )
    fields.update(kw)
    return RunManifest(**fields).seal()  # type: ignore[arg-type]


class _EvalObject:
    def to_dict(self) -> dict:
        return EVAL


def test_seed_snippet_produces_a_parsable_hub_card(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    manifest = _manifest(scans={"has_pii": True, "action": "report", "pii": {"counts": {"EMAIL": 2}}})
    card = ModelCardGenerator().generate(manifest, _EvalObject())
    out = card.save(tmp_path / "MODEL_CARD.md")
    loaded = ModelCard.load(out)
    data = loaded.data.to_dict()
    assert data["base_model"] == "provenir/tiny-llama" and data["license"] == "other"
    assert {"provenir", "sft", "lora"} <= set(data["tags"])
    metric = data["model-index"][0]["results"][0]["metrics"][0]
    assert metric["type"] == "exact_match" and metric["value"] == 0.5
    assert metric["args"] == {"ci_lower": 0.4, "ci_upper": 0.6, "n": 50}
    assert "| exact_match | 0.5000 | [0.4000, 0.6000] | 50 |" in loaded.text
    assert manifest.manifest_hash in loaded.text and "(verified)" in loaded.text
    assert "Signature: unsigned" in loaded.text and "PII scan: EMAIL=2" in loaded.text
    assert "PII was found in the training data and was not masked." in loaded.text


def test_eval_result_forms_and_fallback_to_manifest_eval() -> None:
    gen = ModelCardGenerator(license="apache-2.0")
    none_card = gen.generate(_manifest(), None)
    assert "model-index" not in none_card.data and "No evaluation results" in none_card.text
    assert none_card.data["license"] == "apache-2.0"
    from_manifest = gen.generate(_manifest(eval=EVAL), None)
    assert from_manifest.data["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.5
    with pytest.raises(GovernanceError, match="eval_result must be"):
        gen.generate(_manifest(), {"exact_match": 0.5})
    with pytest.raises(GovernanceError, match="numeric 'mean'"):
        gen.generate(_manifest(), {"metrics": {"em": {"mean": "high"}}})


def test_tampered_manifest_is_reported_in_the_card(tmp_path: Path) -> None:
    m = _manifest()
    path = m.save(RunStore(tmp_path).manifest_path(m.run_id))
    path.write_text(path.read_text().replace('"seed": 42', '"seed": 43'))
    card = ModelCardGenerator().generate(path, EVAL)
    assert "DOES NOT MATCH" in card.text and "failed verification" in card.text


def test_crafted_names_cannot_escape_the_chosen_folder(tmp_path: Path) -> None:
    card = ModelCardGenerator().generate(_manifest(name="../../etc/evil\n---\nx: y"), EVAL)
    assert "\n---\nx: y" not in card.text.split("---", 2)[2]  # name cannot break out of its line
    for bad in ["../x.md", "a/b.md", "/etc/passwd.md", "..md", "x.txt", "x\0.md", ""]:
        with pytest.raises(GovernanceError):
            safe_card_path(tmp_path, bad)
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "cards").mkdir()
    os.symlink(outside / "MODEL_CARD.md", tmp_path / "cards" / "MODEL_CARD.md")
    with pytest.raises(GovernanceError, match="escapes"):
        card.save_in(tmp_path / "cards")
    assert not (outside / "MODEL_CARD.md").exists()
    assert card.save_in(tmp_path / "ok", "card-1.md").read_text() == card.text


# -- cards of stored runs: refused when the run did not complete, reproducible, honest about data --


def _cli(*args: str) -> int:
    """Exit code of ``provenir ARGS`` run in-process (errors print one line on stderr)."""
    from provenir.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0)


class _CrashingBackend:
    """A backend that fails the way a real one can: after the run started."""

    loads_model = False

    def fit(self, config: RunConfig, dataset: object, run_dir: Path) -> object:
        raise BackendError("CUDA out of memory while allocating 2.00 GiB (on purpose)")


def _stub_run(out: Path, **overrides: object) -> Path:
    """Train a stub run into the store ``out``; its manifest file."""
    from provenir.train.runner import train

    m = train(RunConfig.from_dict({"backend": "stub", "output_dir": str(out), **overrides}))
    return RunStore(out).manifest_path(m.run_id)


def test_a_failed_run_gets_no_card_unless_allowed_and_then_it_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from provenir.train.runner import RunOptions, train

    out = tmp_path / "artifacts"
    with pytest.raises(BackendError):
        train(
            RunConfig.from_dict({"backend": "stub", "output_dir": str(out)}),
            RunOptions(backend=_CrashingBackend()),
        )
    (run_id,) = RunStore(out).run_ids()
    mfile = RunStore(out).manifest_path(run_id)
    manifest = RunManifest.load(mfile)
    assert manifest.status == "failed" and manifest.error
    card_file = RunStore(out).run_dir(run_id) / "MODEL_CARD.md"

    assert _cli("model-card", "--manifest", str(mfile)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: run {run_id} is failed, not completed")
    assert "CUDA out of memory" in err and "--allow-failed" in err
    assert not card_file.exists()
    with pytest.raises(GovernanceError, match="is failed, not completed"):
        ModelCardGenerator().generate(mfile)

    assert _cli("model-card", "--manifest", str(mfile), "--allow-failed") == 0
    body = card_file.read_text().split("---\n", 2)[2].strip().splitlines()
    assert body[0] == f"# {manifest.name}"
    assert body[2].startswith("> **This run failed** (status `failed`; error: ")
    assert manifest.error in body[2]
    assert (
        "- Reproduce: not possible: `provenir reproduce` replays completed runs only" in card_file.read_text()
    )


def test_the_cards_reproduce_command_replays_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import re
    import shlex

    out = tmp_path / "my artifacts"  # a space: the command must quote the path
    mfile = _stub_run(out)
    monkeypatch.chdir(tmp_path)
    card = ModelCardGenerator().generate(mfile)
    match = re.search(r"^- Reproduce: `(.+)`$", card.text, re.M)
    assert match, card.text
    argv = shlex.split(match.group(1))
    assert argv[:2] == ["provenir", "reproduce"] and Path(argv[2]).resolve() == mfile.resolve()
    assert _cli(*argv[1:]) == 0
    assert "bitwise identical" in capsys.readouterr().out

    # From outside the store the path is relative to the store root, and no absolute path leaks.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    card = ModelCardGenerator().generate(mfile)
    match = re.search(
        r"^- Reproduce \(from the artifacts folder `([^`]+)` that holds this run\): `(.+)`$", card.text, re.M
    )
    assert match, card.text
    assert match.group(1) == out.name and str(tmp_path) not in card.text
    monkeypatch.chdir(out)
    assert _cli(*shlex.split(match.group(2))[1:]) == 0
    assert "bitwise identical" in capsys.readouterr().out


def test_metrics_name_the_data_their_record_names_and_never_the_training_set(tmp_path: Path) -> None:
    from provenir.eval.harness import MultiMetricEvaluator
    from provenir.eval.run_evaluation import attach_to_manifest

    rows = [{"prompt": f"q{i}", "response": f"a{i}"} for i in range(8)]
    train_file, eval_file = tmp_path / "train.jsonl", tmp_path / "heldout.jsonl"
    train_file.write_text(
        "".join(f'{{"prompt": "{r["prompt"]}", "response": "{r["response"]}"}}\n' for r in rows)
    )
    eval_file.write_text('{"prompt": "x", "response": "y"}\n{"prompt": "z", "response": "w"}\n')
    mfile = _stub_run(tmp_path / "artifacts", data={"path": str(train_file), "eval_path": str(eval_file)})
    manifest = RunManifest.load(mfile)
    assert manifest.inputs is not None and manifest.inputs.eval_rows is not None
    training = {str(train_file), manifest.dataset_hash, manifest.inputs.training_rows.sha256}

    def index_dataset(extra: dict[str, object] | None) -> dict[str, object]:
        result = MultiMetricEvaluator(["exact_match"]).evaluate_texts(["y", "no"], [["y"], ["w"]])
        if extra is not None:
            result.extra.update(extra)
        attach_to_manifest(mfile, result)
        card = ModelCardGenerator().generate(mfile)
        (entry,) = card.data["model-index"][0]["results"]
        assert not training & {entry["dataset"]["name"], (entry["dataset"].get("args") or {}).get("sha256")}
        return entry["dataset"]

    # A record that does not say what it scored (hand-made, or a pipeline's) is reported as such.
    dataset = index_dataset(None)
    assert dataset == {"name": "evaluation data not recorded", "type": "provenir-eval"}
    # An evaluation of the run's own stored rows recorded before their hash was: the manifest's pin.
    dataset = index_dataset({"data": "run eval split"})
    assert dataset["name"] == f"eval rows of run {manifest.run_id[:8]} (from {eval_file})"
    assert dataset["args"] == {"sha256": manifest.inputs.eval_rows.sha256, "rows": 2}
    # A user's file, with the hash `provenir eval --data` records.
    dataset = index_dataset({"data": "other.jsonl", "data_sha256": "c" * 64, "data_rows": 2})
    assert dataset == {
        "name": "other.jsonl",
        "type": "provenir-eval",
        "args": {"sha256": "c" * 64, "rows": 2},
    }


def test_write_model_card_finds_the_run_its_eval_and_records_the_card(tmp_path: Path) -> None:
    import json

    from provenir.governance.audit import AuditLogger
    from provenir.governance.model_card import write_model_card

    artifacts = tmp_path / "artifacts"
    m = _manifest()
    m.save(RunStore(artifacts).manifest_path(m.run_id))
    run_folder = RunStore(artifacts).run_dir(m.run_id)
    run_folder.mkdir(parents=True)
    (run_folder / "eval.json").write_text(json.dumps(EVAL))
    written = write_model_card(m.run_id[:8], output_dir=artifacts)
    assert written == run_folder / "MODEL_CARD.md"
    assert "| exact_match | 0.5000 | [0.4000, 0.6000] | 50 |" in written.read_text()
    (record,) = AuditLogger(artifacts / "audit").query().records
    assert record.event == "model_card_generated" and record.run_id == m.run_id
    assert record.fields["path"] == str(written) and record.fields["manifest_hash"] == m.manifest_hash
    # A folder gets MODEL_CARD.md; audit=False records nothing more.
    elsewhere = tmp_path / "cards"
    elsewhere.mkdir()
    assert (
        write_model_card("latest", output_dir=artifacts, out=elsewhere, audit=False)
        == elsewhere / "MODEL_CARD.md"
    )
    assert len(AuditLogger(artifacts / "audit").query().records) == 1
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(GovernanceError, match="cannot read evaluation results"):
        write_model_card(m.run_id, output_dir=artifacts, eval_file=broken)
