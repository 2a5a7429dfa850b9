"""Telemetry events as OpenTelemetry GenAI span attributes (semantic conventions ``gen_ai.*``).

For users who also export traces: ``span.set_attributes(event.to_otel_attributes())``. Fields
the conventions do not cover (cost, the Sentinel ids) go under ``llm_sentinel.*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._events import TelemetryEvent

__all__ = ["OtelValue", "otel_attributes"]

OtelValue = str | int | float | bool | tuple[str, ...]

# metadata keys the instrumentation helpers set, and the attribute each one becomes
_METADATA_ATTRIBUTES = {
    "provider": "gen_ai.provider.name",
    "operation": "gen_ai.operation.name",
    "response_model": "gen_ai.response.model",
    "model_version": "gen_ai.response.model",  # the upstream OpenAI example's key
    "response_id": "gen_ai.response.id",
}


def otel_attributes(event: TelemetryEvent) -> dict[str, OtelValue]:
    """``gen_ai.request.model``, ``gen_ai.usage.input_tokens``/``output_tokens``,
    ``gen_ai.response.finish_reasons``, ``gen_ai.operation.name`` (``chat`` unless the metadata
    says otherwise), provider/response model/id from metadata, ``error.type`` for failed calls."""
    attributes: dict[str, OtelValue] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": event.model,
        "gen_ai.usage.input_tokens": event.prompt.tokens,
        "gen_ai.usage.output_tokens": event.response.tokens,
        "gen_ai.response.finish_reasons": (event.response.finish_reason,),
        "llm_sentinel.event_id": str(event.event_id),
        "llm_sentinel.service_name": event.service_name,
        "llm_sentinel.latency_ms": float(event.latency_ms),
        "llm_sentinel.cost_usd": float(event.cost_usd),
    }
    for key, name in _METADATA_ATTRIBUTES.items():
        value = event.metadata.get(key)
        if value:
            attributes[name] = value
    if event.errors:
        attributes["error.type"] = event.metadata.get("error_type") or event.errors[0]
    return attributes
