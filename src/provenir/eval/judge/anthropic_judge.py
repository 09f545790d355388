"""Judge on Anthropic's Messages API through the official ``anthropic`` SDK.

The verdict comes back as a forced tool call whose input follows the verdict JSON schema; a
text reply (a proxy without tool support, or ``structured=False``) is parsed tolerantly.
"""

from __future__ import annotations

from typing import Any

from provenir.eval.judge import prompts
from provenir.eval.judge.remote import Method, RemoteJudge, Reply

_TOOLS: dict[str, dict[str, Any]] = {
    "pairwise": {
        "name": prompts.PAIRWISE_TOOL,
        "description": "Record which response is better.",
        "input_schema": prompts.PAIRWISE_SCHEMA,
    },
    "rubric": {
        "name": prompts.RUBRIC_TOOL,
        "description": "Record one score per criterion.",
        "input_schema": prompts.RUBRIC_SCHEMA,
    },
}


class AnthropicJudge(RemoteJudge):
    """Pairwise and rubric scoring via Claude.

    Args:
        model: Claude model id.
        base_url: API endpoint; ``None`` uses the SDK default (which honours ``ANTHROPIC_BASE_URL``).
        api_key_env: environment variable holding the key (default ``ANTHROPIC_API_KEY``).
        position_swap: judge every pair in both orders and reconcile (see ``position.py``).
        structured: ask for the verdict as a forced tool call (else as JSON text).
        temperature: sampling temperature; ``None`` (default) leaves the model's default, because
            the installed SDK's ``messages.create`` no longer takes one (it is sent raw when set).
        max_tokens: reply budget per call.
        max_concurrency: pairs in flight in :meth:`score_pairwise_batch`.
        retry: :class:`RetryPolicy` for 429 / 5xx / timeouts / unparseable replies.

    Example::

        from provenir.eval.judge import AnthropicJudge, CachedJudge

        judge = CachedJudge(AnthropicJudge(model="claude-haiku-4-5-20251001"))
        pref = judge.score_pairwise("What is LoRA?", response_a, response_b)
    """

    provider = "anthropic"
    default_api_key_env = "ANTHROPIC_API_KEY"

    def __init__(
        self, model: str = "claude-haiku-4-5-20251001", *, temperature: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(model, temperature=temperature, **kwargs)

    def _sdk(self) -> Any:
        import anthropic

        return anthropic

    def _make_client(self, api_key: str) -> Any:
        anthropic = self._sdk()
        # SDK retries off: RemoteJudge retries with shared 429 backpressure and counts attempts.
        kwargs: dict[str, Any] = {"api_key": api_key, "max_retries": 0, "timeout": self.retry.timeout}
        if self.base_url:
            kwargs["base_url"] = self.base_url
        return anthropic.Anthropic(**kwargs)

    def _send(self, method: Method, user_message: str) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": prompts.SYSTEM_PROMPT,
            "messages": [{"role": "user", "content": user_message}],
            "timeout": self.retry.timeout,
        }
        if self.temperature is not None:
            # This SDK's create() has no temperature parameter; send it raw for endpoints that take it.
            kwargs["extra_body"] = {"temperature": self.temperature}
        if self.structured:
            tool = _TOOLS[method]
            kwargs["tools"] = [tool]
            kwargs["tool_choice"] = {"type": "tool", "name": tool["name"]}
        return self._client.messages.create(**kwargs)

    def _extract(self, response: Any, method: Method) -> Reply:
        texts: list[str] = []
        for block in getattr(response, "content", None) or []:
            kind = getattr(block, "type", None)
            if kind == "tool_use" and getattr(block, "name", None) == _TOOLS[method]["name"]:
                return Reply(data=block.input, text="")
            if kind == "text":
                texts.append(block.text)
        return Reply(data=None, text="\n".join(texts))
