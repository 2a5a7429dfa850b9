"""Optional OpenTelemetry tracing of requests (``serve --otel``, the ``otel`` extra).

One span per HTTP request (``GET read``, ``POST append``, ... with the method, path, status,
route and request id) and per Kafka request (``kafka Produce``, with the API and the client's
principal). Exporting follows OpenTelemetry's standard variables: OTLP over HTTP to
``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``), or the console with
``OTEL_TRACES_EXPORTER=console``; ``OTEL_SERVICE_NAME`` defaults to ``millstream``.

Tracing needs every request to pass through the ASGI route, so the HTTP fast path is off while
it is on (the startup line says so): it costs throughput, which is why it is opt-in.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["tracer_from_environment"]


def tracer_from_environment() -> Any:
    """An OpenTelemetry tracer exporting as the environment says; ``ImportError`` (with what
    to install) without the ``otel`` extra."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError as exc:
        raise ImportError(
            f"tracing needs the otel extra: pip install 'millstream[otel]' ({exc})"
        ) from exc
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "millstream")})
    provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp") == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider.get_tracer("millstream")
