"""Sending records: ``Producer.send`` (one record, its ``RecordMetadata`` once the broker has
it), ``send_batch`` (many records in flight at once), and client-side transactions.

The producer is aiokafka's, configured from ``ClientConfig``/``ProducerConfig``: records are
batched per partition (``batch_size``, ``linger_ms``) and compressed (``compression_type``).
Around it this module adds what the Streamline SDK promises: values of any JSON-able type,
topic-name checks, retries with backoff on retryable errors, the circuit breaker, metrics,
tracing with the W3C trace context in the record headers, and errors from
``millstream.kafka.exceptions`` only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import UnknownTopicOrPartitionError

from millstream.kafka._lifecycle import Part
from millstream.kafka._records import RecordMetadata, record_metadata
from millstream.kafka._security import connection_kwargs
from millstream.kafka._translate import serialization_error, start_bounded, translate
from millstream.kafka.circuit_breaker import CircuitBreaker
from millstream.kafka.config import ClientConfig, ProducerConfig
from millstream.kafka.exceptions import (
    ConfigurationError,
    ConnectionError,
    ProducerError,
    SerializationError,
    StreamlineError,
    TopicError,
)
from millstream.kafka.metrics import ClientMetrics
from millstream.kafka.retry import RetryConfig
from millstream.kafka.serialization import Serializer, default_serializer
from millstream.kafka.telemetry import StreamlineTracing
from millstream.kafka.validation import validate_topic_name

if TYPE_CHECKING:
    pass

__all__ = ["HeadersLike", "Producer", "ProducerRecord", "RecordMetadata"]

#: Record headers as a mapping or as (key, value) pairs; values are bytes or str (UTF-8).
HeadersLike = Mapping[str, bytes | str] | Sequence[tuple[str, bytes | str]]

_KNOWN_TOPICS_MAX = 10_000  # names checked once; the cache is cleared when it grows past this


@dataclass(slots=True)
class ProducerRecord:
    """One record to send; ``partition=-1`` lets the partitioner choose (by key hash when a
    key is given), ``timestamp_ms=None`` stamps the current time."""

    topic: str
    value: Any = None
    key: Any = None
    partition: int = -1
    timestamp_ms: int | None = None
    headers: HeadersLike | None = None


class Producer(Part):
    """Sends records; get the client's with ``client.producer``.

    >>> async def example(client):
    ...     meta = await client.producer.send("orders", {"id": 1}, key="customer-7")
    ...     return meta.offset
    """

    def __init__(
        self,
        client_config: ClientConfig,
        producer_config: ProducerConfig,
        *,
        circuit_breaker: CircuitBreaker | None = None,
        telemetry: StreamlineTracing | None = None,
        metrics: ClientMetrics | None = None,
    ) -> None:
        super().__init__(
            client_config, circuit_breaker=circuit_breaker, telemetry=telemetry, metrics=metrics
        )
        self._config = producer_config
        self._retry = RetryConfig(max_retries=producer_config.retries)
        self._key_serializer: Serializer = producer_config.key_serializer or default_serializer
        self._value_serializer: Serializer = producer_config.value_serializer or default_serializer
        self._plain_bytes = (
            producer_config.key_serializer is None and producer_config.value_serializer is None
        )
        self._producer: AIOKafkaProducer | None = None
        self._known_topics: set[str] = set()
        self._in_transaction = False
        self._transaction_buffer: list[ProducerRecord] = []

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (bounded by ``connection_timeout_ms``); idempotent."""
        if self._producer is not None:
            return
        config = self._config
        try:
            producer = AIOKafkaProducer(
                **connection_kwargs(self._client_config),
                acks=config.acks,
                compression_type=None
                if config.compression_type == "none"
                else config.compression_type,
                max_batch_size=config.batch_size,
                linger_ms=config.linger_ms,
                max_request_size=config.max_request_size,
                enable_idempotence=config.enable_idempotence,
            )
        except (ValueError, TypeError, AssertionError) as exc:
            raise ConfigurationError(f"invalid producer settings: {exc}") from exc
        await start_bounded(producer, self._client_config, "producer")
        self._producer = producer

    async def close(self) -> None:
        """Send what is buffered, then disconnect; idempotent."""
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception as exc:
                raise translate(exc, "produce", "closing the producer") from exc

    @property
    def is_started(self) -> bool:
        return self._producer is not None

    # -- sending ----------------------------------------------------------------------------

    async def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: HeadersLike | None = None,
    ) -> RecordMetadata:
        """Send one record and wait until the broker has it (``acks``); returns where it went.

        ``value`` and ``key``: bytes, str, JSON-able values or whatever the configured
        serializers take. Retryable failures are retried ``ProducerConfig.retries`` times with
        backoff before the error is raised. Inside a transaction the record is only buffered.
        """
        if self._in_transaction:
            return self._buffer(ProducerRecord(topic, value, key, -1, timestamp_ms, headers))
        producer = self._require()
        if topic not in self._known_topics:
            self._check_topic(topic)
        key_bytes, value_bytes = self._encode(topic, key, value)
        header_list = _header_list(headers) if headers else None
        if partition is not None and partition < 0:
            partition = None
        attempt = 0
        while True:
            breaker = self._breaker
            if breaker is not None:
                breaker.check()
            started = time.perf_counter()
            try:
                if self._tracing is None:
                    future = await producer.send(
                        topic, value_bytes, key_bytes, partition, timestamp_ms, header_list
                    )
                    sent = await future
                else:
                    sent = await self._send_traced(
                        producer, topic, value_bytes, key_bytes, partition, timestamp_ms, headers
                    )
            except Exception as exc:
                if isinstance(exc, UnknownTopicOrPartitionError):
                    exc = await _unknown_topic(producer, topic, exc)
                error = self._failed(exc, topic, partition)
                if attempt < self._retry.max_retries and error.retryable:
                    await asyncio.sleep(self._retry.backoff_ms(attempt) / 1000)
                    attempt += 1
                    continue
                raise error from exc
            if breaker is not None:
                breaker.record_success()
            key_size = len(key_bytes) if key_bytes is not None else 0
            value_size = len(value_bytes) if value_bytes is not None else 0
            self._metrics.record_produce(
                1, key_size + value_size, (time.perf_counter() - started) * 1000
            )
            return _metadata(sent, key_size, value_size)

    async def send_record(self, record: ProducerRecord) -> RecordMetadata:
        """``send`` for a ``ProducerRecord``."""
        return await self.send(
            record.topic,
            record.value,
            record.key,
            record.partition if record.partition >= 0 else None,
            record.timestamp_ms,
            record.headers,
        )

    async def send_batch(self, records: Sequence[ProducerRecord]) -> list[RecordMetadata]:
        """Send many records at once (all in flight together, batched per partition) and wait
        for all of them; results are in the order of ``records``. Retryable failures are
        retried as in ``send``; if some records still fail, the first error is raised (the
        others may have been stored)."""
        if self._in_transaction:
            return [self._buffer(record) for record in records]
        return await self._send_many(records)

    async def flush(self) -> None:
        """Wait until every record handed to the producer has been sent."""
        producer = self._require()
        try:
            await producer.flush()
        except Exception as exc:
            raise translate(exc, "produce", "flush") from exc

    # -- client-side transactions -----------------------------------------------------------

    async def begin_transaction(self) -> None:
        """Buffer every record sent from now on until ``commit_transaction`` sends them all, or
        ``abort_transaction`` drops them. Nothing reaches the broker before the commit; a
        failure during the commit may leave some of the records stored (client-side only)."""
        if self._in_transaction:
            raise ProducerError(
                "Transaction already in progress",
                hint="commit_transaction() or abort_transaction() first",
            )
        self._in_transaction = True
        self._transaction_buffer = []

    async def commit_transaction(self) -> list[RecordMetadata]:
        """Send the buffered records as one batch; returns their metadata in order."""
        if not self._in_transaction:
            raise ProducerError("No transaction in progress", hint="begin_transaction() first")
        records, self._transaction_buffer = self._transaction_buffer, []
        self._in_transaction = False
        return await self._send_many(records) if records else []

    async def abort_transaction(self) -> None:
        """Drop the buffered records."""
        if not self._in_transaction:
            raise ProducerError("No transaction in progress", hint="begin_transaction() first")
        self._in_transaction = False
        self._transaction_buffer = []

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    # -- internals --------------------------------------------------------------------------

    def _require(self) -> AIOKafkaProducer:
        producer = self._producer
        if producer is None:
            raise ProducerError(
                "Producer not started",
                hint="Use 'async with StreamlineClient(...)' or await producer.start()",
            )
        return producer

    def _check_topic(self, topic: str) -> None:
        validate_topic_name(topic)
        if len(self._known_topics) >= _KNOWN_TOPICS_MAX:
            self._known_topics.clear()
        self._known_topics.add(topic)

    def _encode(self, topic: str, key: Any, value: Any) -> tuple[bytes | None, bytes | None]:
        if (
            self._plain_bytes
            and (value is None or type(value) is bytes)
            and (key is None or type(key) is bytes)
        ):
            return key, value
        return (
            _serialize(self._key_serializer, key, f"key for {topic!r}"),
            _serialize(self._value_serializer, value, f"value for {topic!r}"),
        )

    def _buffer(self, record: ProducerRecord) -> RecordMetadata:
        self._check_topic(record.topic)
        key_bytes, value_bytes = self._encode(record.topic, record.key, record.value)
        self._transaction_buffer.append(record)
        now_ms = record.timestamp_ms if record.timestamp_ms is not None else time.time_ns() // 10**6
        return RecordMetadata(
            topic=record.topic,
            partition=-1,
            offset=-1,
            timestamp=datetime.fromtimestamp(now_ms / 1000),
            serialized_key_size=len(key_bytes) if key_bytes is not None else 0,
            serialized_value_size=len(value_bytes) if value_bytes is not None else 0,
            timestamp_ms=now_ms,
        )

    def _failed(
        self, exc: BaseException, topic: str, partition: int | None = None
    ) -> StreamlineError:
        if isinstance(exc, AssertionError) and partition is not None:
            # aiokafka asserts that an explicit partition is in the topic's metadata
            error: StreamlineError = TopicError(
                f"send to {topic!r}: partition {partition} does not exist",
                hint="Send to a partition below the topic's partition count, or let the "
                "partitioner choose (partition=None)",
            )
        else:
            error = translate(exc, "produce", f"send to {topic!r}")
        self._metrics.record_error()
        if self._breaker is not None:
            self._breaker.record_failure(error)
        return error

    async def _send_traced(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int | None,
        timestamp_ms: int | None,
        headers: HeadersLike | None,
    ) -> Any:
        assert self._tracing is not None
        carried: dict[str, bytes] = dict(_header_list(headers)) if headers else {}
        async with self._tracing.trace_produce(topic, carried):
            future = await producer.send(
                topic, value, key, partition, timestamp_ms, list(carried.items())
            )
            return await future

    async def _send_many(self, records: Sequence[ProducerRecord]) -> list[RecordMetadata]:
        producer = self._require()
        known = self._known_topics
        encoded: list[_Encoded] = []
        nbytes = 0
        for record in records:
            topic = record.topic
            if topic not in known:
                self._check_topic(topic)
            key, value = self._encode(topic, record.key, record.value)
            key_size = len(key) if key is not None else 0
            value_size = len(value) if value is not None else 0
            nbytes += key_size + value_size
            encoded.append(
                (
                    (
                        topic,
                        value,
                        key,
                        record.partition if record.partition >= 0 else None,
                        record.timestamp_ms,
                        _header_list(record.headers) if record.headers else None,
                    ),
                    key_size,
                    value_size,
                )
            )
        results: list[RecordMetadata | None] = [None] * len(encoded)
        pending = list(range(len(encoded)))
        attempt = 0
        started = time.perf_counter()
        while True:
            if self._breaker is not None:
                self._breaker.check()
            errors = await _send_indices(producer, encoded, pending, results)
            if not errors:
                break
            first_index, first_exc = errors[0]
            topic, _, _, partition, _, _ = encoded[first_index][0]
            error = self._failed(first_exc, topic, partition)
            retry = [index for index, exc in errors if translate(exc, "produce").retryable]
            if attempt >= self._retry.max_retries or len(retry) != len(errors):
                raise error from first_exc
            await asyncio.sleep(self._retry.backoff_ms(attempt) / 1000)
            attempt += 1
            pending = retry
        if self._breaker is not None:
            self._breaker.record_success()
        self._metrics.record_produce(len(results), nbytes, (time.perf_counter() - started) * 1000)
        return results  # type: ignore[return-value]  # every slot filled once no error is left


