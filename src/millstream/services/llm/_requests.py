"""Parsing and validating request bodies: the seed's shapes plus what OpenAI clients send.

Chat: ``{messages: [{role, content}], model?, max_tokens?, timeout? (1-300 s, default 30),
stream?, temperature?, project_id? (ignored: the key decides)}``. ``content`` may be a string
or a list of ``{"type": "text", "text"}`` parts; ``system``/``developer`` messages become the
system prompt. ``max_completion_tokens`` is accepted for ``max_tokens``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import orjson

from ._errors import GatewayError, bad_request

__all__ = ["BatchBody", "ChatBody", "parse_batch", "parse_chat", "parse_json", "parse_route"]

MIN_TIMEOUT, MAX_TIMEOUT, DEFAULT_TIMEOUT = 1.0, 300.0, 30.0
MAX_MESSAGES = 10_000
MAX_BATCH = 1_000


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise bad_request("the body must be a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class ChatBody:
    messages: list[dict[str, str]]
    system: str | None
    model: str  # "auto", a tier, or a provider model id
    max_tokens: int | None
    timeout: float
    stream: bool
    temperature: float | None

    @property
    def prompt_text(self) -> str:
        """The last user message (what ``auto`` routing judges)."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

    @property
    def context_text(self) -> str:
        return (self.system or "") + "".join(m["content"] for m in self.messages)

    def fingerprint(self) -> str:
        """What an idempotent retry must repeat (``stream`` and ``timeout`` may differ)."""
        canonical = {
            "messages": self.messages,
            "system": self.system,
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise bad_request(f"{where}: only text content parts are supported")
            text = part.get("text")
            if not isinstance(text, str):
                raise bad_request(f"{where}: a text part needs a string 'text'")
            parts.append(text)
        return "".join(parts)
    raise bad_request(f"{where}: 'content' must be a string or a list of text parts")


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad_request(f"'{name}' must be a number")
    if not low <= value <= high:
        raise bad_request(f"'{name}' must be between {low:g} and {high:g}")
    return float(value)


def _timeout(data: dict[str, Any]) -> float:
    value = data.get("timeout")
    if value is None:
        return DEFAULT_TIMEOUT
    return _number(value, "timeout", MIN_TIMEOUT, MAX_TIMEOUT)


def _model(data: dict[str, Any]) -> str:
    model = data.get("model")
    if model is None:
        return "auto"
    if not isinstance(model, str) or not model.strip() or len(model) > 200:
        raise bad_request("'model' must be a non-empty string")
    return model.strip()


def _max_tokens(data: dict[str, Any], limit: int) -> int | None:
    value = data.get("max_tokens", data.get("max_completion_tokens"))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise bad_request(f"'max_tokens' must be an integer from 1 to {limit}")
    return value


def parse_chat(data: dict[str, Any], *, max_tokens_limit: int) -> ChatBody:
    raw = data.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad_request("'messages' must be a non-empty list of {role, content}")
    if len(raw) > MAX_MESSAGES:
        raise bad_request(f"at most {MAX_MESSAGES} messages")
    messages: list[dict[str, str]] = []
    system: list[str] = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where} must be an object with 'role' and 'content'")
        role = message.get("role")
        text = _text(message.get("content"), where)
        if role in ("system", "developer"):
            system.append(text)
        elif role in ("user", "assistant"):
            messages.append({"role": role, "content": text})
        else:
            raise bad_request(f"{where}: role must be user, assistant or system")
    if not messages:
        raise bad_request("'messages' needs at least one user or assistant message")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false")
    temperature = data.get("temperature")
    if temperature is not None:
        temperature = _number(temperature, "temperature", 0.0, 2.0)
    return ChatBody(
        messages=messages,
        system="\n\n".join(system) or None,
        model=_model(data),
        max_tokens=_max_tokens(data, max_tokens_limit),
        timeout=_timeout(data),
        stream=stream,
        temperature=temperature,
    )


@dataclass(frozen=True, slots=True)
class BatchBody:
    items: list[tuple[str | None, str]]  # (id, prompt)
    model: str
    timeout: float


def parse_batch(data: dict[str, Any]) -> BatchBody:
    raw = data.get("prompts")
    if not isinstance(raw, list) or not raw:
        raise bad_request("'prompts' must be a non-empty list of {prompt, id?}")
    if len(raw) > MAX_BATCH:
        raise GatewayError(413, "batch_too_large", f"at most {MAX_BATCH} prompts per batch")
    items: list[tuple[str | None, str]] = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            items.append((str(index), item))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str):
            raise bad_request(f"prompts[{index}] must be an object with a string 'prompt'")
        item_id = item.get("id")
        items.append((None if item_id is None else str(item_id), item["prompt"]))
    return BatchBody(items, _model(data), _timeout(data))


def parse_route(data: dict[str, Any]) -> tuple[str, int | None]:
    prompt = data.get("prompt")
    if not isinstance(prompt, str):
        raise bad_request("'prompt' must be a string")
    size = data.get("context_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise bad_request("'context_size' must be a non-negative integer")
    return prompt, size
