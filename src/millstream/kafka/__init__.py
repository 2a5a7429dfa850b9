"""The Kafka SDK (seed 000, the Streamline Python SDK's API) on aiokafka.

Code written for ``streamline_sdk`` runs with only the import changed: the modules keep its
names (``client``, ``producer``, ``consumer``, ``admin``, ``config``, ``exceptions``, ``retry``,
``circuit_breaker``, ``telemetry``, ``metrics``, ``validation``, ``types``). It speaks only the
Kafka protocol (any broker) plus, for part of ``Admin``, the broker's HTTP admin API, and never
imports millstream's server or log. Guide: ``docs/kafka-sdk.md``.
"""

from millstream.kafka.admin import (
    Admin,
    BrokerInfo,
    ClusterInfo,
    ConsumerGroupInfo,
    ConsumerGroupLag,
    ConsumerLag,
    GroupMember,
    InspectedMessage,
    PartitionInfo,
    TopicConfig,
    TopicInfo,
)
from millstream.kafka.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpen,
    CircuitState,
)
from millstream.kafka.client import StreamlineClient
from millstream.kafka.config import ClientConfig, ConsumerConfig, ProducerConfig
from millstream.kafka.consumer import Consumer, ConsumerRecord
from millstream.kafka.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConnectionError,
    ConsumerError,
    ProducerError,
    RateLimitError,
    SerializationError,
    StreamlineError,
    TimeoutError,
    TopicError,
)
from millstream.kafka.metrics import ClientMetrics, MetricsSnapshot
from millstream.kafka.producer import Producer, ProducerRecord, RecordMetadata
from millstream.kafka.retry import RetryConfig, retry_async, with_retry
from millstream.kafka.serialization import (
    default_serializer,
    json_deserializer,
    json_serializer,
    string_deserializer,
    string_serializer,
)
from millstream.kafka.telemetry import StreamlineTracing
from millstream.kafka.types import OffsetAndMetadata, TopicPartition
from millstream.kafka.validation import validate_topic_name

__all__ = [
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
