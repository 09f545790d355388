"""Anthropic and OpenAI judges: the official SDK clients against a real loopback HTTP server.

No SDK is mocked: :class:`FakeLLMServer` speaks both wire formats, and each fault it injects
must end in a retry that succeeds or in a clear JudgeError, never in an invented verdict.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenir.core.errors import JudgeError
from provenir.eval.judge import AnthropicJudge, OpenAIJudge, Preference, RetryPolicy, RubricResult
from provenir.testing.llm_server import FakeLLMServer, _error_body, prefer_first, prefer_longer

SECRET = f"sk-test-{uuid.uuid4().hex}"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.02, timeout=0.3, max_attempts=4, max_parse_attempts=3)
LONG = "LoRA freezes the pretrained weights and trains small low-rank update matrices instead."
SHORT = "It is a fine-tuning method."


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(hang_s=1.0, retry_after=0.25) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.clear_faults()
    server.reset_counts()
    server.policy = prefer_longer
    server.latency = 0.0
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def make(provider: str, server: FakeLLMServer, **kwargs: Any) -> AnthropicJudge | OpenAIJudge:
    kwargs.setdefault("retry", FAST)
    if provider == "anthropic":
        return AnthropicJudge(model="claude-haiku-4-5-20251001", base_url=server.url, **kwargs)
    return OpenAIJudge(model="gpt-4o", base_url=server.openai_url, **kwargs)


PROVIDERS = ["anthropic", "openai"]


def test_seed_snippet_runs_as_written_against_the_fake_server(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # The seed constructs the judge without base_url; the SDK honours ANTHROPIC_BASE_URL.
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("PROVENIR_CACHE_DIR", str(tmp_path))
    response_a, response_b, response = LONG, SHORT, LONG

    from provenir.eval.judge import AnthropicJudge, CachedJudge

    judge = CachedJudge(AnthropicJudge(model="claude-haiku-4-5-20251001"))

    pref = judge.score_pairwise("What is LoRA?", response_a, response_b)
    scores = judge.score_rubric(
        "What is LoRA?", response, criteria=["factual accuracy", "clarity", "conciseness"]
    )

    assert isinstance(pref, Preference) and pref.preferred == "a" and pref.agreed is True
    assert isinstance(scores, RubricResult) and list(scores) == ["factual accuracy", "clarity", "conciseness"]
    assert server.request_count == 3  # two orders + one rubric
    first = server.requests[0]
    auth = first.headers.get("x-api-key") or first.headers.get("authorization", "")
    assert first.path == "/v1/messages" and auth.endswith(SECRET)  # the key from the environment
    assert b'"tool_choice"' in first.body  # the verdict was requested as a forced tool call


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pairwise_and_rubric_round_trip(provider: str, server: FakeLLMServer) -> None:
    judge = make(provider, server)
    pref = judge.score_pairwise("What is LoRA?", SHORT, LONG)
    assert (pref.preferred, pref.agreed) == ("b", True)
    assert 0.5 < pref.confidence <= 1
    scores = judge.score_rubric("What is LoRA?", LONG, criteria=["clarity", "accuracy"])
    assert set(scores) == {"clarity", "accuracy"} and all(1 <= s <= 10 for s in scores.values())
    body = server.requests[-1].body
    assert (b'"json_schema"' in body) if provider == "openai" else (b'"tools"' in body)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "fault",
    [
        "server_error",
        "overloaded",
        "timeout",
        "malformed_json",
        "prose",
        "fenced",
        "malformed_verdict",
        "invalid_verdict",
        "no_verdict",
    ],
)
def test_each_fault_is_retried_to_a_correct_verdict(provider: str, fault: str, server: FakeLLMServer) -> None:
    judge = make(provider, server, position_swap=False)
    server.inject(fault)
    pref = judge.score_pairwise("q", LONG, SHORT)
    assert pref.preferred == "a"  # the genuine verdict, not something read off the faulty reply
    # "prose" and "fenced" carry a valid verdict: parsed on the first reply, no retry needed.
    expected_calls = 1 if fault in ("prose", "fenced") else 2
    assert server.request_count == expected_calls and judge.stats.http_calls == expected_calls


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rate_limit_waits_for_retry_after(provider: str, server: FakeLLMServer) -> None:
    judge = make(provider, server, position_swap=False)
    server.inject("rate_limit")
    start = time.monotonic()
    assert judge.score_pairwise("q", LONG, SHORT).preferred == "a"
    assert time.monotonic() - start >= 0.25  # the server's retry-after, not the 10 ms back-off
    assert judge.stats.rate_limited == 1 and server.request_count == 2


def test_retry_after_longer_than_allowed_fails_fast(server: FakeLLMServer) -> None:
    judge = make("anthropic", server, position_swap=False, retry=RetryPolicy(max_retry_after=0.1, timeout=1))
    server.inject("rate_limit")
    with pytest.raises(JudgeError, match="max_retry_after"):
        judge.score_pairwise("q", LONG, SHORT)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("fault", "match"),
    [
        ("server_error", "gave up after 4 attempts; last: HTTP 500"),
        ("timeout", "timed out"),
        ("no_verdict", "no valid pairwise verdict after 3 replies"),
        ("invalid_verdict", "no valid pairwise verdict"),
    ],
)
def test_persistent_faults_end_in_a_clear_error(
    provider: str, fault: str, match: str, server: FakeLLMServer
) -> None:
    judge = make(provider, server, position_swap=False)
    server.inject(fault, times=10)
    with pytest.raises(JudgeError, match=match) as info:
        judge.score_pairwise("q", LONG, SHORT)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_auth_error_is_not_retried_and_never_shows_the_key(
    provider: str, server: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    judge = make(provider, server)
    server.inject("auth_error")
    with pytest.raises(JudgeError, match="authentication failed") as info:
        judge.score_rubric("q", LONG, ["clarity"])
    assert server.request_count == 1
    assert SECRET not in str(info.value) and SECRET not in repr(judge) and SECRET not in caplog.text
    assert SECRET not in str(judge.cache_identity()) and SECRET not in str(vars(judge))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_error_text_echoing_the_key_is_redacted(provider: str, server: FakeLLMServer) -> None:
    judge = make(provider, server, position_swap=False)
    server.inject("bad_request")
    with pytest.raises(JudgeError, match=r"HTTP 400.*\*\*\*") as info:
        judge.score_pairwise("q", LONG, SHORT)
    assert SECRET not in str(info.value) and server.request_count == 1


def test_missing_key_and_bad_input_are_clear_errors(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(JudgeError, match=r"set the environment variable OPENAI_API_KEY"):
        make("openai", server)
    judge = make("anthropic", server)
    with pytest.raises(JudgeError, match="must be a string"):
        judge.score_pairwise("q", 3, "x")  # type: ignore[arg-type]
    with pytest.raises(JudgeError, match="non-empty"):
        judge.score_rubric("q", "x", [""])
    assert server.request_count == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_position_bias_is_detected_and_reported(provider: str, server: FakeLLMServer) -> None:
    judge = make(provider, server)
    server.policy = prefer_first  # a judge that always picks whatever it sees first
    pref = judge.score_pairwise("q", LONG, SHORT)
    assert (pref.preferred, pref.confidence, pref.agreed) == ("tie", 0.0, False)
    server.policy = prefer_longer
    assert judge.score_pairwise("q", LONG, SHORT).agreed is True
    assert judge.stats.agreement_rate == 0.5
    # Without control the biased verdict would pass through unnoticed.
    server.policy = prefer_first
    assert make(provider, server, position_swap=False).score_pairwise("q", SHORT, LONG).preferred == "a"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_batch_is_concurrent_and_survives_faults(provider: str, server: FakeLLMServer) -> None:
    server.latency = 0.05
    judge = make(provider, server, retry=RetryPolicy(base_delay=0.01, max_delay=0.02, timeout=5))
    items = [(f"q{i}", LONG if i % 2 else SHORT, SHORT if i % 2 else LONG) for i in range(40)]
    server.inject("rate_limit", "server_error", "prose", "malformed_json")
    start = time.monotonic()
    prefs = judge.score_pairwise_batch(items, max_concurrency=20, progress=False)
    elapsed = time.monotonic() - start
    assert [p.preferred for p in prefs] == ["a" if i % 2 else "b" for i in range(40)]
    assert elapsed < 1.5  # sequentially: 80 calls x 50 ms = 4 s
    assert server.request_count == 80 + 3 and server.pending_faults == 0


def test_batch_failure_is_reported_per_item(server: FakeLLMServer) -> None:
    judge = make("openai", server, position_swap=False)
    server.inject("auth_error")
    results = judge.score_pairwise_batch(
        [("q", LONG, SHORT)] * 3, max_concurrency=1, progress=False, return_exceptions=True
    )
    assert isinstance(results[0], JudgeError) and all(isinstance(r, Preference) for r in results[1:])


class EchoingServer(FakeLLMServer):
    """Answers every request with a 400 whose message quotes the request's credential after
    ``pad`` characters of detail, as a careless upstream proxy would."""

    pad = 0

    def _respond(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes, float]:
        with self._lock:
            self._count += 1
        echoed = headers.get("x-api-key") or headers.get("authorization", "")
        api = "anthropic" if path.rstrip("/").endswith("/messages") else "openai"
        detail = ("upstream detail " * 40)[: self.pad]
        message = f"{detail}credentials: {echoed} rejected"
        return 400, {}, _error_body(api, "invalid_request_error", message), 0.0


# An Anthropic-format key: it also matches a credential pattern, not only the judge's own key.
LONG_KEY = "sk-ant-api03-" + "Qx7-Lm2_Pz9" * 8 + "Vb4AA"
# The SDKs put under 100 characters before the message, and the key is 106 long: with the key
# starting anywhere from 100 to 280 characters into the message, steps of 20, some runs put it
# across the old cut at character 300 whatever that prefix is exactly.
PADS = range(100, 281, 20)


def _fragments(key: str, size: int = 8) -> set[str]:
    return {key[i : i + size] for i in range(len(key) - size + 1)}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_key_echoed_across_the_old_300_character_cut_is_never_stored_in_part(
    provider: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ANTHROPIC_API_KEY", LONG_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", LONG_KEY)
    kept: list[str] = []
    with EchoingServer() as echo:
        for pad in PADS:
            echo.pad = pad
            judge = make(provider, echo, position_swap=False)
            with pytest.raises(JudgeError, match="HTTP 400") as info:
                judge.score_pairwise("q", LONG, SHORT)
            kept.append(str(info.value))
            judge.close()
        assert echo.request_count == len(PADS)

        # The same failure as RLAIF stores it: one judgments.jsonl row per failed pair.
        from provenir.rlaif import RLAIFConfig, RLAIFPipeline

        echo.pad = 200
        config = RLAIFConfig.from_dict(
            {"name": "echo", "output_dir": str(tmp_path), "prompts_path": "builtin:prompts-sample"}
        )
        judge = make(provider, echo, position_swap=False)
        pipeline = RLAIFPipeline(config, judge=judge, progress=False)
        candidates = [{"prompt": "What is LoRA?", "variants": [LONG, SHORT, "Low-rank adapters."]}]
        record = pipeline._judge(judge, candidates, tmp_path)
        judge.close()
    rows = [json.loads(line) for line in Path(record["file"]).read_text().splitlines()]
    assert record["errors"] == len(rows) > 0 and all("HTTP 400" in r["error"] for r in rows)
    kept += [r["error"] for r in rows]
    kept.append(caplog.text)
    leaked = sorted({f for f in _fragments(LONG_KEY) for text in kept if f in text})
    assert not leaked, leaked[:5]
