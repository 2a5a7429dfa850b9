"""A fluent builder for ``TelemetryEvent``: chain setters, then ``build()``."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from ._errors import ValidationError
from ._events import PromptInfo, ResponseInfo, TelemetryEvent, utc_now

__all__ = ["TelemetryEventBuilder"]


class TelemetryEventBuilder:
    """Build an event step by step; ``build()`` names the first missing required field.

    >>> event = (TelemetryEventBuilder()
    ...     .service("my-service").model("gpt-4")
    ...     .prompt(text="Hello", tokens=5)
    ...     .response(text="Hi!", tokens=10, finish_reason="stop")
    ...     .latency(150.5).cost(0.001)
    ...     .build())
    >>> event.total_tokens()
    15
    """

    def __init__(self) -> None:
        self._event_id: UUID = uuid4()
        self._timestamp: datetime = utc_now()
        self._service_name: str | None = None
        self._model: str | None = None
        self._trace_id: str | None = None
        self._span_id: str | None = None
        self._prompt: PromptInfo | None = None
        self._response: ResponseInfo | None = None
        self._latency_ms: float | None = None
        self._cost_usd: float | None = None
        self._metadata: dict[str, str] = {}
        self._errors: list[str] = []

    def event_id(self, event_id: UUID) -> TelemetryEventBuilder:
        self._event_id = event_id
        return self

    def timestamp(self, timestamp: datetime) -> TelemetryEventBuilder:
        self._timestamp = timestamp
        return self

    def service(self, service_name: str) -> TelemetryEventBuilder:
        self._service_name = service_name
        return self

    def model(self, model: str) -> TelemetryEventBuilder:
        self._model = model
        return self

    def trace_id(self, trace_id: str) -> TelemetryEventBuilder:
        self._trace_id = trace_id
        return self

    def span_id(self, span_id: str) -> TelemetryEventBuilder:
        self._span_id = span_id
        return self

    def prompt(
        self, text: str, tokens: int, embedding: list[float] | None = None
    ) -> TelemetryEventBuilder:
        self._prompt = PromptInfo(text=text, tokens=tokens, embedding=embedding)
        return self

    def prompt_info(self, prompt: PromptInfo) -> TelemetryEventBuilder:
        self._prompt = prompt
        return self

    def response(
        self, text: str, tokens: int, finish_reason: str, embedding: list[float] | None = None
    ) -> TelemetryEventBuilder:
        self._response = ResponseInfo(
            text=text, tokens=tokens, finish_reason=finish_reason, embedding=embedding
        )
        return self

    def response_info(self, response: ResponseInfo) -> TelemetryEventBuilder:
        self._response = response
        return self

    def latency(self, latency_ms: float) -> TelemetryEventBuilder:
        self._latency_ms = latency_ms
        return self

    def cost(self, cost_usd: float) -> TelemetryEventBuilder:
        self._cost_usd = cost_usd
        return self

    def metadata(self, metadata: dict[str, str]) -> TelemetryEventBuilder:
        """Replace the metadata (copied)."""
        self._metadata = dict(metadata)
        return self

    def add_metadata(self, key: str, value: str) -> TelemetryEventBuilder:
        self._metadata[key] = value
        return self

    def errors(self, errors: list[str]) -> TelemetryEventBuilder:
        """Replace the error list (copied)."""
        self._errors = list(errors)
        return self

    def add_error(self, error: str) -> TelemetryEventBuilder:
        self._errors.append(error)
        return self

    def build(self) -> TelemetryEvent:
        """The event; ``ValidationError("<field> is required")`` for the first one missing."""
        if self._service_name is None:
            raise ValidationError("service_name is required")
        if self._model is None:
            raise ValidationError("model is required")
        if self._prompt is None:
            raise ValidationError("prompt is required")
        if self._response is None:
            raise ValidationError("response is required")
        if self._latency_ms is None:
            raise ValidationError("latency_ms is required")
        if self._cost_usd is None:
            raise ValidationError("cost_usd is required")
        return TelemetryEvent(
            event_id=self._event_id,
            timestamp=self._timestamp,
            service_name=self._service_name,
            model=self._model,
            trace_id=self._trace_id,
            span_id=self._span_id,
            prompt=self._prompt,
            response=self._response,
            latency_ms=self._latency_ms,
            cost_usd=self._cost_usd,
            metadata=dict(self._metadata),
            errors=list(self._errors),
        )
