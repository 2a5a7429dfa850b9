"""Any OpenAI-compatible Chat Completions API (``POST {base}/chat/completions``).

Base URL semantics as the official SDK: ``OPENAI_BASE_URL`` (default
``https://api.openai.com/v1``) already ends in ``/v1``; ``/chat/completions`` is appended.
Streams ask for ``stream_options.include_usage`` so the last chunk carries the token counts,
and end with ``data: [DONE]``.
"""

from __future__ import annotations

from typing import Any

import orjson

from millstream.client._sse import SSEEvent

from ._provider import (
    Finished,
    HttpProvider,
    ProviderError,
    ProviderEvent,
    ProviderRequest,
    StreamDecoder,
    TextDelta,
)

__all__ = ["OPENAI_DEFAULT_BASE_URL", "OpenAIProvider"]

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider(HttpProvider):
    name = "openai"
    default_base_url = OPENAI_DEFAULT_BASE_URL
    path = "/chat/completions"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"}

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        messages = list(request.messages)
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        body: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def parse_complete(self, data: Any) -> list[ProviderEvent]:
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return [
            TextDelta(choice["message"].get("content") or ""),
            Finished(
                choice.get("finish_reason") or "stop",
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
            ),
        ]

    def stream_decoder(self) -> StreamDecoder:
        return _OpenAIDecoder()


class _OpenAIDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.done = False

    def decode(self, event: SSEEvent) -> list[ProviderEvent]:
        if event.data.strip() == "[DONE]":
            self.done = True
            return [self._finished()]
        data = orjson.loads(event.data)
        if "error" in data:
            error = data["error"] or {}
            raise ProviderError(
                f"openai stream error: {error.get('message', error)}", kind="server"
            )
        usage = data.get("usage")
        if usage:
            self.input_tokens = usage.get("prompt_tokens")
            self.output_tokens = usage.get("completion_tokens")
        out: list[ProviderEvent] = []
        for choice in data.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                out.append(TextDelta(content))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def _finished(self) -> Finished:
        return Finished(self.finish_reason or "stop", self.input_tokens, self.output_tokens)

    def finish(self) -> Finished | None:
        # Some compatible servers end without [DONE] after the finish_reason chunk.
        return self._finished() if self.finish_reason is not None else None
