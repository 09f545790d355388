"""Judge calibration: kappas equal scikit-learn's, logistic fits equal statsmodels', a length-biased
judge is caught, reports are stored and audited, and RLAIF and the flywheel enforce judge.min_kappa."""

from __future__ import annotations

import json
import math
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.metrics import cohen_kappa_score

from provenir.core.errors import ConfigError, DataError, ManifestTamperedError
from provenir.core.hashing import sha256_file, sha256_json
from provenir.core.store import RunStore
from provenir.eval.judge import StubJudge
from provenir.eval.judge.calibration import (
    JudgeSpec,
    LabelSet,
    calibrate,
    find_calibration,
    load_labels,
    require_min_kappa,
    store_calibration,
)
from provenir.eval.judge.calibration_stats import (
    ORDERED_LABELS,
    cohen_kappa,
    length_bias,
    length_controlled_win_rate,
)
from provenir.flywheel import DataFlywheel, FlywheelConfig
from provenir.governance.audit import AuditReader
from provenir.rlaif import RLAIFConfig, RLAIFPipeline
from provenir.rlaif.judge_calibration import calibrate_judge, judge_section
from provenir.testing.cli import run_cli


@pytest.fixture(autouse=True)
def _judge_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stub judge is built behind a disk cache; keep it out of the user's cache folder.
    monkeypatch.setenv("PROVENIR_CACHE_DIR", str(tmp_path / "cache"))


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def _sklearn_kappa(y1: list[str], y2: list[str], weights: str | None) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns where kappa is undefined; it returns NaN
        return float(cohen_kappa_score(y1, y2, labels=["b", "tie", "a"], weights=weights))


