"""The Anthropic Messages API (``POST {base}/v1/messages``), streamed and not.

Base URL semantics as the official SDK: ``ANTHROPIC_BASE_URL`` (default
``https://api.anthropic.com``) is the API root and ``/v1/messages`` is appended.
Stream events: ``message_start`` (input tokens), ``content_block_delta``/``text_delta``,
``message_delta`` (stop reason, output tokens), ``message_stop``; ``error`` events fail it.
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

__all__ = ["ANTHROPIC_DEFAULT_BASE_URL", "ANTHROPIC_VERSION", "AnthropicProvider"]

ANTHROPIC_DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


class AnthropicProvider(HttpProvider):
    name = "anthropic"
    default_base_url = ANTHROPIC_DEFAULT_BASE_URL
    path = "/v1/messages"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION}

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": request.messages,
        }
        if request.system:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stream:
            body["stream"] = True
        return body

    def parse_complete(self, data: Any) -> list[ProviderEvent]:
        text = "".join(
            block.get("text", "") for block in data["content"] if block.get("type") == "text"
        )
        usage = data.get("usage") or {}
        return [
            TextDelta(text),
            Finished(
                _FINISH.get(data.get("stop_reason") or "", "stop"),
                usage.get("input_tokens"),
                usage.get("output_tokens"),
            ),
        ]

    def stream_decoder(self) -> StreamDecoder:
        return _AnthropicDecoder()


class _AnthropicDecoder(StreamDecoder):
    def __init__(self) -> None:
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.stop_reason: str | None = None

    def decode(self, event: SSEEvent) -> list[ProviderEvent]:
        name = event.event
        if name == "ping":
            return []
        data = orjson.loads(event.data)
        kind = data.get("type", name)
        if kind == "content_block_delta":
            delta = data["delta"]
            if delta.get("type") == "text_delta":
                return [TextDelta(delta["text"])]
            return []
        if kind == "message_start":
            usage = data["message"].get("usage") or {}
            self.input_tokens = usage.get("input_tokens")
            self.output_tokens = usage.get("output_tokens")
        elif kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            usage = data.get("usage") or {}
            if usage.get("output_tokens") is not None:
                self.output_tokens = usage["output_tokens"]
            if usage.get("input_tokens") is not None:
                self.input_tokens = usage["input_tokens"]
        elif kind == "message_stop":
            finish = _FINISH.get(self.stop_reason or "", "stop")
            return [Finished(finish, self.input_tokens, self.output_tokens)]
        elif kind == "error":
            error = data.get("error") or {}
            error_type = str(error.get("type", "api_error"))
            raise ProviderError(
                f"anthropic stream error: {error.get('message', error_type)}",
                kind="overloaded" if error_type == "overloaded_error" else "server",
            )
        return []
