"""Produce (0) and InitProducerId (22): record batches in, as the producer's bytes.

Each partition's batches go to ``store.produce`` (header and CRC-32C checked by
``log.split_batches``, records never decoded); the partitions of one request are produced
concurrently, so they share the store's group commit. acks=0 is answered with nothing, acks=1
and acks=all alike once the store has committed (the database is every replica). In a cluster a
partition led by another node is answered NOT_LEADER_OR_FOLLOWER (``_brokers``).

Produce v0-2 is advertised only because librdkafka before 2.11.1 turns gzip, snappy and lz4
off unless the broker lists Produce v0 (Kafka 4.0 lists it for the same reason, KAFKA-18659).
The clients that really send v0-2 write message format v0/v1 (magic 0 or 1), which this log
does not hold: those partitions get UNSUPPORTED_FOR_MESSAGE_FORMAT. From v3 a magic below 2
breaks the protocol itself, and gets INVALID_RECORD as Kafka's brokers answer it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from millstream.log import (
    KafkaBatch,
    LogError,
    StreamNotFound,
    TopicInfo,
    is_internal,
    is_topic_name,
    partition_path,
    split_batches,
)

from ._errors import error_code
from .codec import (
    ErrorCode,
    InitProducerIdRequest,
    InitProducerIdResponse,
    PartitionProduceData,
    PartitionProduceResponse,
    ProduceRequest,
    ProduceResponse,
    RequestHeader,
    TopicProduceResponse,
)

if TYPE_CHECKING:
    from ._broker import Broker
    from ._connection import KafkaConnection

__all__ = ["init_producer_id", "produce"]

logger = logging.getLogger("millstream.server.kafka")

_VALID_ACKS = (-1, 0, 1)
_FIRST_RECORD_BATCH_VERSION = 3  # Produce v3 brought message format v2 (magic 2)
_MAGIC_AT = 16  # where a v2 batch and a v0/v1 message alike keep their magic byte


async def produce(
    broker: Broker, header: RequestHeader, body: ProduceRequest, connection: KafkaConnection
) -> ProduceResponse:
    """Write every partition's batches; one ``PartitionProduceResponse`` each, in order.

    Pipelined produces of one connection run side by side (they share a commit), but their
    store calls are issued in request order, as an idempotent producer's sequence numbers
    require: each request waits, before its first store call, until the previous one of the
    connection has issued all of its own (its topic lookups may take longer than ours)."""
    # Take our turn now, before the first await: requests start in the order they came.
    previous: asyncio.Future[None] | None = connection.state.get(_ISSUED)
    mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    connection.state[_ISSUED] = mine
    pending = _Issued(mine, sum(len(topic.partition_data) for topic in body.topic_data))
    try:
        refused: ErrorCode | None = None
        if body.acks not in _VALID_ACKS:
            refused = ErrorCode.INVALID_REQUIRED_ACKS
        elif body.transactional_id is not None:
            refused = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED  # no transactions here
        found = [refused or await _topic(broker, topic.name) for topic in body.topic_data]
        if previous is not None:
            await previous
    except BaseException:
        pending.cancel()  # the next request must not wait for ours forever
        raise
    jobs: list[asyncio.Future[PartitionProduceResponse]] = []
    for topic, info in zip(body.topic_data, found, strict=True):
        for part in topic.partition_data:
            if isinstance(info, TopicInfo):
                job = _produce_partition(broker, info, part, header.api_version, pending)
                jobs.append(asyncio.ensure_future(job))
            else:
                pending.one()
                jobs.append(_done(PartitionProduceResponse(index=part.index, error_code=info)))
    results = await asyncio.gather(*jobs)
    responses: list[TopicProduceResponse] = []
    index = 0
    for topic in body.topic_data:
        count = len(topic.partition_data)
        responses.append(
            TopicProduceResponse(
                name=topic.name, partition_responses=results[index : index + count]
            )
        )
        index += count
    return ProduceResponse(responses=responses)


_ISSUED = "produce.issued"  # connection state: the last produce's "store calls issued"


class _Issued:
    """Resolves ``future`` once ``count`` partitions have issued their last store call."""

    __slots__ = ("count", "future")

    def __init__(self, future: asyncio.Future[None], count: int) -> None:
        self.future = future
        self.count = count
        if count <= 0 and not future.done():
            future.set_result(None)

    def one(self) -> None:
        self.count -= 1
        if self.count <= 0 and not self.future.done():
            self.future.set_result(None)

    def cancel(self) -> None:
        self.count = 0
        if not self.future.done():
            self.future.set_result(None)


async def _topic(broker: Broker, name: str) -> TopicInfo | ErrorCode:
    """The topic records go to (created if missing and allowed), or why there is none."""
    if not is_topic_name(name) or is_internal(name):
        return ErrorCode.INVALID_TOPIC_EXCEPTION
    info = await broker.topic_cache.get(name)
    if info is not None:
        return info
    if not broker.settings.auto_create_topics:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    return await broker.auto_create(name)


async def _produce_partition(
    broker: Broker, topic: TopicInfo, part: PartitionProduceData, version: int, pending: _Issued
) -> PartitionProduceResponse:
    """Produce one partition's batches; ``pending.one()`` once its last store call is issued
    (the stores enqueue a call before its first await), or at the end when there is none."""
    called = False

    def issued() -> None:
        nonlocal called
        if not called:
            called = True
            pending.one()

    try:
        return await _produce_batches(broker, topic, part, version, issued)
    finally:
        issued()


async def _produce_batches(
    broker: Broker,
    topic: TopicInfo,
    part: PartitionProduceData,
    version: int,
    issued: Callable[[], None],
) -> PartitionProduceResponse:
    index = part.index
    if not 0 <= index < topic.partitions:
        return PartitionProduceResponse(
            index=index, error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
    if not broker.brokers.leads(topic.name, index):
        return PartitionProduceResponse(index=index, error_code=ErrorCode.NOT_LEADER_OR_FOLLOWER)
    records = part.records
    if not records:
        return PartitionProduceResponse(index=index, error_code=ErrorCode.CORRUPT_MESSAGE)
    if len(records) > _MAGIC_AT and records[_MAGIC_AT] in (0, 1):
        return _old_message_format(index, records[_MAGIC_AT], version)
    limit = topic.max_message_bytes
    if len(records) > limit:
        return PartitionProduceResponse(
            index=index,
            error_code=ErrorCode.MESSAGE_TOO_LARGE,
            error_message=f"{len(records)} bytes of records exceed max.message.bytes {limit} "
            f"of topic {topic.name!r}",
        )
    path = partition_path(topic.name, index)
    first = None
    try:
        # records is a view of the request frame; so is each batch (nothing is copied here)
        batches = split_batches(records)
        for k, batch in enumerate(batches):
            if topic.log_append_time:
                batch = _with_log_append_time(batch)
            if k == len(batches) - 1:
                issued()  # the call below enqueues before it first waits
            result = await broker.store.produce(path, batch)
            stats = broker.stats
            stats.produced_batches += 1
            stats.produced_records += batch.record_count
            stats.produced_bytes += len(batch.data)
            if first is None:
                first = result
    except StreamNotFound:
        broker.topic_cache.forget(topic.name)
        return PartitionProduceResponse(
            index=index, error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
    except LogError as exc:
        return PartitionProduceResponse(
            index=index, error_code=error_code(exc), error_message=exc.message
        )
    assert first is not None
    return PartitionProduceResponse(
        index=index,
        base_offset=first.base_offset,
        log_append_time_ms=first.log_append_time_ms,
        log_start_offset=first.log_start_offset,
    )


def _old_message_format(index: int, magic: int, version: int) -> PartitionProduceResponse:
    """The answer to a message set of format v0/v1: see the module docstring."""
    if version < _FIRST_RECORD_BATCH_VERSION:
        code = ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT
        why = "this log holds message format v2 (magic 2) only: use a Kafka 0.11+ client"
    else:
        code = ErrorCode.INVALID_RECORD
        why = f"Produce v{version} carries record batches of magic 2 only"
    return PartitionProduceResponse(
        index=index, error_code=code, error_message=f"records of magic {magic}: {why}"
    )


def _with_log_append_time(batch: KafkaBatch) -> KafkaBatch:
    return KafkaBatch(
        data=batch.data,
        record_count=batch.record_count,
        first_timestamp_ms=batch.first_timestamp_ms,
        max_timestamp_ms=batch.max_timestamp_ms,
        producer_id=batch.producer_id,
        producer_epoch=batch.producer_epoch,
        base_sequence=batch.base_sequence,
        log_append_time=True,
        attributes=batch.attributes,
    )


def _done(response: PartitionProduceResponse) -> asyncio.Future[PartitionProduceResponse]:
    future: asyncio.Future[PartitionProduceResponse] = asyncio.get_running_loop().create_future()
    future.set_result(response)
    return future


async def init_producer_id(broker: Broker, body: InitProducerIdRequest) -> InitProducerIdResponse:
    """A fresh idempotent producer id (KIP-98). Transactions are not supported; a producer
    asking to bump its epoch (KIP-360) gets a fresh id, which clients accept alike."""
    if body.transactional_id is not None:
        return InitProducerIdResponse(error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    try:
        producer_id, epoch = await broker.store.init_producer_id()
    except LogError as exc:
        return InitProducerIdResponse(error_code=error_code(exc))
    return InitProducerIdResponse(producer_id=producer_id, producer_epoch=epoch)
