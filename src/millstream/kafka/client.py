"""``StreamlineClient``: the entry point. One client holds a producer and an admin client, makes
consumers, and shares its circuit breaker, tracing and metrics among them.

    async with StreamlineClient("localhost:9092") as client:
        await client.produce("events", {"user": 1})
        async with client.consumer(group_id="g", auto_offset_reset="earliest") as consumer:
            await consumer.subscribe(["events"])
            records = await consumer.poll(timeout_ms=5000)

The configuration dataclasses are importable from here too, where the Streamline SDK defines
them (``from ...client import ClientConfig``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any

from millstream.kafka._lifecycle import Lifecycle
from millstream.kafka.admin import Admin
from millstream.kafka.circuit_breaker import CircuitBreaker
from millstream.kafka.config import ClientConfig, ConsumerConfig, ProducerConfig
from millstream.kafka.consumer import Consumer
from millstream.kafka.exceptions import ConfigurationError, ConnectionError
from millstream.kafka.metrics import ClientMetrics
from millstream.kafka.producer import HeadersLike, Producer, RecordMetadata
from millstream.kafka.telemetry import StreamlineTracing

if TYPE_CHECKING:
    pass

__all__ = ["ClientConfig", "ConsumerConfig", "ProducerConfig", "StreamlineClient"]

_CONSUMER_FIELDS = frozenset(f.name for f in dataclasses.fields(ConsumerConfig))
_CLIENT_FIELDS = frozenset(f.name for f in dataclasses.fields(ClientConfig))


class StreamlineClient(Lifecycle):
    """A connection to a Kafka-protocol broker (millstream or any other).

    ``bootstrap_servers`` defaults to ``$STREAMLINE_BOOTSTRAP_SERVERS`` or ``localhost:9092``;
    other ``ClientConfig`` fields may be passed as keywords, or a whole ``client_config``.
    """

    def __init__(
        self,
        bootstrap_servers: str | None = None,
        *,
        client_id: str = "streamline-python-client",
        client_config: ClientConfig | None = None,
        producer_config: ProducerConfig | None = None,
        consumer_config: ConsumerConfig | None = None,
        **kwargs: Any,
    ) -> None:
        if client_config is None:
            unknown = sorted(set(kwargs) - _CLIENT_FIELDS)
            if unknown:
                raise ConfigurationError(
                    f"unknown client setting(s): {', '.join(unknown)}",
                    hint=f"ClientConfig takes: {', '.join(sorted(_CLIENT_FIELDS))}",
                )
            client_config = ClientConfig(
                bootstrap_servers=bootstrap_servers or "", client_id=client_id, **kwargs
            )
        elif bootstrap_servers is not None or kwargs:
            raise ConfigurationError(
                "client_config and connection keywords were both given",
                hint="Put every client setting in client_config",
            )
        self._config = client_config
        self._producer_config = producer_config or ProducerConfig()
        self._consumer_config = consumer_config or ConsumerConfig()
        self._breaker = (
            CircuitBreaker(client_config.circuit_breaker)
            if client_config.circuit_breaker is not None
            else None
        )
        self._tracing = StreamlineTracing() if client_config.enable_telemetry else None
        self._metrics = ClientMetrics()
        self._producer: Producer | None = None
        self._admin: Admin | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the producer and the admin client; idempotent. On failure everything
        started is closed again and the error (``ConnectionError`` when the broker cannot be
        reached) is raised."""
        if self._producer is not None:
            return
        producer = Producer(
            self._config,
            self._producer_config,
            circuit_breaker=self._breaker,
            telemetry=self._tracing,
            metrics=self._metrics,
        )
        admin = Admin(self._config)
        try:
            await producer.start()
            await admin.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.close()
            with contextlib.suppress(Exception):
                await admin.close()
            raise
        self._producer, self._admin = producer, admin

    async def close(self) -> None:
        """Send what is buffered and disconnect; idempotent (the client may be started again)."""
        producer, self._producer = self._producer, None
        admin, self._admin = self._admin, None
        try:
            if producer is not None:
                await producer.close()
        finally:
            if admin is not None:
                await admin.close()

    # -- parts ------------------------------------------------------------------------------

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            raise ConnectionError(
                "Client not started. Use 'async with' context manager.",
                hint="async with StreamlineClient(...) as client: ... (or await client.start())",
                retryable=False,
            )
        return self._producer

    @property
    def admin(self) -> Admin:
        if self._admin is None:
            raise ConnectionError(
                "Client not started. Use 'async with' context manager.",
                hint="async with StreamlineClient(...) as client: ... (or await client.start())",
                retryable=False,
            )
        return self._admin

    def consumer(self, group_id: str | None = None, **overrides: Any) -> Consumer:
        """A new, unstarted consumer (``async with`` it): the client's ``ConsumerConfig`` with
        ``group_id`` and any other of its fields overridden by keyword."""
        unknown = sorted(set(overrides) - _CONSUMER_FIELDS)
        if unknown:
            raise ConfigurationError(
                f"unknown consumer setting(s): {', '.join(unknown)}",
                hint=f"ConsumerConfig takes: {', '.join(sorted(_CONSUMER_FIELDS))}",
            )
        if group_id is not None:
            overrides["group_id"] = group_id
        config = dataclasses.replace(self._consumer_config, **overrides)
        return Consumer(
            self._config,
            config,
            circuit_breaker=self._breaker,
            telemetry=self._tracing,
            metrics=self._metrics,
        )

    async def produce(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: HeadersLike | None = None,
    ) -> RecordMetadata:
        """``client.producer.send(...)``: send one record and wait for the broker's ack."""
        return await self.producer.send(topic, value, key, partition, timestamp_ms, headers)

    # -- state ------------------------------------------------------------------------------

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def metrics(self) -> ClientMetrics:
        return self._metrics

    @property
    def tracing(self) -> StreamlineTracing | None:
        """The tracer the client's producer and consumers use (``enable_telemetry=True``)."""
        return self._tracing

    @property
    def circuit_breaker(self) -> CircuitBreaker | None:
        return self._breaker

    @property
    def bootstrap_servers(self) -> str:
        return self._config.bootstrap_servers

    @property
    def http_url(self) -> str:
        return self._config.http_url

    @property
    def is_connected(self) -> bool:
        return self._producer is not None
