"""A fake LLM HTTP server speaking the Anthropic Messages and OpenAI Chat Completions wire formats.

The official ``anthropic`` and ``openai`` SDK clients talk to it over 127.0.0.1, so judge tests
and ``bench/judges.py`` exercise the real request building, response parsing and error mapping
of those SDKs. It understands the prompts built by :mod:`provenir.eval.judge` (``<response_a>``
/ ``<response_b>`` tags for pairwise, ``<response>`` / ``<criteria>`` for rubric) and answers
with a deterministic verdict, by tool call / structured output when the request asks for one.

Faults are queued and consumed one per request, in order, so a test states exactly what the
next calls see::

    from provenir.testing.llm_server import FakeLLMServer

    with FakeLLMServer(latency=0.05) as server:
        server.inject("rate_limit", "server_error")   # the next two requests fail, then normal
        judge = AnthropicJudge(model="claude-haiku-4-5-20251001", base_url=server.url)

Fault modes (see :data:`FAULTS`): ``rate_limit`` (429 with ``retry-after``), ``server_error``
(500), ``overloaded`` (529 Anthropic / 503 OpenAI), ``timeout`` (the reply is held back
``hang_s`` seconds), ``auth_error`` (401), ``bad_request`` (400 whose message echoes the
request's credentials, like a careless proxy: redaction must hide them), ``malformed_json``
(a 200 whose body is cut off),
``prose`` (verdict JSON inside surrounding prose, no tool call), ``fenced`` (verdict inside a
```json code fence), ``malformed_verdict`` (broken JSON in the text), ``invalid_verdict``
(well-formed JSON that violates the verdict schema), ``no_verdict`` (prose without any JSON).

The server is a small asyncio HTTP/1.1 implementation with keep-alive running in a background
thread: latency is an ``asyncio.sleep``, so a thousand requests in flight cost no threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FAULTS: tuple[str, ...] = (
    "rate_limit",
    "server_error",
    "overloaded",
    "timeout",
    "auth_error",
    "bad_request",
    "malformed_json",
    "prose",
    "fenced",
    "malformed_verdict",
    "invalid_verdict",
    "no_verdict",
)

# A policy maps (prompt, first shown response, second shown response) to (preferred, confidence,
# rationale), with preferred in {"a", "b", "tie"} relative to the order shown.
PairwisePolicy = Callable[[str, str, str], tuple[str, float, str]]

_TAG = {
    name: re.compile(rf"<{name}>\n?(.*?)\n?</{name}>", re.DOTALL)
    for name in ("prompt", "response_a", "response_b", "response", "criteria")
}

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    529: "Overloaded",
}


def prefer_longer(prompt: str, first: str, second: str) -> tuple[str, float, str]:
    """Default policy: the response with more words wins (a stand-in for 'more complete'); equal is a tie.

    It depends on content only, never on order, so an unbiased fake judge agrees with itself
    when the responses are swapped.
    """
    la, lb = len(first.split()), len(second.split())
    if la == lb:
        return "tie", 0.6, "Both responses are equally complete."
    winner = "a" if la > lb else "b"
    confidence = round(0.55 + 0.4 * abs(la - lb) / max(la, lb), 3)
    return winner, confidence, f"Response {winner.upper()} is more complete."


def prefer_first(prompt: str, first: str, second: str) -> tuple[str, float, str]:
    """A position-biased policy: whatever is shown first wins. Used to test position-bias control."""
    return "a", 0.8, "Response A comes across as better."


def rubric_score(response: str, criterion: str) -> int:
    """Deterministic 1-10 score for a (response, criterion) pair, from a hash of both."""
    digest = hashlib.sha256(f"{criterion}\0{response}".encode()).digest()
    return 1 + digest[0] % 10


@dataclass
class RecordedRequest:
    """One request the server received (kept in memory only, for assertions)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    fault: str | None
    received_at: float = field(default_factory=time.monotonic)


