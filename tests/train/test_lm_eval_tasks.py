"""lm-evaluation-harness tasks on a run's base model and base + adapter, offline, on the tiny model.

One 3-step LoRA run and one evaluation are shared by the module; each test that changes a run
works on its own copy of the store.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from provenir.core.errors import EvaluationError
from provenir.core.hashing import sha256_file, sha256_json
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore
from provenir.eval.harness import EvalResult
from provenir.eval.regression import RegressionGate, mcnemar_test
from provenir.testing.cli import run_cli
from provenir.train.lm_eval_tasks import TaskComparison, evaluate_tasks, retention_comparisons

MC, GEN = "arith_mc", "arith_gen"
ITEMS = 24


def _write_tasks(folder: Path) -> dict[str, Path]:
    """Two tasks over local JSONL: sums as multiple choice, and the same sums generated."""
    rng = random.Random(0)
    mc, gen = [], []
    for _ in range(ITEMS):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        choices = [str(a + b + d) for d in (0, 1, -1, 2)]
        rng.shuffle(choices)
        mc.append({"question": f"{a}+{b}=", "choices": choices, "label": choices.index(str(a + b))})
        gen.append({"question": f"{a}+{b}=", "answer": str(a + b)})
    folder.mkdir(parents=True)
    for name, rows in (("mc", mc), ("gen", gen)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    common = "dataset_path: json\ntest_split: test\ndoc_to_text: '{{question}}'\n"
    (folder / "mc.yaml").write_text(
        f"task: {MC}\n{common}dataset_kwargs:\n  data_files:\n    test: {folder / 'mc.jsonl'}\n"
        "output_type: multiple_choice\ndoc_to_choice: '{{choices}}'\ndoc_to_target: label\n"
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n",
        encoding="utf-8",
    )
    (folder / "gen.yaml").write_text(
        f"task: {GEN}\n{common}dataset_kwargs:\n  data_files:\n    test: {folder / 'gen.jsonl'}\n"
        "output_type: generate_until\ndoc_to_target: answer\n"
        "generation_kwargs:\n  until: ['\\n']\n  max_gen_toks: 4\n  do_sample: false\n"
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n",
        encoding="utf-8",
    )
    return {MC: folder / "mc.yaml", GEN: folder / "gen.yaml"}


@pytest.fixture(scope="module")
def task_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _write_tasks(tmp_path_factory.mktemp("lm_eval_tasks") / "tasks")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    """The store of a 3-step LoRA run on the tiny model."""
    from provenir.core.config import RunConfig
    from provenir.train.runner import train

    out = tmp_path_factory.mktemp("lm_eval_run") / "artifacts"
    config = RunConfig.from_dict(
        {
            "name": "lm-eval",
            "output_dir": str(out),
            "max_steps": 3,
            "batch_size": 4,
            "learning_rate": 5e-3,
            "peft": {"rank": 4, "alpha": 8},
            "data": {"max_samples": 16},
        }
    )
    train(config)
    return out


def _copy_store(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return RunStore(dst).resolve("latest")


@pytest.fixture(scope="module")
def evaluated(
    trained: Path, task_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, TaskComparison]]:
    """Both tasks evaluated, by their folder, on a copy of the run (the manifest path and results)."""
    manifest = _copy_store(trained, tmp_path_factory.mktemp("lm_eval_evaluated") / "artifacts")
    return manifest, evaluate_tasks(manifest, [str(task_files[MC].parent)], batch_size=8)


def _lm_eval_alone(model_args: dict[str, Any], tasks_dir: Path, limit: int | None = None) -> dict[str, Any]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    return lm_eval.simple_evaluate(
        model="hf",
        model_args=model_args,
        tasks=[MC, GEN],
        task_manager=TaskManager(include_path=str(tasks_dir), include_defaults=False),
        batch_size=8,
        device="cpu",
        limit=limit,
        log_samples=True,
    )


@pytest.mark.slow
def test_scores_equal_lm_eval_simple_evaluate_for_base_and_adapter(
    evaluated: tuple[Path, dict[str, TaskComparison]], task_files: dict[str, Path], tiny_model_path: Path
) -> None:
    manifest, comparisons = evaluated
    adapter = RunStore.of_manifest_file(manifest).run_dir(RunManifest.load(manifest).run_id) / "adapter"
    base_args = {"pretrained": str(tiny_model_path), "dtype": "float32"}
    references = {
        "base": _lm_eval_alone(base_args, task_files[MC].parent),
        "tuned": _lm_eval_alone({**base_args, "peft": str(adapter)}, task_files[MC].parent),
    }
    assert sorted(comparisons) == [GEN, MC]
    for task, metric in ((MC, "acc"), (GEN, "exact_match")):
        for which, reference in references.items():
            result: EvalResult = getattr(comparisons[task], which)
            samples = sorted(reference["samples"][task], key=lambda s: s["doc_id"])
            assert result.metrics[metric].mean == reference["results"][task][f"{metric},none"]
            assert result.metrics[metric].scores == [float(s[metric]) for s in samples]
            assert result.item_keys == [str(s["doc_id"]) for s in samples] and result.n == ITEMS
            assert result.metrics[metric].binary and result.metrics[metric].interval == "wilson"
    # The adapter really changed the model: lm-eval's own log-likelihoods differ.
    base_ll = [s["resps"] for s in references["base"]["samples"][MC]]
    assert base_ll != [s["resps"] for s in references["tuned"]["samples"][MC]]
    gens = [c.tuned.predictions for c in (comparisons[GEN],)][0]
    assert gens == [
        s["filtered_resps"][0] for s in sorted(references["tuned"]["samples"][GEN], key=lambda s: s["doc_id"])
    ]


@pytest.mark.slow
def test_results_are_stored_sealed_and_compared_paired(
    evaluated: tuple[Path, dict[str, TaskComparison]], task_files: dict[str, Path]
) -> None:
    import lm_eval

    manifest_path, comparisons = evaluated
    manifest = RunManifest.load(manifest_path)
    store = RunStore.of_manifest_file(manifest_path)
    rdir = store.run_dir(manifest.run_id)
    assert store.verify(manifest.run_id).ok  # re-sealed, every written file recorded

    from provenir.governance.audit import AuditLogger

    (event,) = AuditLogger(store.audit_dir).query(event="lm_eval_completed").records
    assert event.run_id == manifest.run_id
    assert event.fields["tasks"][MC]["config_sha256"] == comparisons[MC].task_hash

    record = manifest.extra["lm_eval"]
    assert record["version"] == lm_eval.__version__ == "0.4.13"
    for task, comp in comparisons.items():
        folder = rdir / "lm_eval" / task
        entry = record["tasks"][task]
        # The config hash is the canonical JSON of lm-eval's resolved config; the YAML's is its bytes.
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        assert entry["config_sha256"] == comp.task_hash == sha256_json(config)
        assert entry["yaml_sha256"] == sha256_file(task_files[task]) == comp.yaml_sha256
        assert entry["n"] == ITEMS
        for which in ("base", "tuned"):
            stored = EvalResult.load(folder / f"{which}.json")
            original = getattr(comp, which)
            assert stored.to_dict() == original.to_dict()
            assert manifest.outputs[f"lm_eval/{task}/{which}.json"] == sha256_file(folder / f"{which}.json")
            lines = (folder / f"{which}_samples.jsonl").read_text(encoding="utf-8").splitlines()
            assert sorted(json.loads(line)["doc_id"] for line in lines) == list(range(ITEMS))
            assert entry[which] == {m: r.mean for m, r in original.metrics.items()}

    # The gate-facing comparison reads the sealed files back and tests the pairs (McNemar on 0/1).
    gate = RegressionGate(0.05)
    decisions = retention_comparisons(manifest_path, gate=gate)
    assert sorted(decisions) == [GEN, MC]
    acc = decisions[MC].comparisons["acc"]
    base_scores = comparisons[MC].base.metrics["acc"].scores
    tuned_scores = comparisons[MC].tuned.metrics["acc"].scores
    assert acc.test == "mcnemar" and acc.p_value == mcnemar_test(tuned_scores, base_scores)
    assert (
        decisions[MC].paired
        and decisions[MC].to_dict() == gate.compare(comparisons[MC].tuned, comparisons[MC].base).to_dict()
    )
    assert retention_comparisons(comparisons, [MC], gate=gate)[MC].to_dict() == decisions[MC].to_dict()
    with pytest.raises(EvaluationError, match="no lm-eval results for task 'other'"):
        retention_comparisons(manifest_path, ["other"])

    # A changed result file is not read back: the manifest no longer verifies.
    tampered = rdir / "lm_eval" / MC / "tuned.json"
    original_text = tampered.read_text(encoding="utf-8")
    tampered.write_text(original_text.replace('"n": 24', '"n": 23', 1), encoding="utf-8")
    try:
        with pytest.raises(Exception, match="not reading its lm-eval results"):
            retention_comparisons(manifest_path)
    finally:
        tampered.write_text(original_text, encoding="utf-8")


def _zero_lora_b(manifest_path: Path) -> None:
    """Make the run's adapter a no-op (every LoRA B matrix zero) and re-seal its manifest for it."""
    from safetensors.torch import load_file, save_file

    manifest = RunManifest.load(manifest_path)
    rdir = RunStore.of_manifest_file(manifest_path).run_dir(manifest.run_id)
    weights = rdir / "adapter" / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    zeroed = {k: (v.zero_() if "lora_B" in k else v) for k, v in tensors.items()}
    assert any("lora_B" in k for k in zeroed)
    save_file(zeroed, str(weights), metadata={"format": "pt"})
    manifest.outputs["adapter/adapter_model.safetensors"] = manifest.adapter_hash = sha256_file(weights)
    manifest.seal()
    manifest.save(manifest_path)


