"""Dual-mode streaming for FastAPI (seed 002): one endpoint answers a JSON batch or a stream of
Server-Sent Events, and with ``durable=True`` resumes streams from a millstream log.

Layers, top to bottom: ``_endpoint`` (``@dual_mode``) builds ``_response``'s
``DualModeResponse`` or ``_durable``'s ``DurableResponse``; they share ``_batch`` (batch
answers), ``_events`` (the SSE answer and the generator's lifecycle), ``_backpressure`` (the
bounded buffer) and ``_settings``; durable mode keeps generations in ``_log`` (a
``millstream.log.Store`` or a Durable Streams server through ``millstream.client``); ``_sse``
formats events and ``_modes`` detects the mode.
``_streaming`` holds the seed's helpers for hand-written endpoints. FastAPI is needed here only:
install ``millstream[dualmode]``.
"""

try:
    import fastapi  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "millstream.dualmode needs FastAPI: pip install 'millstream[dualmode]'"
    ) from exc

from ._backpressure import Backpressure, BackpressurePolicy, StreamStatistics
from ._endpoint import DualMode, DualModeEndpoint, dual_mode
from ._errors import (
    BatchTooLargeError,
    DualModeError,
    GenerationConflictError,
    GenerationLogError,
    GenerationNotFoundError,
    IdempotencyKeyError,
    InvalidModeError,
    LastEventIdError,
    SSEFormatError,
)
from ._modes import (
    ModeDetector,
    ResponseMode,
    detect_mode,
    detect_response_mode,
    negotiate_mode,
)
from ._response import DualModeResponse
from ._settings import StreamSettings
from ._sse import SSEEvent, format_sse_data, format_sse_event
from ._streaming import (
    StreamBuffer,
    batch_to_stream,
    create_streaming_response,
    resilient_stream,
    transform_stream,
)

__all__ = [
    "Backpressure",
    "BackpressurePolicy",
    "BatchTooLargeError",
    "DualMode",
    "DualModeEndpoint",
    "DualModeError",
    "DualModeResponse",
    "GenerationConflictError",
    "GenerationLogError",
    "GenerationNotFoundError",
    "IdempotencyKeyError",
    "InvalidModeError",
    "LastEventIdError",
    "ModeDetector",
    "ResponseMode",
    "SSEEvent",
    "SSEFormatError",
    "StreamBuffer",
    "StreamSettings",
    "StreamStatistics",
    "batch_to_stream",
    "create_streaming_response",
    "detect_mode",
    "detect_response_mode",
    "dual_mode",
    "format_sse_data",
    "format_sse_event",
    "negotiate_mode",
    "resilient_stream",
    "transform_stream",
]
