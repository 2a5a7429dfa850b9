"""LLM telemetry (seed 003, the LLM Sentinel SDK): one event per LLM call, sent over Kafka.

The upstream ``sentinel_sdk`` API with only the import changed: ``SentinelClient``
(kafka-python) and ``AsyncSentinelClient`` (aiokafka), ``TelemetryEvent`` and its builder,
``SentinelConfig`` (``from_env``), the enums and the ``SentinelError`` tree. Added: a
non-blocking path (bounded queue, disk spool, ``stats()``), ``instrument()`` for OpenAI- and
Anthropic-shaped responses, ``to_otel_attributes()``, and ``AnomalyEvent``, the shape of what
millstream's Sentinel service appends to the anomalies topic. Never imports server code.

Layers: ``_types``/``_errors``/``_events``/``_anomaly``/``_builder``/``_config`` (data),
``_spool``/``_delivery``/``_flow`` (the non-blocking path, no Kafka I/O), then the twins
``_sync``/``_async`` that only perform I/O, and ``_instrument`` on top of either.
"""

from ._anomaly import AnomalyContext, AnomalyDetails, AnomalyEvent
from ._async import AsyncSentinelClient
from ._builder import TelemetryEventBuilder
from ._config import DEFAULT_TOPIC, SentinelConfig
from ._delivery import SentinelStats
from ._errors import (
    ConfigurationError,
    ConnectionError,
    SendError,
    SentinelError,
    TimeoutError,
    ValidationError,
)
from ._events import PromptInfo, ResponseInfo, TelemetryEvent
from ._instrument import Instrumentation, LLMCall
from ._otel import otel_attributes
from ._sync import SentinelClient
from ._types import AnomalyType, DetectionMethod, Severity

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TOPIC",
    "AnomalyContext",
    "AnomalyDetails",
    "AnomalyEvent",
    "AnomalyType",
    "AsyncSentinelClient",
    "ConfigurationError",
    "ConnectionError",
    "DetectionMethod",
    "Instrumentation",
    "LLMCall",
    "PromptInfo",
    "ResponseInfo",
    "SendError",
    "SentinelClient",
    "SentinelConfig",
    "SentinelError",
    "SentinelStats",
    "Severity",
    "TelemetryEvent",
    "TelemetryEventBuilder",
    "TimeoutError",
    "ValidationError",
    "__version__",
    "otel_attributes",
]
