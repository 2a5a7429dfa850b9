"""What the Kafka door is configured with."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_REQUEST_SIZE", "KafkaSettings"]

#: Largest request frame (Kafka's ``socket.request.max.bytes`` default, 100 MiB).
DEFAULT_MAX_REQUEST_SIZE = 100 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    host: str = "127.0.0.1"
    port: int = 9092  # 0: any free port
    advertised_host: str | None = None  # what Metadata names; None: ``host``
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE  # larger frames close the connection
    auto_create_topics: bool = True  # Metadata and Produce create missing topics
    default_partitions: int = 1  # partitions of an auto-created topic
    idle_timeout: float = 600.0  # seconds without a request (Kafka's connections.max.idle.ms)
    frame_timeout: float = 30.0  # seconds a started frame may take to arrive (slow-loris)
    graceful_timeout: float = 10.0  # seconds shutdown waits for in-flight requests
    max_pending_requests: int = 64  # requests read ahead of their answers on one connection
    group_initial_delay: float = 0.1  # an empty group's first rebalance waits this for members
