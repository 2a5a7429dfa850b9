"""millstream: one durable log with two front doors (Durable Streams over HTTP, Kafka).

Layers, top to bottom; imports only point down:

- SDKs users import: ``millstream.client`` (re-exported here), later kafka/telemetry/llm.
- Front doors: ``millstream.server.http`` (ASGI), later ``server.kafka``.
- The log: ``millstream.log`` (``Store`` with memory and SQLite implementations).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