class FakeLLMServer:
    """Loopback server for ``/v1/messages`` (Anthropic) and ``/v1/chat/completions`` (OpenAI).

    Args:
        latency: seconds every reply is delayed (simulates model time).
        policy: pairwise verdict policy; defaults to :func:`prefer_longer`.
        retry_after: value of the ``retry-after`` header sent with ``rate_limit`` faults.
        hang_s: how long a ``timeout`` fault holds the reply back.
        host / port: where to listen; port 0 picks a free one.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. ``url`` is the Anthropic
    ``base_url``; ``openai_url`` (``url + "/v1"``) is the OpenAI one.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        policy: PairwisePolicy | None = None,
        retry_after: float = 0.1,
        hang_s: float = 5.0,
        host: str = "127.0.0.1",
        port: int = 0,
        record_bodies: bool = True,
    ) -> None:
        self.latency = latency
        self.policy: PairwisePolicy = policy or prefer_longer
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.host = host
        self.port = port
        self.record_bodies = record_bodies
        self.requests: list[RecordedRequest] = []
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeLLMServer:
        """Start serving in a daemon thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="fake-llm-server", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._start_error is not None:
            raise RuntimeError(f"fake LLM server failed to start: {self._start_error}")
        return self

    def stop(self) -> None:
        """Close every connection and stop the server thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(self._shutdown)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL for the Anthropic SDK (it appends ``/v1/messages``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_url(self) -> str:
        """Base URL for the OpenAI SDK (it appends ``/chat/completions``)."""
        return f"{self.url}/v1"

    # ------------------------------------------------------------------ control

    def inject(self, *faults: str, times: int = 1) -> None:
        """Queue ``faults`` (each repeated ``times``); each request consumes the next one."""
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS)}")
        with self._lock:
            for fault in faults:
                self._faults.extend([fault] * times)

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many queued faults no request has consumed yet."""
        with self._lock:
            return len(self._faults)

    @property
    def request_count(self) -> int:
        """Requests received since start (or the last :meth:`reset_counts`)."""
        with self._lock:
            return self._count

    def reset_counts(self) -> None:
        """Zero the request counter and forget recorded requests."""
        with self._lock:
            self._count = 0
            self.requests.clear()

    # ------------------------------------------------------------------ serving

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            # A large line limit: judge prompts carry whole responses in one request body.
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, limit=1 << 22, backlog=2048)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # surface bind errors to start()
            self._start_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _shutdown(self) -> None:
        assert self._loop is not None
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()

        async def _finish() -> None:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._loop.stop()  # type: ignore[union-attr]

        self._loop.create_task(_finish())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await self._read_body(reader, headers)
                status, extra_headers, payload, delay = self._respond(method, path, headers, body)
                if delay:
                    await asyncio.sleep(delay)
                reason = _REASONS.get(status, "Status")
                out = [
                    f"HTTP/1.1 {status} {reason}",
                    "content-type: application/json",
                    f"content-length: {len(payload)}",
                    "connection: keep-alive",
                ]
                out += [f"{k}: {v}" for k, v in extra_headers.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + payload)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return b"".join(chunks)
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
        return b""

    def _respond(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes, float]:
        """Status, extra headers, body bytes and delay for one request."""
        if path.startswith("/_fake/"):
            return self._control(path.split("?", 1)[0].rstrip("/"), body)
        with self._lock:
            self._count += 1
            fault = self._faults.popleft() if self._faults else None
            self.requests.append(
                RecordedRequest(method, path, headers, body if self.record_bodies else b"", fault)
            )
        route = path.split("?", 1)[0].rstrip("/")
        if route.endswith("/messages"):
            api = "anthropic"
        elif route.endswith("/chat/completions"):
            api = "openai"
        else:
            return 404, {}, _error_body("openai", "not_found_error", f"no route {path}"), self.latency
        try:
            request = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return 400, {}, _error_body(api, "invalid_request_error", "request body is not JSON"), 0.0

        if fault == "rate_limit":
            return (
                429,
                {"retry-after": f"{self.retry_after:g}"},
                _error_body(api, "rate_limit_error", "rate limited"),
                self.latency,
            )
        if fault == "server_error":
            return 500, {}, _error_body(api, "api_error", "internal server error"), self.latency
        if fault == "overloaded":
            return (
                (529 if api == "anthropic" else 503),
                {},
                _error_body(api, "overloaded_error", "overloaded"),
                self.latency,
            )
        if fault == "auth_error":
            return 401, {}, _error_body(api, "authentication_error", "invalid x-api-key"), self.latency
        if fault == "bad_request":
            echoed = headers.get("x-api-key") or headers.get("authorization", "")
            message = f"bad request (credentials: {echoed})"
            return 400, {}, _error_body(api, "invalid_request_error", message), 0.0
        if fault == "malformed_json":
            return 200, {}, b'{"id": "msg_broken", "type": "message", "content": [{"type": "te', self.latency

        verdict = self._verdict(request)
        delay = self.hang_s if fault == "timeout" else self.latency
        text: str | None = None
        if fault == "prose":
            text = f"Having compared both carefully, my verdict is: {json.dumps(verdict)}. Hope it helps."
        elif fault == "fenced":
            text = f"```json\n{json.dumps(verdict, indent=2)}\n```"
        elif fault == "malformed_verdict":
            text = '{"preferred": "a", "confidence": 0.9, "rationale": "unterminated'
        elif fault == "invalid_verdict":
            verdict = {"preferred": "c", "confidence": 7, "rationale": "out of schema"}
        elif fault == "no_verdict":
            text = "Both responses have merits and I would rather not pick one."
        if api == "anthropic":
            return 200, {}, _anthropic_reply(request, verdict, text), delay
        return 200, {}, _openai_reply(request, verdict, text), delay

    def _control(self, route: str, body: bytes) -> tuple[int, dict[str, str], bytes, float]:
        """Out-of-band control for a server in another process (not counted as requests).

        ``GET /_fake/stats`` -> ``{"requests": n, "pending_faults": m}``; ``POST /_fake/reset``
        zeroes the counter; ``POST /_fake/inject`` with ``{"faults": [...], "times": k}`` queues faults.
        """
        if route == "/_fake/reset":
            self.reset_counts()
        elif route == "/_fake/inject":
            try:
                spec = json.loads(body or b"{}")
                self.inject(*spec.get("faults", []), times=int(spec.get("times", 1)))
            except (ValueError, TypeError) as exc:
                return 400, {}, json.dumps({"error": str(exc)}).encode(), 0.0
        elif route != "/_fake/stats":
            return 404, {}, json.dumps({"error": f"no control route {route}"}).encode(), 0.0
        stats = {"requests": self.request_count, "pending_faults": self.pending_faults}
        return 200, {}, json.dumps(stats).encode(), 0.0

    def _verdict(self, request: dict[str, Any]) -> dict[str, Any]:
        prompt_text = _last_user_text(request)
        tags = {name: (m.group(1) if (m := rx.search(prompt_text)) else None) for name, rx in _TAG.items()}
        if tags["response_a"] is not None and tags["response_b"] is not None:
            preferred, confidence, rationale = self.policy(
                tags["prompt"] or "", tags["response_a"], tags["response_b"]
            )
            return {"preferred": preferred, "confidence": confidence, "rationale": rationale}
        if tags["response"] is not None and tags["criteria"] is not None:
            lines = [c.strip() for c in tags["criteria"].splitlines()]
            criteria = [c[1:].strip() for c in lines if c.startswith("-")]
            return {
                "scores": [
                    {
                        "criterion": c,
                        "score": rubric_score(tags["response"], c),
                        "rationale": f"Judged on {c}.",
                    }
                    for c in criteria
                ]
            }
        return {"error": "prompt has neither a pairwise nor a rubric layout"}