#: One record ready for aiokafka: ``send``'s arguments, then the key and value sizes.
_Encoded = tuple[
    tuple[str, bytes | None, bytes | None, int | None, int | None, list[tuple[str, bytes]] | None],
    int,
    int,
]


async def _send_indices(
    producer: AIOKafkaProducer,
    encoded: list[_Encoded],
    indices: list[int],
    results: list[RecordMetadata | None],
) -> list[tuple[int, BaseException]]:
    """Hand every record in ``indices`` to aiokafka, then wait for all; fill ``results`` and
    return the failures, in record order."""
    sent: list[int] = []
    futures: list[asyncio.Future[Any]] = []
    errors: list[tuple[int, BaseException]] = []
    send = producer.send
    for index in indices:
        try:
            futures.append(await send(*encoded[index][0]))
        except Exception as exc:
            errors.append((index, exc))
            continue
        sent.append(index)
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    for index, o in zip(sent, outcomes, strict=True):
        if isinstance(o, BaseException):
            errors.append((index, o))
            continue
        _, key_size, value_size = encoded[index]
        results[index] = record_metadata(
            o.topic, o.partition, o.offset, o.timestamp, key_size, value_size
        )
    errors.sort(key=lambda item: item[0])
    return errors


async def _unknown_topic(producer: AIOKafkaProducer, topic: str, exc: Exception) -> Exception:
    """aiokafka says "unknown topic" both when the broker denies the topic and when it gave
    up waiting for metadata from a broker it cannot reach. Ask once more to tell them apart:
    unreachable is a retryable ``ConnectionError``; a topic that exists now (auto-created, or
    re-created by a restarted broker) a retryable ``TopicError``; else the topic is missing."""
    try:
        updated = await producer.client.force_metadata_update()
        known = producer.client.cluster.partitions_for_topic(topic) is not None
    except Exception:
        updated, known = False, False
    if not updated:
        return ConnectionError(
            f"send to {topic!r}: no metadata for the topic; the broker did not answer"
        )
    error = translate(exc, "produce", f"send to {topic!r}")
    error.retryable = known
    return error


def _serialize(serializer: Serializer, value: Any, what: str) -> bytes | None:
    if value is None:
        return None
    try:
        data = serializer(value)
    except Exception as exc:
        raise serialization_error(exc, what) from exc
    if type(data) is bytes:
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise SerializationError(
        f"the serializer returned {type(data).__name__}, not bytes, for the {what}",
        hint="A serializer must return bytes",
    )


def _header_list(headers: HeadersLike) -> list[tuple[str, bytes]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, bytes]] = []
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"header {item!r} is not a (name, value) pair",
                hint="Pass headers as a dict or a list of (str, bytes) pairs",
            ) from exc
        if not isinstance(name, str):
            raise SerializationError(
                f"header name {name!r} is not a str", hint="Header names are strings"
            )
        if isinstance(value, str):
            value = value.encode()
        elif not isinstance(value, bytes):
            raise SerializationError(
                f"header {name!r} has a {type(value).__name__} value",
                hint="Header values are bytes or str",
            )
        out.append((name, value))
    return out


def _metadata(sent: Any, key_size: int, value_size: int) -> RecordMetadata:
    return record_metadata(
        sent.topic, sent.partition, sent.offset, sent.timestamp, key_size, value_size
    )
