"""CachedJudge: keys, atomic entries, no cached failures, no secrets, zero HTTP calls on re-runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from provenir.core.errors import JudgeError
from provenir.eval.judge import AnthropicJudge, CachedJudge, OpenAIJudge, Preference, RetryPolicy, StubJudge
from provenir.testing.llm_server import FakeLLMServer

SECRET = f"sk-test-{uuid.uuid4().hex}"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.02, timeout=2, max_attempts=3)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


class CountingJudge(StubJudge):
    """A StubJudge that counts calls and can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def score_pairwise(self, prompt: str, a: str, b: str) -> Preference:
        self.calls += 1
        if self.fail:
            raise JudgeError("no verdict")
        return super().score_pairwise(prompt, a, b)


def all_entries(root: Path) -> list[Path]:
    return sorted(root.rglob("*.json"))


def test_second_call_is_served_from_disk(tmp_path: Path) -> None:
    inner = CountingJudge()
    judge = CachedJudge(inner, cache_dir=tmp_path)
    first = judge.score_pairwise("q", "a b c", "d")
    again = CachedJudge(CountingJudge(), cache_dir=tmp_path)  # a new process would see the same
    assert again.score_pairwise("q", "a b c", "d") == first and again.inner.calls == 0
    assert (judge.stats.misses, judge.stats.writes, again.stats.hits) == (1, 1, 1)
    rubric = judge.score_rubric("q", "resp", ["clarity"])
    assert judge.score_rubric("q", "resp", ["clarity"]) == rubric and judge.stats.hits == 1
    assert len(all_entries(tmp_path)) == 2


def test_key_depends_on_judge_identity_method_and_inputs(tmp_path: Path, server: FakeLLMServer) -> None:
    haiku = CachedJudge(AnthropicJudge(model="m1", base_url=server.url), cache_dir=tmp_path)
    sonnet = CachedJudge(AnthropicJudge(model="m2", base_url=server.url), cache_dir=tmp_path)
    gpt = CachedJudge(OpenAIJudge(model="m1", base_url=server.openai_url), cache_dir=tmp_path)
    unswapped = CachedJudge(
        AnthropicJudge(model="m1", base_url=server.url, position_swap=False), cache_dir=tmp_path
    )
    inputs = {"prompt": "q", "a": "x", "b": "y"}
    keys = {j.cache_key("pairwise", inputs) for j in (haiku, sonnet, gpt, unswapped)}
    keys |= {haiku.cache_key("rubric", inputs), haiku.cache_key("pairwise", {**inputs, "b": "z"})}
    assert len(keys) == 6
    # The endpoint is not part of the key (it may carry credentials): same model, same verdict.
    elsewhere = CachedJudge(
        AnthropicJudge(model="m1", base_url="http://user:pw@example.invalid"), cache_dir=tmp_path
    )
    assert elsewhere.cache_key("pairwise", inputs) == haiku.cache_key("pairwise", inputs)
    assert "pw" not in repr(elsewhere)


def test_failures_are_never_cached(tmp_path: Path, server: FakeLLMServer) -> None:
    judge = CachedJudge(CountingJudge(fail=True), cache_dir=tmp_path)
    with pytest.raises(JudgeError):
        judge.score_pairwise("q", "a", "b")
    assert all_entries(tmp_path) == []

    remote = CachedJudge(
        AnthropicJudge(base_url=server.url, retry=FAST, position_swap=False), cache_dir=tmp_path
    )
    server.inject("no_verdict", times=3)
    with pytest.raises(JudgeError, match="no valid pairwise verdict"):
        remote.score_pairwise("q", "long answer here", "short")
    assert all_entries(tmp_path) == []
    assert remote.score_pairwise("q", "long answer here", "short").preferred == "a"
    assert len(all_entries(tmp_path)) == 1


def test_damaged_entry_is_recomputed_and_repaired(tmp_path: Path) -> None:
    judge = CachedJudge(CountingJudge(), cache_dir=tmp_path)
    judge.score_pairwise("q", "a b", "c")
    [entry] = all_entries(tmp_path)
    entry.write_text('{"format": 1, "key": "truncated')
    assert judge.score_pairwise("q", "a b", "c").preferred == "a"
    assert judge.stats.damaged == 1 and judge.inner.calls == 2
    assert json.loads(entry.read_text())["result"]["preferred"] == "a"
    # A valid file under the wrong name (copied, renamed) is not trusted either.
    entry.write_text(json.dumps({**json.loads(entry.read_text()), "key": "0" * 64}))
    judge.score_pairwise("q", "a b", "c")
    assert judge.stats.damaged == 2


def test_no_secret_reaches_keys_or_files(tmp_path: Path, server: FakeLLMServer) -> None:
    judge = CachedJudge(OpenAIJudge(base_url=server.openai_url, retry=FAST), cache_dir=tmp_path)
    judge.score_pairwise("q", "a b", "c")
    judge.score_rubric("q", "a b", ["clarity"])
    files = all_entries(tmp_path)
    assert len(files) == 2
    for f in files:
        assert SECRET not in f.read_text() and SECRET not in f.name

    class Leaky(StubJudge):
        def cache_identity(self) -> dict[str, str]:
            return {"judge": "Leaky", "auth": SECRET}

    with pytest.raises(JudgeError, match="OPENAI_API_KEY|ANTHROPIC_API_KEY"):
        CachedJudge(Leaky(), cache_dir=tmp_path)


def test_concurrent_processes_share_one_cache_safely(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        from provenir.eval.judge import CachedJudge, StubJudge
        judge = CachedJudge(StubJudge(), cache_dir={str(tmp_path)!r})
        items = [("q%d" % (i % 50), "a " * (i % 7), "b " * (i % 5)) for i in range(300)]
        judge.score_pairwise_batch(items, max_concurrency=8, progress=False)
        print(judge.stats.hits + judge.stats.misses)
    """)
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and outputs == ["300"] * 3
    files = all_entries(tmp_path)
    assert len(files) == len({(i % 50, i % 7, i % 5) for i in range(300)})
    assert not list(tmp_path.rglob("*.tmp"))  # no half-written temporaries left behind
    checker = CachedJudge(StubJudge(), cache_dir=tmp_path)
    for i in range(300):
        checker.score_pairwise(f"q{i % 50}", "a " * (i % 7), "b " * (i % 5))
    assert checker.stats.damaged == 0 and checker.stats.misses == 0


def test_rerun_of_1000_cached_judgments_makes_zero_http_calls(tmp_path: Path, server: FakeLLMServer) -> None:
    items = [(f"prompt {i}", "word " * (i % 9 + 1), "word " * (i % 4 + 1)) for i in range(1000)]
    judge = CachedJudge(
        AnthropicJudge(base_url=server.url, retry=FAST, position_swap=False), cache_dir=tmp_path
    )
    server.reset_counts()
    first = judge.score_pairwise_batch(items, max_concurrency=32, progress=False)
    assert server.request_count == 1000
    server.reset_counts()
    again = CachedJudge(
        AnthropicJudge(base_url=server.url, retry=FAST, position_swap=False), cache_dir=tmp_path
    )
    second = again.score_pairwise_batch(items, max_concurrency=32, progress=False)
    assert server.request_count == 0 and again.stats.hits == 1000
    assert second == first