def _last_user_text(request: dict[str, Any]) -> str:
    for message in reversed(request.get("messages", [])):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _error_body(api: str, kind: str, message: str) -> bytes:
    if api == "anthropic":
        return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
    return json.dumps({"error": {"type": kind, "message": message, "code": None, "param": None}}).encode()


def _anthropic_reply(request: dict[str, Any], verdict: dict[str, Any], text: str | None) -> bytes:
    tools = request.get("tools") or []
    if text is None and tools:
        content = [{"type": "tool_use", "id": "toolu_fake01", "name": tools[0]["name"], "input": verdict}]
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": text if text is not None else json.dumps(verdict)}]
        stop = "end_turn"
    return json.dumps(
        {
            "id": "msg_fake01",
            "type": "message",
            "role": "assistant",
            "model": request.get("model", "fake"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 100, "output_tokens": 20},
        }
    ).encode()


def _openai_reply(request: dict[str, Any], verdict: dict[str, Any], text: str | None) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "refusal": None}
    tools = request.get("tools") or []
    finish = "stop"
    if text is None and tools:
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": "call_fake01",
                "type": "function",
                "function": {"name": tools[0]["function"]["name"], "arguments": json.dumps(verdict)},
            }
        ]
        finish = "tool_calls"
    else:
        message["content"] = text if text is not None else json.dumps(verdict)
    return json.dumps(
        {
            "id": "chatcmpl-fake01",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        }
    ).encode()


def main(argv: list[str] | None = None) -> None:
    """Run the server in the foreground: ``python -m provenir.testing.llm_server --latency 0.05``.

    Prints ``listening on <url>`` once bound, then serves until interrupted. Benchmarks run it
    in a separate process so the server's work does not compete with the client for the GIL,
    as with a real, remote API.
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    parser.add_argument("--retry-after", type=float, default=0.1)
    args = parser.parse_args(argv)
    server = FakeLLMServer(
        latency=args.latency,
        host=args.host,
        port=args.port,
        retry_after=args.retry_after,
        record_bodies=False,
    )
    server.start()
    print(f"listening on {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