@pytest.mark.slow
def test_an_adapter_that_changes_nothing_is_refused(
    trained: Path, task_files: dict[str, Path], tmp_path: Path
) -> None:
    manifest = _copy_store(trained, tmp_path / "artifacts")
    _zero_lora_b(manifest)
    assert RunStore.of_manifest_file(manifest).verify(manifest).ok
    with pytest.raises(EvaluationError, match="identical log-likelihoods on all 8 items of arith_mc") as info:
        evaluate_tasks(manifest, [str(task_files[MC])], limit=8)
    assert "\n" not in str(info.value) and "not applied" in str(info.value)
    with pytest.raises(EvaluationError, match="identical generated texts on all 8 items of arith_gen"):
        evaluate_tasks(manifest, [str(task_files[GEN])], limit=8)
    run_dir = RunStore.of_manifest_file(manifest).run_dir(RunManifest.load(manifest).run_id)
    assert not (run_dir / "lm_eval").exists()  # nothing recorded


@pytest.mark.slow
def test_cli_prints_base_tuned_and_paired_delta_per_task(
    trained: Path, task_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from provenir.eval.harness import MultiMetricEvaluator
    from provenir.eval.run_evaluation import attach_to_manifest

    manifest = _copy_store(trained, tmp_path / "artifacts")
    run_dir = manifest.parent.parent / "runs" / manifest.stem
    # The run already has an evaluation of its own: it keeps it and gains the lm-eval record.
    own = MultiMetricEvaluator(["exact_match"]).evaluate_texts(["4", "5"], [["4"], ["6"]])
    attach_to_manifest(manifest, own, own.save(run_dir / "eval.json"))

    assert run_cli(["eval", str(manifest), "--tasks", str(task_files[MC]), "--limit", "10"]) == 0
    out = capsys.readouterr().out
    sealed = RunManifest.load(manifest)
    updated = EvalResult.load(run_dir / "eval.json")
    assert updated.metrics["exact_match"].scores == [1.0, 0.0]
    assert updated.extra["lm_eval"] == sealed.extra["lm_eval"] and sealed.eval == updated.summary()
    assert sealed.extra["lm_eval"]["tasks"][MC]["n"] == 10
    assert RunStore.of_manifest_file(manifest).verify(manifest).ok
    assert f"{MC} (multiple_choice, 10 items, config sha256 " in out
    assert "delta" in out and "mcnemar" in out
    row = next(line for line in out.splitlines() if line.startswith("acc "))
    stored = EvalResult.load(run_dir / "lm_eval" / MC / "tuned.json")
    assert f"{stored.metrics['acc'].mean:.3f}" in row

    assert run_cli(["eval", str(manifest), "--tasks", str(tmp_path / "missing" / "task.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    broken = tmp_path / "broken" / "task.yaml"
    broken.parent.mkdir()
    broken.write_text(
        task_files[MC].read_text(encoding="utf-8").replace(MC, "broken").replace("mc.jsonl", "gone.jsonl"),
        encoding="utf-8",
    )
    assert run_cli(["eval", str(manifest), "--tasks", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lm-eval could not run broken on the base model" in err
    assert run_cli(["eval", str(manifest), "--tasks", str(task_files[MC]), "--data", "x.jsonl"]) == 2
    assert "--tasks evaluates a RUN" in capsys.readouterr().err


def _sample(doc_id: int, filt: str, **scores: Any) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "filter": filt,
        "doc_hash": f"h{doc_id}",
        "resps": [["x"]],
        "filtered_resps": ["x"],
        "metrics": list(scores),
        **scores,
    }


def test_filters_are_named_and_metrics_lm_eval_does_not_average_are_left_out() -> None:
    from provenir.train.lm_eval_tasks import results_from_lm_eval

    samples = [
        _sample(i, filt, exact_match=float(i % 2 == 0 or filt == "flexible"), bleu=("ref", "pred"), f1=0.5)
        for filt in ("strict", "flexible")
        for i in (2, 0, 1)
    ]
    output = {
        "samples": {"t": samples},
        "results": {
            "t": {
                "exact_match,strict": 2 / 3,
                "exact_match,flexible": 1.0,
                "bleu,strict": 12.0,
                "bleu,flexible": 12.0,
                "f1,strict": 0.4,  # an aggregate over the set, not the mean of the items
                "f1,flexible": 0.5,
            }
        },
        "configs": {"t": {"output_type": "generate_until"}},
    }
    result, notes = results_from_lm_eval(output, "t")
    assert sorted(result.metrics) == ["exact_match,flexible", "exact_match,strict", "f1,flexible"]
    assert result.item_keys == ["0", "1", "2"]  # lm-eval doc ids, in order
    assert result.metrics["exact_match,strict"].scores == [1.0, 0.0, 1.0]
    assert result.metrics["exact_match,strict"].interval == "wilson"
    assert result.metrics["f1,flexible"].interval == "bootstrap" and not result.metrics["f1,flexible"].binary
    assert any(n.startswith("bleu,strict: not a number per item") for n in notes)
    assert any(n.startswith("f1,strict: lm-eval's aggregate 0.4 is not the mean") for n in notes)


def test_a_registered_gate_with_retention_tasks_compares_base_and_tuned_per_task(
    evaluated: tuple[Path, dict[str, TaskComparison]], tmp_path: Path
) -> None:
    from provenir.core.config import GateConfig
    from provenir.eval.harness import EVAL_FILENAME, metric_result_from_scores
    from provenir.eval.run_evaluation import attach_to_manifest
    from provenir.train.preregistered_gate import decide_registered_gate, register_gate_spec

    source, comparisons = evaluated
    path = _copy_store(RunStore.of_manifest_file(source).root, tmp_path / "artifacts")
    store = RunStore.of_manifest_file(path)
    rdir = store.run_dir(RunManifest.load(path).run_id)
    own = EvalResult(
        metrics={"token_f1": metric_result_from_scores("token_f1", [0.5] * 10, binary=False)}, n=10
    )
    attach_to_manifest(path, own, own.save(rdir / EVAL_FILENAME))
    baseline = own.save(tmp_path / "baseline.json")
    spec = GateConfig.from_dict(
        {"baseline": str(baseline), "tolerance": 0.0, "alpha": 0.05, "retention_tasks": [MC, GEN]}
    )
    register_gate_spec(path, spec)

    outcome = decide_registered_gate(path)
    retention = outcome.decision.retention
    # Every metric of each task, compared paired with the spec's own settings, none skipped.
    same = RegressionGate(0.0, alpha=0.05)
    expected = {
        f"{task}/{metric}": comparison
        for task in (MC, GEN)
        for metric, comparison in same.compare(
            comparisons[task].tuned, comparisons[task].base
        ).comparisons.items()
    }
    assert sorted(retention) == sorted(expected) and f"{MC}/acc" in retention
    for key, comparison in retention.items():
        assert (comparison.delta, comparison.p_value, comparison.tripped) == (
            expected[key].delta,
            expected[key].p_value,
            expected[key].tripped,
        )
    assert outcome.decision.passed == (not any(c.tripped for c in retention.values()))

    # A retention task that was never evaluated is an error, not a skipped check.
    register_gate_spec(
        path, GateConfig.from_dict({**spec.model_dump(mode="json"), "retention_tasks": ["other"]})
    )
    with pytest.raises(EvaluationError, match="no lm-eval results for task 'other'"):
        decide_registered_gate(path)