def _random_labels(seed: int, n: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    human = [rng.choice(ORDERED_LABELS) for _ in range(n)]
    judge = [h if rng.random() < 0.6 else rng.choice(ORDERED_LABELS) for h in human]
    return human, judge


LABEL_SETS: dict[str, tuple[list[str], list[str]]] = {
    "random-30": _random_labels(0, 30),
    "random-200": _random_labels(1, 200),
    "perfect": (["a", "b", "tie", "a", "b"], ["a", "b", "tie", "a", "b"]),
    "complete disagreement": (["a", "b", "a", "b"], ["b", "a", "b", "a"]),
    "opposite constant raters": (["a"] * 5, ["b"] * 5),
    "all one class": (["a"] * 6, ["a"] * 6),
    "no ties": (["a", "b", "b", "a", "a"], ["a", "a", "b", "b", "a"]),
    "only ties vs sides": (["tie", "tie", "a", "b"], ["a", "b", "tie", "tie"]),
}


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("name", sorted(LABEL_SETS))
def test_kappa_equals_sklearn(name: str, weights: Any) -> None:
    human, judge = LABEL_SETS[name]
    ours = cohen_kappa(human, judge, weights=weights)
    reference = _sklearn_kappa(human, judge, weights)
    if math.isnan(reference):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(reference, abs=1e-12)


def test_kappa_degenerate_values() -> None:
    assert cohen_kappa(*LABEL_SETS["perfect"]) == pytest.approx(1.0)
    assert cohen_kappa(*LABEL_SETS["complete disagreement"]) == pytest.approx(-1.0)
    assert math.isnan(cohen_kappa(*LABEL_SETS["all one class"]))
    # A tie against a side is half as bad as the opposite side on the ordinal scale.
    assert cohen_kappa(["a", "b"], ["tie", "tie"], weights="linear") > cohen_kappa(
        ["a", "b"], ["b", "a"], weights="linear"
    )
    with pytest.raises(ValueError, match="not in"):
        cohen_kappa(["a", "x"], ["a", "b"])


def _biased_verdicts(seed: int, n: int = 300) -> tuple[list[str], list[float]]:
    """Verdicts whose log-odds of 'a' rise with the length difference (plus ties), not separable."""
    rng = np.random.default_rng(seed)
    diffs = rng.normal(20, 60, n).round()
    p_a = 1 / (1 + np.exp(-(0.03 * diffs)))
    verdicts = ["tie" if rng.random() < 0.1 else ("a" if rng.random() < p else "b") for p in p_a]
    return verdicts, diffs.tolist()


def test_length_slope_equals_statsmodels() -> None:
    verdicts, diffs = _biased_verdicts(0)
    ours = length_bias(verdicts, diffs)
    y = np.array([{"a": 1.0, "tie": 0.5, "b": 0.0}[v] for v in verdicts])
    x = sm.add_constant(np.array(diffs))
    logit = sm.Logit(y, x).fit(disp=0)
    # An independent solver (IRLS on the binomial GLM) gives the same estimates.
    glm = sm.GLM(y, x, family=sm.families.Binomial()).fit()
    assert ours.slope == pytest.approx(logit.params[1], rel=1e-9)
    assert ours.se == pytest.approx(logit.bse[1], rel=1e-9)
    assert ours.p_value == pytest.approx(logit.pvalues[1], rel=1e-6)
    assert ours.intercept == pytest.approx(logit.params[0], rel=1e-9)
    assert ours.slope == pytest.approx(glm.params[1], rel=1e-5)
    assert ours.slope > 0 and ours.p_value < 1e-6


def test_length_controlled_win_rate_equals_glm_prediction_at_zero_length() -> None:
    verdicts, diffs = _biased_verdicts(1)
    y = np.array([{"a": 1.0, "tie": 0.5, "b": 0.0}[v] for v in verdicts])
    d = np.array(diffs)
    glm = sm.GLM(y, sm.add_constant(np.tanh(d / d.std())), family=sm.families.Binomial()).fit()
    expected = 1 / (1 + math.exp(-glm.params[0]))
    lc = length_controlled_win_rate(verdicts, diffs)
    assert lc == pytest.approx(expected, rel=1e-6)
    raw = float(y.mean())
    assert abs(lc - 0.5) < abs(raw - 0.5)


def test_fits_that_cannot_be_identified_say_why() -> None:
    separated = length_bias(["a", "b", "a", "b"], [5, -3, 8, -1])
    assert separated.slope is None and "separation" in (separated.note or "")
    constant = length_bias(["a", "a", "a"], [1, 2, 3])
    assert constant.slope is None and "same on every item" in (constant.note or "")
    assert length_controlled_win_rate(["a", "b", "a", "b"], [5, -3, 8, -1]) is None


def _length_biased_labels(tmp_path: Path, n: int = 160) -> Path:
    """Pairs whose `a` is usually longer; humans chose at random (length tells them nothing)."""
    rng = random.Random(7)
    words = ["x" * k for k in range(1, 13)]

    def text(n_words: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n_words))

    rows = [
        {
            "id": f"p{i}",
            "prompt": f"question {i}",
            "a": text(rng.randint(3, 14)),
            "b": text(rng.randint(2, 10)),
            "preferred": rng.choice(["a", "b", "tie"]),
        }
        for i in range(n)
    ]
    return _write_jsonl(tmp_path / "human.jsonl", rows)


def test_stub_judge_is_caught_favouring_length(tmp_path: Path) -> None:
    # StubJudge is length-biased by design (more words wins): the report must show it.
    labels = load_labels(_length_biased_labels(tmp_path))
    report = calibrate(StubJudge(), labels, JudgeSpec("stub"))
    assert report.n == 160
    assert report.length_bias.slope is not None and report.length_bias.slope > 0
    assert report.length_bias.p_value is not None and report.length_bias.p_value < 1e-6
    assert report.win_rate > 0.65
    assert report.length_controlled_win_rate is not None
    assert abs(report.length_controlled_win_rate - 0.5) < abs(report.win_rate - 0.5)
    # Its verdicts ignore order, and humans who chose at random do not agree with it beyond chance.
    assert report.order_consistency == 1.0
    assert report.kappa is not None and abs(report.kappa) < 0.2
    from statsmodels.stats.proportion import proportion_confint

    hits = round(report.accuracy * report.n)
    assert report.accuracy_ci == pytest.approx(
        proportion_confint(hits, report.n, alpha=0.05, method="wilson")
    )
    assert sum(c["count"] for row in report.confusion.values() for c in row.values()) == 160


