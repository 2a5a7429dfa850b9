"""The public names of ``millstream.kafka`` are pinned, the Streamline SDK's module names import,
and the SDK never imports millstream's server or log."""

from __future__ import annotations

import importlib
import subprocess
import sys

import millstream.kafka

KAFKA = [
    "Admin",
    "AuthenticationError",
    "AuthorizationError",
    "BrokerInfo",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerOpen",
    "CircuitState",
    "ClientConfig",
    "ClientMetrics",
    "ClusterInfo",
    "ConfigurationError",
    "ConnectionError",
    "Consumer",
    "ConsumerConfig",
    "ConsumerError",
    "ConsumerGroupInfo",
    "ConsumerGroupLag",
    "ConsumerLag",
    "ConsumerRecord",
    "GroupMember",
    "InspectedMessage",
    "MetricsSnapshot",
    "OffsetAndMetadata",
    "PartitionInfo",
    "Producer",
    "ProducerConfig",
    "ProducerError",
    "ProducerRecord",
    "RateLimitError",
    "RecordMetadata",
    "RetryConfig",
    "SerializationError",
    "StreamlineClient",
    "StreamlineError",
    "StreamlineTracing",
    "TimeoutError",
    "TopicConfig",
    "TopicError",
    "TopicInfo",
    "TopicPartition",
    "default_serializer",
    "json_deserializer",
    "json_serializer",
    "retry_async",
    "string_deserializer",
    "string_serializer",
    "validate_topic_name",
    "with_retry",
]

# Where the Streamline SDK's users import things from (``streamline_sdk.<module>``).
UPSTREAM_MODULES = {
    "client": ["StreamlineClient", "ClientConfig", "ProducerConfig", "ConsumerConfig"],
    "config": ["ClientConfig", "ProducerConfig", "ConsumerConfig"],
    "producer": ["Producer", "ProducerRecord", "RecordMetadata"],
    "consumer": ["Consumer", "ConsumerRecord"],
    "admin": ["Admin", "TopicConfig", "TopicInfo", "PartitionInfo", "ClusterInfo"],
    "exceptions": [
        "StreamlineError",
        "ConnectionError",
        "ProducerError",
        "ConsumerError",
        "TopicError",
        "ConfigurationError",
        "AuthenticationError",
        "AuthorizationError",
        "TimeoutError",
        "SerializationError",
        "RateLimitError",
    ],
    "retry": ["RetryConfig", "retry_async", "with_retry"],
    "circuit_breaker": [
        "CircuitBreaker",
        "CircuitBreakerConfig",
        "CircuitBreakerOpen",
        "CircuitState",
    ],
    "telemetry": ["StreamlineTracing"],
    "metrics": ["ClientMetrics", "MetricsSnapshot"],
    "validation": ["validate_topic_name"],
    "types": ["TopicPartition", "OffsetAndMetadata"],
}


def test_all_is_pinned_and_sorted() -> None:
    assert millstream.kafka.__all__ == KAFKA
    assert sorted(KAFKA) == KAFKA
    for name in KAFKA:
        assert getattr(millstream.kafka, name) is not None


def test_upstream_module_names() -> None:
    for module_name, names in UPSTREAM_MODULES.items():
        module = importlib.import_module(f"millstream.kafka.{module_name}")
        for name in names:
            assert getattr(module, name) is getattr(millstream.kafka, name), (module_name, name)


def test_sdk_never_imports_server_or_log() -> None:
    code = (
        "import sys, millstream.kafka;"
        "bad = [m for m in sys.modules if m.startswith(('millstream.server', 'millstream.log',"
        " 'millstream.services', 'millstream.node'))];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
