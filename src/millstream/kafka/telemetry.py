"""OpenTelemetry spans for producing, consuming and processing records, with the W3C trace
context carried in record headers (``traceparent``, ``tracestate``), so a consumer's processing
span continues the producer's trace.

OpenTelemetry is optional (``pip install 'millstream[tracing]'``). Without it, or with
``enabled=False``, every method is a no-op that costs one attribute check. The client turns it
on with ``ClientConfig(enable_telemetry=True)``: each ``send`` then opens a ``"{topic} produce"``
span and writes its context into the record's headers, and each ``poll`` a ``"{topic} consume"``
span. Wrap your own processing in ``trace_process`` to link it to the producer's span.
Span names, kinds and attributes follow OpenTelemetry's messaging conventions
(``messaging.system``, ``messaging.destination.name``, ``messaging.operation``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import Any, ParamSpec, TypeVar

__all__ = ["MESSAGING_SYSTEM", "OTEL_AVAILABLE", "StreamlineTracing"]

logger = logging.getLogger("millstream.kafka")

P = ParamSpec("P")
T = TypeVar("T")

#: The ``messaging.system`` attribute: the wire protocol the SDK speaks.
MESSAGING_SYSTEM = "kafka"

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    OTEL_AVAILABLE = True
except ImportError:  # the optional extra is not installed: tracing is a no-op
    OTEL_AVAILABLE = False

_SCOPE_VERSION = "0.1.0"


class StreamlineTracing:
    """Creates spans through the global OpenTelemetry tracer provider.

    ``enabled=None`` turns tracing on whenever OpenTelemetry is installed; ``True`` without it
    logs a warning and stays off.
    """

    def __init__(
        self,
        tracer_name: str = "streamline-python-sdk",
        tracer_version: str = _SCOPE_VERSION,
        enabled: bool | None = None,
    ) -> None:
        wanted = OTEL_AVAILABLE if enabled is None else enabled
        if wanted and not OTEL_AVAILABLE:
            logger.warning(
                "tracing requested but opentelemetry-api is not installed; "
                "pip install 'millstream[tracing]'"
            )
            wanted = False
        self._enabled = wanted
        self._tracer: Any = trace.get_tracer(tracer_name, tracer_version) if wanted else None

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    # -- spans ------------------------------------------------------------------------------

    @contextmanager
    def trace_produce_sync(
        self, topic: str, headers: dict[str, bytes] | None = None
    ) -> Iterator[None]:
        """A PRODUCER span; its context is written into ``headers`` (in place) when given."""
        if not self._enabled:
            yield
            return
        span = self._start(topic, "produce", SpanKind.PRODUCER)
        if headers is not None:
            inject_trace_context(span, headers)
        with self._activate(span):
            yield

    @contextmanager
    def trace_consume_sync(self, topic: str) -> Iterator[None]:
        """A CONSUMER span around fetching records."""
        if not self._enabled:
            yield
            return
        with self._activate(self._start(topic, "consume", SpanKind.CONSUMER)):
            yield

    @contextmanager
    def trace_process_sync(
        self,
        topic: str,
        partition: int,
        offset: int,
        headers: Mapping[str, bytes] | None = None,
    ) -> Iterator[None]:
        """A span around processing one record, child of the producer's span when the record's
        headers carry a trace context."""
        if not self._enabled:
            yield
            return
        parent = propagate.extract(_carrier(headers)) if headers else None
        span = self._start(
            topic,
            "process",
            SpanKind.CONSUMER,
            context=parent,
            extra={
                "messaging.destination.partition.id": str(partition),
                "messaging.kafka.message.offset": offset,
            },
        )
        with self._activate(span):
            yield

    @asynccontextmanager
    async def trace_produce(
        self, topic: str, headers: dict[str, bytes] | None = None
    ) -> AsyncIterator[None]:
        """Async form of ``trace_produce_sync``."""
        with self.trace_produce_sync(topic, headers):
            yield

    @asynccontextmanager
    async def trace_consume(self, topic: str) -> AsyncIterator[None]:
        """Async form of ``trace_consume_sync``."""
        with self.trace_consume_sync(topic):
            yield

    @asynccontextmanager
    async def trace_process(
        self,
        topic: str,
        partition: int,
        offset: int,
        headers: Mapping[str, bytes] | None = None,
    ) -> AsyncIterator[None]:
        """Async form of ``trace_process_sync``."""
        with self.trace_process_sync(topic, partition, offset, headers):
            yield

    # -- decorators -------------------------------------------------------------------------

    def traced_produce(
        self, topic: str
    ) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
        """Run an async function inside a produce span for ``topic``."""
        return self._decorator(lambda: self.trace_produce_sync(topic))

    def traced_consume(
        self, topic: str
    ) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
        """Run an async function inside a consume span for ``topic``."""
        return self._decorator(lambda: self.trace_consume_sync(topic))

    def _decorator(
        self, span: Callable[[], AbstractContextManager[None]]
    ) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
        def decorate(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
            if not self._enabled:
                return func

            @functools.wraps(func)
            async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
                with span():
                    return await func(*args, **kwargs)

            return wrapper

        return decorate

    # -- internals --------------------------------------------------------------------------

    def _start(
        self,
        topic: str,
        operation: str,
        kind: Any,
        *,
        context: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> Any:
        attributes: dict[str, Any] = {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.destination.name": topic,
            "messaging.operation": operation,
        }
        if extra:
            attributes.update(extra)
        return self._tracer.start_span(
            f"{topic} {operation}", kind=kind, attributes=attributes, context=context
        )

    @contextmanager
    def _activate(self, span: Any) -> Iterator[None]:
        """Make ``span`` current, record an escaping exception on it, and end it."""
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            raise
        finally:
            otel_context.detach(token)
            span.end()


def inject_trace_context(span: Any, headers: dict[str, bytes]) -> None:
    """Write ``span``'s W3C trace context (``traceparent``, ``tracestate``) into ``headers``."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    for key, value in carrier.items():
        headers[key] = value.encode()


def _carrier(headers: Mapping[str, bytes]) -> dict[str, str]:
    return {
        key: value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        for key, value in headers.items()
    }


def tracing_or_none(tracing: StreamlineTracing | None) -> StreamlineTracing | None:
    """``tracing`` if it will create spans, else ``None`` (so hot paths test one thing)."""
    return tracing if tracing is not None and tracing.is_enabled else None