def test_statistics_are_computed_on_the_reconciled_verdicts(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "h.jsonl",
        [
            {"id": "short", "prompt": "p", "a": "one", "b": "one two three", "preferred": "b"},
            {"id": "long", "prompt": "q", "a": "one two three four", "b": "one", "preferred": "b"},
            {"id": "even", "prompt": "r", "a": "one two", "b": "three four", "preferred": "tie"},
            {"id": "x", "prompt": "s", "a": "a b c d e", "b": "a b", "preferred": "a"},
        ],
    )
    labels = load_labels(path)
    report = calibrate(StubJudge(), labels, JudgeSpec("stub"), max_examples=1)
    human = [r.preferred for r in labels.rows]
    judge = [item["judge"] for item in report.items]
    assert judge == ["b", "a", "tie", "a"]
    assert report.accuracy == 0.75
    assert report.kappa == pytest.approx(_sklearn_kappa(human, judge, None))
    assert report.weighted_kappa == pytest.approx(_sklearn_kappa(human, judge, "linear"))
    assert report.confusion["b"]["a"] == {"count": 1, "ids": ["long"]}
    assert report.confusion["a"]["a"] == {"count": 1, "ids": ["x"]}
    assert report.human_win_rate == pytest.approx((0 + 0 + 0.5 + 1) / 4)
    assert report.win_rate == pytest.approx((0 + 1 + 0.5 + 1) / 4)


def test_reward_judge_uses_the_labels_references(tmp_path: Path) -> None:
    rows = [
        {
            "id": i,
            "prompt": f"{i}+{i}?",
            "a": str(2 * i),
            "b": str(2 * i + 1),
            "preferred": "a",
            "reference": str(2 * i),
        }
        for i in range(6)
    ] + [{"id": 10, "prompt": "9+9?", "a": "19", "b": "18", "preferred": "b", "reference": "18"}]
    labels = _write_jsonl(tmp_path / "h.jsonl", rows)
    outcome = calibrate_judge(
        labels,
        judge_section_file(tmp_path, {"name": "reward", "reward": "exact_match"}),
        output_dir=tmp_path / "art",
    )
    assert outcome.report.accuracy == 1.0
    assert outcome.report.kappa == pytest.approx(1.0)
    assert outcome.report.judge == JudgeSpec("reward", None, "exact_match")


def judge_section_file(tmp_path: Path, section: dict[str, Any], name: str = "judge.yaml") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(section), encoding="utf-8")  # JSON is YAML
    return str(path)


def test_judge_config_files_resolve_to_the_spec_rlaif_and_flywheel_use(tmp_path: Path) -> None:
    judge = {"name": "anthropic", "model": "claude-haiku-4-5-20251001", "cache": False, "min_kappa": 0.4}
    rlaif_file = judge_section_file(tmp_path, {"name": "pipe", "judge": judge}, "rlaif.yaml")
    flywheel_judge = {"name": "anthropic", "model": "claude-haiku-4-5-20251001", "criteria": ["clear"]}
    flywheel_file = judge_section_file(tmp_path, {"filter": {"judge": flywheel_judge}}, "fw.yaml")
    bare = judge_section_file(tmp_path, judge)
    expected = JudgeSpec.of(RLAIFConfig.from_dict({"judge": judge}).judge)
    assert expected == JudgeSpec("anthropic", "claude-haiku-4-5-20251001")
    for ref in (rlaif_file, flywheel_file, bare):
        assert JudgeSpec.of(judge_section(ref)) == expected
    fw = FlywheelConfig.from_dict(
        {"mining": {"eval_data": "d", "predictions": "p"}, "filter": {"judge": flywheel_judge}}
    )
    assert JudgeSpec.of(fw.filter.judge) == expected
    # Default reward judges: RLAIF's, the flywheel's and `--judge reward` are one spec.
    assert (
        JudgeSpec.of(judge_section("reward"))
        == JudgeSpec.of(RLAIFConfig().judge)
        == JudgeSpec("reward", None, "token_f1")
    )
    with pytest.raises(ConfigError, match="no judge section"):
        judge_section(judge_section_file(tmp_path, {"foo": 1}, "x.yaml"))
    with pytest.raises(ConfigError, match="x.yaml"):
        judge_section(judge_section_file(tmp_path, {"name": "stub", "bogus": 1}, "x.yaml"))


