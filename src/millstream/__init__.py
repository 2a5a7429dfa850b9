"""millstream: one durable log with two front doors (Durable Streams over HTTP, Kafka).

Layers, top to bottom; imports only point down:

- SDKs users import: ``millstream.client`` (re-exported here), later kafka/telemetry/llm.
- Front doors: ``millstream.server.http`` (ASGI), later ``server.kafka``.
- The log: ``millstream.log`` (``Store`` with memory and SQLite implementations).
"""

__version__ = "0.1.0"

from millstream.client import (
    AppendResult,
    AsyncDurableStream,
    AsyncIdempotentProducer,
    AsyncStreamResponse,
    CloseResult,
    DurableStream,
    DurableStreamError,
    FetchError,
    FetchTimeoutError,
    HeadersLike,
    HeadResult,
    IdempotentAppendResult,
    IdempotentProducer,
    LiveMode,
    Offset,
    ParamsLike,
    RetentionGoneError,
    RetryPolicy,
    SeqConflictError,
    SequenceGapError,
    SSEBytesIterationError,
    StaleEpochError,
    StreamClosedError,
    StreamConsumedError,
    StreamEvent,
    StreamExistsError,
    StreamNotFoundError,
    StreamResponse,
    astream,
    stream,
)

__all__ = [
    "AppendResult",
    "AsyncDurableStream",
    "AsyncIdempotentProducer",
    "AsyncStreamResponse",
    "CloseResult",
    "DurableStream",
    "DurableStreamError",
    "FetchError",
    "FetchTimeoutError",
    "HeadResult",
    "HeadersLike",
    "IdempotentAppendResult",
    "IdempotentProducer",
    "LiveMode",
    "Offset",
    "ParamsLike",
    "RetentionGoneError",
    "RetryPolicy",
    "SSEBytesIterationError",
    "SeqConflictError",
    "SequenceGapError",
    "StaleEpochError",
    "StreamClosedError",
    "StreamConsumedError",
    "StreamEvent",
    "StreamExistsError",
    "StreamNotFoundError",
    "StreamResponse",
    "__version__",
    "astream",
    "stream",
]
