"""DataFlywheel end to end: hashed, traceable output; resume skips completed stages; audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flywheel_assets import ROWS, expected_failures, flywheel_dict

from provenir.core.config import RunConfig
from provenir.core.errors import DataError, EvaluationError
from provenir.core.hashing import sha256_file
from provenir.data.loading import load_train_data
from provenir.flywheel import STAGES, DataFlywheel, FlywheelConfig, RuleParaphraser
from provenir.governance.audit import AuditLogger, AuditReader

LEAKY = ["Email jane.doe@example.com the answer.", "Using key AKIAIOSFODNN7EXAMPLE, answer this."]


class CountingGenerator:
    """Real rule paraphrases plus an exact copy, a PII row and a secret row; counts its calls."""

    name = "counting"

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail
        self.rules = RuleParaphraser(seed=0)

    def generate_variants(self, prompt: str, reference: str | None, n: int) -> list[str]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("generator crashed (simulated interruption)")
        return [prompt.upper(), *self.rules.generate_variants(prompt, reference, n), *LEAKY]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def make(tmp_path: Path, scored: dict[str, Any], gen: Any, **sections: Any) -> DataFlywheel:
    return DataFlywheel(
        FlywheelConfig.from_dict(flywheel_dict(tmp_path, scored, **sections)), generators=[gen]
    )


def test_augmented_set_is_hashed_and_every_variant_traces_to_its_failure(
    tmp_path: Path, scored: dict[str, Any]
) -> None:
    result = make(tmp_path, scored, CountingGenerator()).run(progress=False)
    rows = read_jsonl(result.augmented_path)
    assert result.augmented_sha256 == sha256_file(result.augmented_path)
    summary = json.loads(result.summary_path.read_text())
    assert summary["output"]["sha256"] == result.augmented_sha256
    assert summary["input_sha256"]["eval_result"] == sha256_file(scored["eval_json"])
    assert summary["input_sha256"]["eval_data"] == sha256_file(scored["data"])
    assert summary["stages_run"] == list(STAGES)

    # The original training rows come first, unchanged; then the variants.
    assert rows[: len(ROWS)] == ROWS
    variants = rows[len(ROWS) :]
    failed = expected_failures(scored["result"])
    assert variants and {v["provenance"]["failure_index"] for v in variants} == set(failed)
    scores = scored["result"].metrics["token_f1"].scores
    for v in variants:
        prov = v["provenance"]
        source = ROWS[prov["failure_index"]]
        assert prov["original_prompt"] == source["prompt"]
        assert prov["failure_key"] == scored["result"].item_keys[prov["failure_index"]]
        assert prov["failure_score"] == scores[prov["failure_index"]] < 0.5
        assert v["response"] == source["response"]  # the answer is kept, the wording is new
        assert v["prompt"].casefold() != source["prompt"].casefold()
        assert prov["generator"] == "counting" and {"judge", "max_similarity"} <= set(prov["filter_scores"])
        assert "@" not in v["prompt"] and "AKIA" not in v["prompt"]

    # The training loader takes the augmented set as is (provenance is an extra column) and
    # records the same hash the flywheel reported.
    train = load_train_data(RunConfig.from_dict({"data": {"path": str(result.augmented_path)}}))
    assert len(train.train) == len(rows) and train.dataset_hash == result.augmented_sha256

    rejected = read_jsonl(result.folder / "rejected.jsonl")
    reasons = {r["reason"] for r in rejected}
    assert {"duplicate", "pii", "secret"} <= reasons
    counts = result.counts["filter"]
    assert (
        counts["accepted"] == len(variants)
        and counts["accepted"] + counts["rejected"] == counts["candidates"]
    )


def test_resume_skips_completed_stages(tmp_path: Path, scored: dict[str, Any]) -> None:
    gen = CountingGenerator()
    first = make(tmp_path, scored, gen).run(progress=False)
    calls = gen.calls
    assert calls == len(expected_failures(scored["result"]))

    again = make(tmp_path, scored, gen).run(progress=False)
    assert gen.calls == calls  # nothing regenerated
    assert again.stages_skipped == list(STAGES) and again.stages_run == []
    assert again.augmented_sha256 == first.augmented_sha256

    # A changed filter setting re-runs the filter and what follows, not generation.
    changed = make(tmp_path, scored, gen, filter={"max_accepted_per_failure": 1}).run(progress=False)
    assert gen.calls == calls
    assert changed.stages_skipped == ["mine", "generate"] and changed.stages_run == ["filter", "augment"]
    assert changed.counts["augment"]["variants"] == len(expected_failures(scored["result"]))

    # A damaged stage output is not trusted: that stage runs again.
    (tmp_path / "artifacts/flywheel/fw/candidates.jsonl").write_text("{}\n")
    make(tmp_path, scored, gen).run(progress=False)
    assert gen.calls == 2 * calls


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path: Path, scored: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match="simulated interruption"):
        make(tmp_path, scored, CountingGenerator(fail=True)).run(progress=False)
    state = json.loads((tmp_path / "artifacts/flywheel/fw/flywheel_state.json").read_text())
    assert list(state["stages"]) == ["mine"]

    resumed = make(tmp_path, scored, CountingGenerator()).run(progress=False)
    assert resumed.stages_skipped == ["mine"]
    fresh = make(tmp_path / "fresh", scored, CountingGenerator()).run(progress=False)
    assert resumed.augmented_sha256 == fresh.augmented_sha256


def test_every_stage_is_audited(tmp_path: Path, scored: dict[str, Any]) -> None:
    flywheel = make(tmp_path, scored, CountingGenerator())
    flywheel.run(progress=False)
    flywheel.run(progress=False)
    audit_dir = tmp_path / "artifacts/audit"  # the store's one audit log, beside the runs
    assert AuditLogger(audit_dir).verify().records == 12  # start + 4 stages + end, twice
    records = AuditReader(audit_dir).query(limit=100, order="asc").records
    stages = [
        (r.fields["stage"], r.fields["status"]) for r in records if r.event == "flywheel_stage_completed"
    ]
    assert stages == [(s, "completed") for s in STAGES] + [(s, "skipped") for s in STAGES]
    assert [r.event for r in records].count("flywheel_completed") == 2
    assert {r.run_id for r in records} == {"flywheel:fw"}


def test_predictions_input_and_default_rule_generator(tmp_path: Path, scored: dict[str, Any]) -> None:
    mining = {
        "eval_data": str(scored["data"]),
        "predictions": str(scored["predictions"]),
        "metric": "token_f1",
    }
    result = DataFlywheel(FlywheelConfig.from_dict(flywheel_dict(tmp_path, scored, mining=mining))).run(
        progress=False
    )
    failures = read_jsonl(result.folder / "failures.jsonl")
    assert [f["index"] for f in failures] == expected_failures(scored["result"])
    variants = read_jsonl(result.augmented_path)[len(ROWS) :]
    assert variants and all(v["provenance"]["generator"] == "rules" for v in variants)


def test_bad_inputs_raise_one_clear_error(tmp_path: Path, scored: dict[str, Any]) -> None:
    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:3]))
    bad = flywheel_dict(tmp_path, scored)
    bad["mining"]["eval_data"] = str(short)
    with pytest.raises(EvaluationError, match="scored 6 items but the dataset has 3 rows"):
        DataFlywheel(FlywheelConfig.from_dict(bad)).run(progress=False)
    missing = flywheel_dict(tmp_path, scored)
    missing["mining"]["eval_data"] = str(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="not found"):
        DataFlywheel(FlywheelConfig.from_dict(missing)).run(progress=False)
