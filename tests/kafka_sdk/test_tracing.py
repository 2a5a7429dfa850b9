"""Tracing with a real OpenTelemetry SDK (spans recorded in memory): produce and consume spans,
the W3C trace context carried in record headers, and a process span that continues the
producer's trace. Without OpenTelemetry installed everything still works and traces nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from millstream.kafka import StreamlineClient, StreamlineTracing, TopicPartition

from .brokers import Broker
from .helpers import make_topic

_EXPORTER = InMemorySpanExporter()
_INSTALLED: list[TracerProvider] = []


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Every span the global tracer provider finishes (installed once per process: the
    global provider can be set only once)."""
    if not _INSTALLED:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        _INSTALLED.append(provider)
    _EXPORTER.clear()
    return _EXPORTER


async def test_produce_consume_and_process_spans_share_one_trace(
    broker: Broker, name: str, spans: InMemorySpanExporter
) -> None:
    async with StreamlineClient(
        broker.bootstrap, http_url=broker.http_url or "", enable_telemetry=True
    ) as client:
        assert client.tracing is not None
        assert client.tracing.is_enabled
        await make_topic(client, name)
        await client.produce(name, b"traced", headers={"app": b"kept"})
        async with client.consumer() as consumer:
            consumer.assign([TopicPartition(name, 0)])
            await consumer.seek_to_beginning()
            records = []
            for _ in range(20):
                records += await consumer.poll(timeout_ms=500)
                if records:
                    break
        [record] = records
        assert record.headers["app"] == b"kept"
        traceparent = record.headers["traceparent"].decode()
        async with client.tracing.trace_process(
            record.topic, record.partition, record.offset, record.headers
        ):
            pass

    finished = spans.get_finished_spans()
    produce = next(s for s in finished if s.name == f"{name} produce")
    process = next(s for s in finished if s.name == f"{name} process")
    consume = [s for s in finished if s.name == f"{name} consume"]
    assert consume
    assert consume[0].kind is SpanKind.CONSUMER
    assert produce.kind is SpanKind.PRODUCER
    assert produce.attributes is not None
    assert produce.attributes["messaging.system"] == "kafka"
    assert produce.attributes["messaging.destination.name"] == name
    assert produce.attributes["messaging.operation"] == "produce"
    # W3C traceparent: version-traceid-spanid-flags, naming the produce span
    version, trace_id, span_id, _flags = traceparent.split("-")
    assert version == "00"
    assert int(trace_id, 16) == produce.context.trace_id
    assert int(span_id, 16) == produce.context.span_id
    assert process.context.trace_id == produce.context.trace_id
    assert process.parent is not None
    assert process.parent.span_id == produce.context.span_id
    assert process.attributes is not None
    assert process.attributes["messaging.kafka.message.offset"] == record.offset


async def test_failed_operations_mark_their_span(spans: InMemorySpanExporter) -> None:
    tracing = StreamlineTracing()
    with pytest.raises(ValueError, match="boom"):
        async with tracing.trace_produce("t", {}):
            raise ValueError("boom")

    @tracing.traced_consume("t")
    async def handler() -> int:
        return 7

    assert await handler() == 7
    failed, consumed = spans.get_finished_spans()
    assert not failed.status.is_ok
    assert failed.events[0].name == "exception"
    assert consumed.name == "t consume"


def test_disabled_tracing_records_nothing(spans: InMemorySpanExporter) -> None:
    tracing = StreamlineTracing(enabled=False)
    headers: dict[str, bytes] = {}
    with tracing.trace_produce_sync("t", headers):
        pass
    assert headers == {}
    assert spans.get_finished_spans() == ()


def test_without_opentelemetry_everything_is_a_no_op(broker: Broker) -> None:
    """A fresh interpreter in which ``import opentelemetry`` fails, as without the extra."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["opentelemetry"] = None  # makes every opentelemetry import fail
        import asyncio, logging
        logging.basicConfig(level=logging.WARNING)
        from millstream.kafka import StreamlineClient, StreamlineTracing, TopicPartition
        from millstream.kafka import telemetry

        assert not telemetry.OTEL_AVAILABLE
        assert not StreamlineTracing().is_enabled
        assert not StreamlineTracing(enabled=True).is_enabled  # warns, stays off

        async def main():
            async with StreamlineClient({broker.bootstrap!r}, enable_telemetry=True) as client:
                async with client.tracing.trace_process("t", 0, 0, {{}}):
                    pass
                meta = await client.produce("no-otel", b"v", headers={{"h": b"1"}})
                async with client.consumer() as consumer:
                    consumer.assign([TopicPartition("no-otel", meta.partition)])
                    await consumer.seek(TopicPartition("no-otel", meta.partition), meta.offset)
                    records = []
                    while not records:
                        records = await consumer.poll(timeout_ms=500)
                assert records[0].headers == {{"h": b"1"}}, records[0].headers
            print("ok")

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert "opentelemetry-api is not installed" in done.stderr
