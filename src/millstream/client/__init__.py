"""The Durable Streams client (seed 001): read with ``stream()``/``astream()``, write with
``DurableStream``/``AsyncDurableStream``, exactly-once with ``IdempotentProducer``.

It speaks only HTTP and works against any Durable Streams server; it never imports millstream's
server or log. Layers: ``_core`` (requests as data, retry flow, error mapping), ``_sse`` (sans-IO
parser), ``_read``/``_handle`` (I/O-free state), then the twins ``_sync``/``_async``/``_response``
and ``_producer`` that only perform I/O.
"""

from millstream.client._async import AsyncDurableStream, astream
from millstream.client._core import RetryPolicy
from millstream.client._errors import (
    DurableStreamError,
    FetchError,
    FetchTimeoutError,
    InvalidArgumentError,
    RetentionGoneError,
    SeqConflictError,
    SequenceGapError,
    SSEBytesIterationError,
    SSEEncodingError,
    SSENotSupportedError,
    SSEReadAllError,
    StaleEpochError,
    StreamClosedError,
    StreamConsumedError,
    StreamExistsError,
    StreamNotFoundError,
)
from millstream.client._producer import AsyncIdempotentProducer, IdempotentProducer
from millstream.client._response import AsyncStreamResponse, StreamResponse
from millstream.client._sse import SSEEvent, SSEParser, SSEProtocolError
from millstream.client._sync import DurableStream, stream
from millstream.client._types import (
    AppendResult,
    CloseResult,
    HeadersLike,
    HeadResult,
    IdempotentAppendResult,
    LiveMode,
    Offset,
    ParamsLike,
    SSEEncoding,
    StreamEvent,
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
    "InvalidArgumentError",
    "LiveMode",
    "Offset",
    "ParamsLike",
    "RetentionGoneError",
    "RetryPolicy",
    "SSEBytesIterationError",
    "SSEEncoding",
    "SSEEncodingError",
    "SSEEvent",
    "SSENotSupportedError",
    "SSEParser",
    "SSEProtocolError",
    "SSEReadAllError",
    "SeqConflictError",
    "SequenceGapError",
    "StaleEpochError",
    "StreamClosedError",
    "StreamConsumedError",
    "StreamEvent",
    "StreamExistsError",
    "StreamNotFoundError",
    "StreamResponse",
    "astream",
    "stream",
]
