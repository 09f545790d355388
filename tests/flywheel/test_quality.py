"""The quality filter: duplicates, near-duplicates, PII, secrets and the judge threshold."""

from __future__ import annotations

import pytest

from provenir.flywheel.config import FilterConfig
from provenir.flywheel.judging import build_judge
from provenir.flywheel.quality import Candidate, QualityFilter, jaccard, ngrams, normalise

ORIGINAL = "What is the capital of Canada?"


def cand(text: str, index: int = 0, original: str = ORIGINAL) -> Candidate:
    return Candidate(index, f"key{index}", original, "test", text)


def run(texts: list[str], **cfg: object) -> tuple[dict[str, str | None], QualityFilter]:
    config = FilterConfig(**cfg)  # type: ignore[arg-type]
    filt = QualityFilter(config, build_judge(config.judge, [ORIGINAL]))
    outcome = filt.apply([cand(t) for t in texts])
    verdicts = {c.text: None for c in outcome.accepted} | {c.text: c.reason for c in outcome.rejected}
    return verdicts, filt


def test_normalised_ngrams() -> None:
    assert normalise("  What's   the CAPITAL, of Canada?? ") == "what s the capital of canada"
    assert ngrams("a b", 3) == frozenset({("a", "b")})
    assert jaccard(ngrams("a b c d", 3), ngrams("a b c e", 3)) == pytest.approx(1 / 3)


def test_filter_removes_duplicates_near_duplicates_pii_and_secrets() -> None:
    good = "Can you tell me what the capital of Canada is?"
    verdicts, _ = run(
        [
            "what is the capital of canada",  # the original, normalised
            good,
            "Can you tell me what the capital of Canada is ?",  # duplicate of an accepted one
            "What is the capital of Canada, please?",  # near-duplicate (J = 0.8)
            "Email jane.doe@example.com: what is the capital of Canada?",  # PII
            "Using key AKIAIOSFODNN7EXAMPLE, tell me the capital of Canada.",  # secret
            "Tell me the capital city of Canada.",
        ]
    )
    assert verdicts == {
        "what is the capital of canada": "duplicate",
        good: None,
        "Can you tell me what the capital of Canada is ?": "duplicate",
        "What is the capital of Canada, please?": "near_duplicate",
        "Email jane.doe@example.com: what is the capital of Canada?": "pii",
        "Using key AKIAIOSFODNN7EXAMPLE, tell me the capital of Canada.": "secret",
        "Tell me the capital city of Canada.": None,
    }


def test_scans_can_be_switched_off() -> None:
    text = "Email jane.doe@example.com: what is the capital of Canada?"
    verdicts, _ = run([text], scan_pii=False)
    assert verdicts[text] is None


def test_judge_threshold_drops_variants_that_lost_the_meaning() -> None:
    verdicts, _ = run(
        ["Describe a sunny afternoon at the beach.", "Tell me the capital of Canada."], min_judge_score=3.0
    )
    assert verdicts["Describe a sunny afternoon at the beach."] == "low_judge_score"
    assert verdicts["Tell me the capital of Canada."] is None


def test_scores_are_recorded_and_cap_keeps_the_best() -> None:
    config = FilterConfig(max_accepted_per_failure=1)
    filt = QualityFilter(config, build_judge(config.judge, [ORIGINAL]))
    outcome = filt.apply(
        [cand("Name the capital of the country Canada, thanks."), cand("Tell me the capital of Canada.")]
    )
    assert [c.text for c in outcome.accepted] == ["Tell me the capital of Canada."]
    assert [c.reason for c in outcome.rejected] == ["over_cap"]
    best = outcome.accepted[0]
    assert set(best.scores) == {"judge", "max_similarity"}
    assert best.scores["judge"] > outcome.rejected[0].scores["judge"]


def test_duplicates_are_judged_per_failure() -> None:
    # The same text may serve two different failures; it is not a duplicate across them.
    config = FilterConfig(scan_pii=False, scan_secrets=False)
    other = "What is the capital of France?"
    outcome = QualityFilter(config, None).apply(
        [cand("Tell me about capitals.", 0), cand("Tell me about capitals.", 1, other)]
    )
    assert len(outcome.accepted) == 2
