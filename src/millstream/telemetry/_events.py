"""The telemetry event: one LLM call (prompt, response, latency, cost, errors, trace ids).

The wire format is the upstream SDK's exactly: ``json.dumps(event.to_dict())`` encoded as UTF-8,
with keys in the order of ``to_dict`` and the timestamp as naive-UTC ``isoformat()`` plus ``Z``,
so existing consumers of the topic (the Rust core, the upstream SDK's ``from_dict``) keep working.
Unlike upstream, values that would make the JSON invalid or the core reject the event (NaN or
infinite numbers, non-string metadata, booleans as token counts) are refused up front.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from ._errors import ValidationError

__all__ = [
    "MAX_TEXT_LENGTH",
    "PromptInfo",
    "ResponseInfo",
    "TelemetryEvent",
    "event_dict",
    "format_timestamp",
    "parse_timestamp",
    "utc_now",
]

MAX_TEXT_LENGTH = 100_000  # characters of prompt or response text (the Rust core's limit)


def utc_now() -> datetime:
    """The current time as a naive UTC datetime (what upstream's ``datetime.utcnow()`` gave)."""
    return datetime.now(UTC).replace(tzinfo=None)


def format_timestamp(value: datetime) -> str:
    """``2024-01-01T00:00:00.123456Z``: naive values are taken as UTC, aware ones converted."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def parse_timestamp(text: str) -> datetime:
    """The inverse of ``format_timestamp`` (also accepts ``+00:00`` and other offsets)."""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"timestamp is not ISO 8601: {text!r}") from exc
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _check_tokens(value: object, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{name} must be an integer")
    if value < 0:
        raise ValidationError(f"{name} must be >= 0")


def _check_text(value: object, name: str) -> None:
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string")
    if len(value) > MAX_TEXT_LENGTH:
        raise ValidationError(f"{name} must be <= {MAX_TEXT_LENGTH} characters")


def _check_embedding(value: object, name: str) -> None:
    if value is None:
        return
    if not isinstance(value, list | tuple):
        raise ValidationError(f"{name} must be a list of numbers or None")
    for item in value:
        if not isinstance(item, int | float) or isinstance(item, bool) or not math.isfinite(item):
            raise ValidationError(f"{name} must contain only finite numbers")


def _check_amount(value: object, name: str) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValidationError(f"{name} must be a number")
    if not math.isfinite(value):
        raise ValidationError(f"{name} must be finite")
    if value < 0:
        raise ValidationError(f"{name} must be >= 0")


def _prompt_dict(text: str, tokens: int, embedding: list[float] | None) -> dict[str, Any]:
    return {"text": text, "tokens": tokens, "embedding": embedding}


def _response_dict(
    text: str, tokens: int, finish_reason: str, embedding: list[float] | None
) -> dict[str, Any]:
    return {"text": text, "tokens": tokens, "finish_reason": finish_reason, "embedding": embedding}


def event_dict(
    event_id: str,
    timestamp: str,
    service_name: str,
    trace_id: str | None,
    span_id: str | None,
    model: str,
    prompt_text: str,
    prompt_tokens: int,
    prompt_embedding: list[float] | None,
    response_text: str,
    response_tokens: int,
    finish_reason: str,
    response_embedding: list[float] | None,
    latency_ms: float,
    cost_usd: float,
    metadata: dict[str, str],
    errors: list[str],
) -> dict[str, Any]:
    """The JSON object of the wire format, keys in wire order (the one place it is written)."""
    return {
        "event_id": event_id,
        "timestamp": timestamp,
        "service_name": service_name,
        "trace_id": trace_id,
        "span_id": span_id,
        "model": model,
        "prompt": _prompt_dict(prompt_text, prompt_tokens, prompt_embedding),
        "response": _response_dict(
            response_text, response_tokens, finish_reason, response_embedding
        ),
        "latency_ms": latency_ms,
        "cost_usd": cost_usd,
        "metadata": metadata,
        "errors": errors,
    }


@dataclass
class PromptInfo:
    """The prompt of one call: its text (at most 100,000 characters), token count, embedding."""

    text: str
    tokens: int
    embedding: list[float] | None = None

    def __post_init__(self) -> None:
        _check_tokens(self.tokens, "tokens")
        _check_text(self.text, "text")
        _check_embedding(self.embedding, "embedding")

    def to_dict(self) -> dict[str, Any]:
        return _prompt_dict(self.text, self.tokens, self.embedding)


@dataclass
class ResponseInfo:
    """The model's answer: text, token count, why it stopped (``"stop"``, ``"length"``, ...)."""

    text: str
    tokens: int
    finish_reason: str
    embedding: list[float] | None = None

    def __post_init__(self) -> None:
        _check_tokens(self.tokens, "tokens")
        _check_text(self.text, "text")
        if not isinstance(self.finish_reason, str):
            raise ValidationError("finish_reason must be a string")
        _check_embedding(self.embedding, "embedding")

    def to_dict(self) -> dict[str, Any]:
        return _response_dict(self.text, self.tokens, self.finish_reason, self.embedding)


@dataclass
class TelemetryEvent:
    """One LLM request/response cycle, as sent to the telemetry topic.

    >>> event = TelemetryEvent(
    ...     service_name="chat-api", model="gpt-4o",
    ...     prompt=PromptInfo(text="Hi", tokens=2),
    ...     response=ResponseInfo(text="Hello!", tokens=3, finish_reason="stop"),
    ...     latency_ms=120.5, cost_usd=0.0001)
    >>> event.total_tokens()
    5
    """

    service_name: str
    model: str
    prompt: PromptInfo
    response: ResponseInfo
    latency_ms: float
    cost_usd: float
    event_id: UUID = field(default_factory=uuid4)
    timestamp: datetime = field(default_factory=utc_now)
    trace_id: str | None = None
    span_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_amount(self.latency_ms, "latency_ms")
        _check_amount(self.cost_usd, "cost_usd")
        if not isinstance(self.service_name, str) or not self.service_name:
            raise ValidationError("service_name cannot be empty")
        if not isinstance(self.model, str) or not self.model:
            raise ValidationError("model cannot be empty")
        if not isinstance(self.prompt, PromptInfo):
            raise ValidationError("prompt must be a PromptInfo")
        if not isinstance(self.response, ResponseInfo):
            raise ValidationError("response must be a ResponseInfo")
        event_id: object = self.event_id
        if isinstance(event_id, str):
            try:
                self.event_id = UUID(event_id)
            except ValueError as exc:
                raise ValidationError(f"event_id is not a UUID: {event_id!r}") from exc
        elif not isinstance(event_id, UUID):
            raise ValidationError("event_id must be a UUID")
        if not isinstance(self.timestamp, datetime):
            raise ValidationError("timestamp must be a datetime")
        for name in ("trace_id", "span_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValidationError(f"{name} must be a string or None")
        if not isinstance(self.metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.metadata.items()
        ):
            raise ValidationError("metadata must map strings to strings")
        if not isinstance(self.errors, list) or not all(isinstance(e, str) for e in self.errors):
            raise ValidationError("errors must be a list of strings")

    def has_errors(self) -> bool:
        """True when the call reported any error."""
        return len(self.errors) > 0

    def total_tokens(self) -> int:
        """Prompt plus response tokens."""
        return self.prompt.tokens + self.response.tokens

    def error_rate(self) -> float:
        """1.0 for a call with errors, else 0.0 (detectors average it over a window)."""
        return 1.0 if self.errors else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The event as the JSON object of the wire format (keys in wire order)."""
        prompt, response = self.prompt, self.response
        return event_dict(
            str(self.event_id),
            format_timestamp(self.timestamp),
            self.service_name,
            self.trace_id,
            self.span_id,
            self.model,
            prompt.text,
            prompt.tokens,
            prompt.embedding,
            response.text,
            response.tokens,
            response.finish_reason,
            response.embedding,
            self.latency_ms,
            self.cost_usd,
            self.metadata,
            self.errors,
        )

    def to_json(self) -> bytes:
        """The exact bytes the clients send: ``json.dumps(to_dict())`` in UTF-8."""
        return json.dumps(self.to_dict()).encode("utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TelemetryEvent:
        """Parse the wire object; any missing or invalid field raises ``ValidationError``."""
        if not isinstance(data, Mapping):
            raise ValidationError("event must be a JSON object")
        try:
            prompt = data["prompt"]
            response = data["response"]
            if not isinstance(prompt, Mapping) or not isinstance(response, Mapping):
                raise ValidationError("prompt and response must be objects")
            timestamp = data["timestamp"]
            if not isinstance(timestamp, str):
                raise ValidationError("timestamp must be a string")
            metadata = data.get("metadata")
            errors = data.get("errors")
            return cls(
                event_id=data["event_id"],
                timestamp=parse_timestamp(timestamp),
                service_name=data["service_name"],
                trace_id=data.get("trace_id"),
                span_id=data.get("span_id"),
                model=data["model"],
                prompt=PromptInfo(
                    text=prompt["text"], tokens=prompt["tokens"], embedding=prompt.get("embedding")
                ),
                response=ResponseInfo(
                    text=response["text"],
                    tokens=response["tokens"],
                    finish_reason=response["finish_reason"],
                    embedding=response.get("embedding"),
                ),
                latency_ms=data["latency_ms"],
                cost_usd=data["cost_usd"],
                metadata={} if metadata is None else metadata,
                errors=[] if errors is None else errors,
            )
        except KeyError as exc:
            raise ValidationError(f"{exc.args[0]} is required") from None

    @classmethod
    def from_json(cls, data: bytes | str) -> TelemetryEvent:
        """Parse the wire bytes (``ValidationError`` for anything that is not a valid event)."""
        try:
            parsed = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"event is not valid JSON: {exc}") from exc
        return cls.from_dict(parsed)

    def to_otel_attributes(self) -> dict[str, str | int | float | bool | tuple[str, ...]]:
        """OpenTelemetry GenAI span attributes for this call (see ``otel_attributes``)."""
        from ._otel import otel_attributes

        return otel_attributes(self)