def test_cli_calibrates_the_stub_judge_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = _length_biased_labels(tmp_path, n=40)
    art = tmp_path / "art"
    assert (
        run_cli(["judge", "calibrate", "--labels", str(labels), "--judge", "stub", "--output-dir", str(art)])
        == 0
    )
    out = capsys.readouterr().out
    for needle in (
        "accuracy",
        "Wilson",
        "kappa",
        "weighted kappa",
        "order consistency",
        "length bias",
        "length-controlled",
        "human tie",
    ):
        assert needle in out
    stored = list((art / "judge_calibrations").glob("*.json"))
    assert len(stored) == 1
    data = json.loads(stored[0].read_text())
    assert data["report_sha256"] == sha256_json(data["report"])
    assert data["report"]["labels"]["sha256"] == sha256_file(labels)
    assert stored[0].name == f"{JudgeSpec('stub').sha256[:16]}-{sha256_file(labels)[:16]}.json"
    (record,) = [
        r
        for r in AuditReader(RunStore(art).audit_dir).query(limit=100, order="asc").records
        if r.event == "judge_calibrated"
    ]
    assert record.fields["judge"] == "stub"
    assert record.fields["labels_sha256"] == sha256_file(labels)
    assert record.fields["report_sha256"] == data["report_sha256"]
    assert record.fields["kappa"] == data["report"]["kappa"]

    assert (
        run_cli(
            [
                "judge",
                "calibrate",
                "--labels",
                str(labels),
                "--judge",
                "stub",
                "--output-dir",
                str(art),
                "--json",
            ]
        )
        == 0
    )
    body = json.loads(capsys.readouterr().out)
    assert body["report"]["judge"]["name"] == "stub" and "items" not in body["report"]
    assert find_calibration(RunStore(art), JudgeSpec("stub")).report_sha256 == body["report_sha256"]  # type: ignore[union-attr]


