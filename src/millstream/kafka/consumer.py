"""Receiving records: a ``Consumer`` from ``client.consumer(group_id=...)`` subscribes to topics
(sharing their partitions with the other members of its group) or is assigned partitions by
hand, then ``poll()``s batches or iterates with ``async for``.

It is aiokafka's consumer, configured from ``ClientConfig``/``ConsumerConfig``, returning the
SDK's ``ConsumerRecord`` and raising only ``millstream.kafka.exceptions``. Offsets are
committed automatically every ``auto_commit_interval_ms`` unless ``enable_auto_commit=False``,
then by ``commit()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as _AkTopicPartition
from aiokafka.errors import ConsumerStoppedError
from aiokafka.structs import OffsetAndMetadata as _AkOffsetAndMetadata

from millstream.kafka import _fetch_hook
from millstream.kafka._lifecycle import Part
from millstream.kafka._records import ConsumerRecord, RecordFactory
from millstream.kafka._security import connection_kwargs
from millstream.kafka._translate import deserialization_error, start_bounded, translate
from millstream.kafka.circuit_breaker import CircuitBreaker
from millstream.kafka.config import ClientConfig, ConsumerConfig
from millstream.kafka.exceptions import ConfigurationError, ConsumerError, StreamlineError
from millstream.kafka.metrics import ClientMetrics
from millstream.kafka.serialization import Deserializer
from millstream.kafka.telemetry import StreamlineTracing
from millstream.kafka.types import OffsetAndMetadata, TopicPartition
from millstream.kafka.validation import validate_topic_name

if TYPE_CHECKING:
    from typing import Self

__all__ = ["Consumer", "ConsumerRecord"]


class Consumer(Part):
    """Receives records; ``async with client.consumer(group_id="g") as consumer: ...``."""

    def __init__(
        self,
        client_config: ClientConfig,
        consumer_config: ConsumerConfig,
        *,
        circuit_breaker: CircuitBreaker | None = None,
        telemetry: StreamlineTracing | None = None,
        metrics: ClientMetrics | None = None,
    ) -> None:
        super().__init__(
            client_config, circuit_breaker=circuit_breaker, telemetry=telemetry, metrics=metrics
        )
        self._config = consumer_config
        self._key_deserializer = consumer_config.key_deserializer
        self._value_deserializer = consumer_config.value_deserializer
        self._consumer: AIOKafkaConsumer | None = None
        self._records = RecordFactory()
        self._subscribed: set[str] = set()
        self._topic_label = "unknown"

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (bounded by ``connection_timeout_ms``); idempotent."""
        if self._consumer is not None:
            return
        config = self._config
        try:
            consumer = AIOKafkaConsumer(
                **connection_kwargs(self._client_config),
                group_id=config.group_id,
                auto_offset_reset=config.auto_offset_reset,
                enable_auto_commit=config.enable_auto_commit,
                auto_commit_interval_ms=config.auto_commit_interval_ms,
                max_poll_records=config.max_poll_records,
                session_timeout_ms=config.session_timeout_ms,
                heartbeat_interval_ms=config.heartbeat_interval_ms,
                isolation_level=config.isolation_level,
            )
        except (ValueError, TypeError, AssertionError) as exc:
            raise ConfigurationError(f"invalid consumer settings: {exc}") from exc
        await start_bounded(consumer, self._client_config, "consumer")
        _fetch_hook.install(consumer, self._records.build)
        self._consumer = consumer

    async def close(self) -> None:
        """Commit (with auto-commit), leave the group and disconnect; idempotent."""
        consumer, self._consumer = self._consumer, None
        self._subscribed = set()
        if consumer is not None:
            # aiokafka 0.14 cancels its coordinator's background task on stop and awaits it; if
            # that task never ran (a consumer closed right after starting), the cancellation
            # escapes stop() half-way. One turn of the loop lets the task start first.
            await asyncio.sleep(0)
            try:
                await consumer.stop()
            except Exception as exc:
                raise translate(exc, "consume", "closing the consumer") from exc

    @property
    def is_started(self) -> bool:
        return self._consumer is not None

    @property
    def group_id(self) -> str | None:
        return self._config.group_id

    # -- what to consume --------------------------------------------------------------------

    async def subscribe(self, topics: Iterable[str] | str) -> None:
        """Consume ``topics``, sharing their partitions with the group (needs ``group_id`` to
        share; without one this consumer takes every partition)."""
        consumer = self._require()
        names = [topics] if isinstance(topics, str) else list(topics)
        for name in names:
            validate_topic_name(name)
        try:
            consumer.subscribe(names)
        except Exception as exc:
            raise translate(exc, "consume", "subscribe") from exc
        self._subscribed = set(names)
        self._topic_label = ",".join(sorted(names)) or "unknown"

    async def unsubscribe(self) -> None:
        if self._consumer is not None:
            self._consumer.unsubscribe()
        self._subscribed = set()
        self._topic_label = "unknown"

    def assign(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Consume exactly these partitions, outside any group rebalancing."""
        consumer = self._require()
        tps = [_ak(tp) for tp in partitions]
        for tp in tps:
            validate_topic_name(tp.topic)
        try:
            consumer.assign(tps)
        except Exception as exc:
            raise translate(exc, "consume", "assign") from exc
        self._topic_label = ",".join(sorted({tp.topic for tp in tps})) or "unknown"

    def assignment(self) -> set[TopicPartition]:
        if self._consumer is None:
            return set()
        return {TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def subscription(self) -> set[str]:
        return set(self._subscribed)

    # -- positions --------------------------------------------------------------------------

    async def seek(self, partition: tuple[str, int], offset: int) -> None:
        """Fetch ``partition`` from ``offset`` next."""
        consumer = self._require()
        try:
            consumer.seek(_ak(partition), offset)
        except Exception as exc:
            raise translate(exc, "consume", f"seek {tuple(partition)} to {offset}") from exc

    async def seek_to_beginning(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        """Fetch from the first retained record of ``partitions`` (default: all assigned)."""
        await self._seek_edge("seek_to_beginning", partitions)

    async def seek_to_end(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        """Fetch only records written from now on (default: all assigned partitions)."""
        await self._seek_edge("seek_to_end", partitions)

    async def commit(self, offsets: dict[Any, int | OffsetAndMetadata] | None = None) -> None:
        """Commit the position of every assigned partition, or the given ``offsets`` (the
        offset of the *next* record to read, as in Kafka)."""
        consumer = self._require()
        try:
            if offsets is None:
                await consumer.commit()
            else:
                await consumer.commit({_ak(tp): _offset(value) for tp, value in offsets.items()})
        except Exception as exc:
            raise translate(exc, "consume", "commit") from exc

    async def position(self, partition: tuple[str, int]) -> int:
        """The offset of the next record this consumer will fetch from ``partition``."""
        consumer = self._require()
        try:
            return int(await consumer.position(_ak(partition)))
        except Exception as exc:
            raise translate(exc, "consume", f"position of {tuple(partition)}") from exc

    async def committed(self, partition: tuple[str, int]) -> int | None:
        """The group's committed offset for ``partition``, or ``None``."""
        consumer = self._require()
        try:
            offset = await consumer.committed(_ak(partition))
        except Exception as exc:
            raise translate(exc, "consume", f"committed offset of {tuple(partition)}") from exc
        return None if offset is None else int(offset)

    async def end_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int]:
        """The offset after the last record of each partition (its high watermark)."""
        consumer = self._require()
        try:
            ends = await consumer.end_offsets([_ak(tp) for tp in partitions])
        except Exception as exc:
            raise translate(exc, "consume", "end_offsets") from exc
        return {TopicPartition(tp.topic, tp.partition): int(o) for tp, o in ends.items()}

    # -- records ----------------------------------------------------------------------------

    async def poll(
        self, timeout_ms: int = 1000, max_records: int | None = None
    ) -> list[ConsumerRecord]:
        """Records fetched within ``timeout_ms`` (an empty list if none arrived), at most
        ``max_records`` (default ``max_poll_records``)."""
        consumer = self._require()
        breaker = self._breaker
        if breaker is not None:
            breaker.check()
        started = time.perf_counter()
        try:
            if self._tracing is None:
                batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
            else:
                async with self._tracing.trace_consume(self._topic_label):
                    batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except Exception as exc:
            raise self._failed(exc, "poll") from exc
        if breaker is not None:
            breaker.record_success()
        records: list[ConsumerRecord] = []
        for messages in batches.values():
            if type(messages[0]) is not ConsumerRecord:  # fetched before or without the hook
                messages[:] = map(self._records.convert, messages)
            if records:
                records += messages
            else:
                records = messages
        if self._key_deserializer is not None or self._value_deserializer is not None:
            for record in records:
                self._deserialize(record)
        if records:
            self._metrics.record_consume(
                len(records), self._records.take_bytes(), (time.perf_counter() - started) * 1000
            )
        return records

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ConsumerRecord:
        """The next record, waiting as long as it takes; ends when the consumer is closed."""
        consumer = self._consumer
        if consumer is None:
            raise StopAsyncIteration
        try:
            message = await consumer.getone()
        except ConsumerStoppedError:
            raise StopAsyncIteration from None
        except Exception as exc:
            raise self._failed(exc, "fetch") from exc
        record: ConsumerRecord = (
            message if type(message) is ConsumerRecord else self._records.convert(message)
        )
        self._metrics.record_consume(1, self._records.take_bytes())
        if self._key_deserializer is not None or self._value_deserializer is not None:
            self._deserialize(record)
        return record

    # -- internals --------------------------------------------------------------------------

    def _require(self) -> AIOKafkaConsumer:
        consumer = self._consumer
        if consumer is None:
            raise ConsumerError(
                "Consumer not started",
                hint="Use 'async with client.consumer(...) as consumer' or await consumer.start()",
            )
        return consumer

    async def _seek_edge(self, how: str, partitions: Iterable[tuple[str, int]] | None) -> None:
        consumer = self._require()
        tps = consumer.assignment() if partitions is None else map(_ak, partitions)
        try:
            await getattr(consumer, how)(*tps)
        except Exception as exc:
            raise translate(exc, "consume", how) from exc

    def _failed(self, exc: BaseException, what: str) -> StreamlineError:
        error = translate(exc, "consume", f"{what} from {self._topic_label}")
        self._metrics.record_error()
        if self._breaker is not None:
            self._breaker.record_failure(error)
        return error

    def _deserialize(self, record: ConsumerRecord) -> None:
        if record.key is not None and self._key_deserializer is not None:
            record.key = _deserialize(self._key_deserializer, record.key, record, "key")
        if record.value is not None and self._value_deserializer is not None:
            record.value = _deserialize(self._value_deserializer, record.value, record, "value")


def _deserialize(deserializer: Deserializer, data: bytes, message: Any, what: str) -> Any:
    try:
        return deserializer(data)
    except Exception as exc:
        where = f"{what} of {message.topic}[{message.partition}]@{message.offset}"
        raise deserialization_error(exc, where) from exc


def _ak(partition: tuple[str, int]) -> _AkTopicPartition:
    """Any (topic, partition) pair as aiokafka's ``TopicPartition``."""
    if type(partition) is _AkTopicPartition:
        return partition
    try:
        topic, number = partition
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{partition!r} is not a (topic, partition) pair",
            hint="Pass millstream.kafka.TopicPartition(topic, partition)",
        ) from exc
    return _AkTopicPartition(topic, int(number))


def _offset(value: int | OffsetAndMetadata) -> int | _AkOffsetAndMetadata:
    if isinstance(value, OffsetAndMetadata):
        return _AkOffsetAndMetadata(value.offset, value.metadata)
    return value
