"""to_otel_attributes(): GenAI semantic-convention names, accepted as-is by a real OTel span."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from millstream.telemetry import TelemetryEventBuilder


def test_attributes_on_a_real_span() -> None:
    event = (
        TelemetryEventBuilder()
        .service("chat-api")
        .model("gpt-4o")
        .prompt("Hello", 12)
        .response("Hi", 7, "length")
        .latency(321.5)
        .cost(0.0042)
        .metadata(
            {"provider": "openai", "response_model": "gpt-4o-2024-08-06", "response_id": "r1"}
        )
        .build()
    )
    attributes = event.to_otel_attributes()
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.response.finish_reasons": ("length",),
        "gen_ai.provider.name": "openai",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "r1",
        "llm_sentinel.event_id": str(event.event_id),
        "llm_sentinel.service_name": "chat-api",
        "llm_sentinel.latency_ms": 321.5,
        "llm_sentinel.cost_usd": 0.0042,
    }
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("chat gpt-4o") as span:
        span.set_attributes(attributes)
    (finished,) = exporter.get_finished_spans()
    assert dict(finished.attributes or {}) == attributes  # every value a valid OTel type
    provider.shutdown()


def test_failed_call_has_error_type() -> None:
    event = (
        TelemetryEventBuilder()
        .service("s")
        .model("m")
        .prompt("p", 1)
        .response("", 0, "error")
        .latency(1)
        .cost(0)
        .add_error("Request timeout")
        .build()
    )
    assert event.to_otel_attributes()["error.type"] == "Request timeout"
    assert "gen_ai.provider.name" not in event.to_otel_attributes()
