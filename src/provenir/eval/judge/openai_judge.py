"""Judge on OpenAI's Chat Completions API through the official ``openai`` SDK.

The verdict is requested as structured output (``response_format`` with a strict JSON schema);
a reply that is nevertheless prose (compatible servers that ignore the schema) is parsed
tolerantly, and a tool call, if a server answers with one, is read too.
"""

from __future__ import annotations

from typing import Any

from provenir.core.redaction import redact_then_truncate
from provenir.eval.judge import prompts
from provenir.eval.judge.parsing import VerdictParseError
from provenir.eval.judge.remote import Method, RemoteJudge, Reply

_SCHEMAS = {
    "pairwise": ("pairwise_verdict", prompts.PAIRWISE_SCHEMA),
    "rubric": ("rubric_scores", prompts.RUBRIC_SCHEMA),
}


class OpenAIJudge(RemoteJudge):
    """Pairwise and rubric scoring via GPT models (or any Chat Completions compatible server).

    Args are those of :class:`AnthropicJudge`; the key comes from ``OPENAI_API_KEY`` by default
    and ``base_url`` (``None`` -> SDK default, which honours ``OPENAI_BASE_URL``) must include
    the ``/v1`` prefix, as with the SDK itself.

    Example::

        judge = OpenAIJudge(model="gpt-4o")
        scores = judge.score_rubric("What is LoRA?", response, criteria=["clarity", "conciseness"])
    """

    provider = "openai"
    default_api_key_env = "OPENAI_API_KEY"

    def __init__(self, model: str = "gpt-4o", **kwargs: Any) -> None:
        super().__init__(model, **kwargs)

    def _sdk(self) -> Any:
        import openai

        return openai

    def _make_client(self, api_key: str) -> Any:
        openai = self._sdk()
        kwargs: dict[str, Any] = {"api_key": api_key, "max_retries": 0, "timeout": self.retry.timeout}
        if self.base_url:
            kwargs["base_url"] = self.base_url
        return openai.OpenAI(**kwargs)

    def _send(self, method: Method, user_message: str) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": prompts.SYSTEM_PROMPT},
                {"role": "user", "content": user_message},
            ],
            "max_completion_tokens": self.max_tokens,
            "timeout": self.retry.timeout,
        }
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.structured:
            name, schema = _SCHEMAS[method]
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            }
        return self._client.chat.completions.create(**kwargs)

    def _extract(self, response: Any, method: Method) -> Reply:
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise VerdictParseError("reply has no choices")
        message = choices[0].message
        if getattr(message, "refusal", None):
            raise VerdictParseError(f"the model refused: {redact_then_truncate(message.refusal, 200)}")
        for call in getattr(message, "tool_calls", None) or []:
            function = getattr(call, "function", None)
            if function is not None:
                return Reply(data=None, text=function.arguments or "")
        return Reply(data=None, text=message.content or "")