MALFORMED: dict[str, tuple[list[Any], str]] = {
    "bad json": (['{"id": 1, "prompt": "p"'], "line 1: not valid JSON"),
    "not an object": ([[1, 2]], "line 1: must be a JSON object"),
    "missing field": ([{"id": 1, "prompt": "p", "a": "x", "preferred": "a"}], "line 1: field 'b' is missing"),
    "bad preferred": (
        [{"id": 1, "prompt": "p", "a": "x", "b": "y", "preferred": "A"}],
        "line 1: field 'preferred'",
    ),
    "bad id": ([{"id": True, "prompt": "p", "a": "x", "b": "y", "preferred": "a"}], "line 1: field 'id'"),
    "non-string response": (
        [{"id": 1, "prompt": "p", "a": 3, "b": "y", "preferred": "a"}],
        "line 1: field 'a'",
    ),
    "unknown field": (
        [{"id": 1, "prompt": "p", "a": "x", "b": "y", "preferred": "a", "note": 1}],
        "unknown field 'note'",
    ),
    "duplicate id": (
        [{"id": 1, "prompt": "p", "a": "x", "b": "y", "preferred": "a"}] * 2,
        "line 2: field 'id': '1' already used on line 1",
    ),
    "empty": ([], "no label rows"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_labels_are_one_line_and_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows, expected = MALFORMED[case]
    path = _write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=expected):
        load_labels(path)
    assert (
        run_cli(
            ["judge", "calibrate", "--labels", str(path), "--judge", "stub", "--output-dir", str(tmp_path)]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err
    assert not (tmp_path / "judge_calibrations").exists()


def _calibrated(tmp_path: Path, spec: JudgeSpec, judge: Any, store: RunStore) -> float:
    labels: LabelSet = load_labels(_length_biased_labels(tmp_path, n=40))
    stored = store_calibration(calibrate(judge, labels, spec), store)
    assert stored.kappa is not None
    return stored.kappa


def test_min_kappa_lookup_refuses_missing_low_and_tampered(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "art")
    spec = JudgeSpec("stub")
    assert require_min_kappa(spec, None, store) is None  # no threshold: nothing checked
    with pytest.raises(ConfigError, match="provenir judge calibrate"):
        require_min_kappa(spec, 0.2, store)
    kappa = _calibrated(tmp_path, spec, StubJudge(), store)
    assert require_min_kappa(spec, kappa, store) is not None
    with pytest.raises(ConfigError, match="below judge.min_kappa"):
        require_min_kappa(spec, kappa + 0.01, store)
    # Another judge's calibration does not count for this one.
    with pytest.raises(ConfigError, match="no calibration"):
        require_min_kappa(JudgeSpec("stub", model="other"), -1.0, store)
    (path,) = store.judge_calibrations_dir.glob("*.json")
    data = json.loads(path.read_text())
    data["report"]["kappa"] = 0.99
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestTamperedError, match="does not match its recorded sha256"):
        require_min_kappa(spec, 0.5, store)


def test_rlaif_refuses_a_judge_below_min_kappa(tmp_path: Path) -> None:
    out = tmp_path / "art"

    def config(min_kappa: float | None) -> RLAIFConfig:
        return RLAIFConfig.from_dict(
            {"output_dir": str(out), "judge": {"name": "stub", "min_kappa": min_kappa}}
        )

    with pytest.raises(ConfigError, match="has no calibration.*provenir judge calibrate"):
        RLAIFPipeline(config(0.3), progress=False).run()
    kappa = _calibrated(tmp_path, JudgeSpec.of(config(0.3).judge), StubJudge(), RunStore(out))
    with pytest.raises(ConfigError, match="below judge.min_kappa"):
        RLAIFPipeline(config(kappa + 0.05), progress=False).run()
    assert not (out / "rlaif").exists()  # refused before anything was generated or trained
    assert require_min_kappa(JudgeSpec.of(config(kappa).judge), kappa, RunStore(out)) is not None
    # min_kappa admits or refuses the judge only: setting it does not make the pipeline a new one.
    assert (
        RLAIFPipeline(config(None), progress=False).state["identity"]
        == RLAIFPipeline(config(0.3), progress=False).state["identity"]
    )


def test_flywheel_enforces_min_kappa(tmp_path: Path) -> None:
    rows = [
        {"prompt": "What is the capital of Canada?", "response": "Ottawa"},
        {"prompt": "What is 18 plus 6?", "response": "24"},
    ]
    data = _write_jsonl(tmp_path / "data.jsonl", rows)
    preds = _write_jsonl(tmp_path / "preds.jsonl", [{"prediction": "Toronto"}, {"prediction": "25"}])
    out = tmp_path / "art"

    def config(min_kappa: float | None) -> FlywheelConfig:
        return FlywheelConfig.from_dict(
            {
                "output_dir": str(out),
                "mining": {"eval_data": str(data), "predictions": str(preds)},
                "filter": {"judge": {"name": "reward", "reward": "token_f1", "min_kappa": min_kappa}},
            }
        )

    with pytest.raises(ConfigError, match="has no calibration.*provenir judge calibrate"):
        DataFlywheel(config(0.1)).run(progress=False)
    assert not (out / "flywheel").exists()
    # Calibrate the very judge the flywheel names, through the same entry point as the CLI.
    labels = _write_jsonl(
        tmp_path / "h.jsonl",
        [
            {
                "id": 1,
                "prompt": "capital?",
                "a": "Ottawa",
                "b": "Paris",
                "preferred": "a",
                "reference": "Ottawa",
            },
            {"id": 2, "prompt": "18+6?", "a": "25", "b": "24", "preferred": "b", "reference": "24"},
            {"id": 3, "prompt": "2+2?", "a": "4", "b": "four", "preferred": "tie", "reference": "4"},
        ],
    )
    outcome = calibrate_judge(labels, "reward", output_dir=out)
    kappa = outcome.report.kappa
    assert kappa is not None
    with pytest.raises(ConfigError, match="below judge.min_kappa"):
        DataFlywheel(config(min(1.0, kappa + 0.1))).run(progress=False)
    result = DataFlywheel(config(kappa)).run(progress=False)
    assert result.augmented_path.is_file()


def test_position_biased_remote_judge_is_asked_once_per_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real AnthropicJudge against the loopback fake server, whose model always prefers the first shown."""
    pytest.importorskip("anthropic")
    from provenir.rlaif.config import JudgeSection
    from provenir.testing.llm_server import FakeLLMServer, prefer_first

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
    labels = _length_biased_labels(tmp_path, n=12)
    with FakeLLMServer(policy=prefer_first) as server:
        section = JudgeSection(
            name="anthropic", model="claude-haiku-4-5-20251001", base_url=server.url, cache=False
        )
        outcome = calibrate_judge(labels, section, output_dir=tmp_path / "art")
        # The judge swaps the order itself: two requests per pair, not four.
        assert server.request_count == 2 * 12
    report = outcome.report
    assert report.order_consistency == 0.0  # every verdict followed the position
    assert {item["judge"] for item in report.items} == {"tie"}
    assert all(item["backward"] is None for item in report.items)
    assert report.judge == JudgeSpec("anthropic", "claude-haiku-4-5-20251001")
