"""Fetch (1), ListOffsets (2) and DeleteRecords (21): reading and trimming partitions.

Fetch passes stored batches through as bytes (``store.read_batches``; Durable Streams
messages arrive already encoded as batches) and long-polls on the store's in-process
notifier: it subscribes to every partition it reads *before* reading, so no append slips
between the read and the wait, and answers as soon as ``min_bytes`` are there, ``max_wait_ms``
has passed, or the node is shutting down. ``max_bytes`` and each partition's
``partition_max_bytes`` bound the answer, except that the first batch of the first partition
with data is always sent whole (as Kafka does, so a large batch never blocks a consumer).
No fetch sessions (KIP-227): every answer is a full one with session id 0. In a cluster, a
partition another node leads is answered NOT_LEADER_OR_FOLLOWER at once (``_brokers``).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from millstream.log import (
    LogError,
    OffsetOutOfRange,
    is_internal,
    is_topic_name,
    partition_path,
)

from ._errors import error_code
from .codec import (
    DeleteRecordsPartitionResult,
    DeleteRecordsRequest,
    DeleteRecordsResponse,
    DeleteRecordsTopicResult,
    ErrorCode,
    FetchableTopicResponse,
    FetchRequest,
    FetchResponse,
    ListOffsetsPartitionResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
    PartitionData,
)

if TYPE_CHECKING:
    from ._broker import Broker

__all__ = ["delete_records", "fetch", "list_offsets"]

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3  # KIP-734: the record with the largest timestamp
MAX_WAIT_MS = 30_000  # a longer max_wait_ms is cut to this (clients send ~500 ms)


def _kafka_path(topic: str, partition: int) -> str | None:
    """The stream behind a partition a Kafka client may read, or ``None``."""
    if partition < 0 or not is_topic_name(topic) or is_internal(topic):
        return None
    return partition_path(topic, partition)


async def fetch(broker: Broker, body: FetchRequest) -> FetchResponse:
    store = broker.store
    notifier = store.notifier
    wanted = [
        (topic.topic, part.partition, part.fetch_offset, part.partition_max_bytes)
        for topic in body.topics
        for part in topic.partitions
    ]
    paths = [_kafka_path(topic, partition) for topic, partition, _, _ in wanted]
    leads = broker.brokers.leads
    errors = [
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if path is None
        else None
        if leads(topic, partition)
        else ErrorCode.NOT_LEADER_OR_FOLLOWER
        for (topic, partition, _, _), path in zip(wanted, paths, strict=True)
    ]
    max_wait = min(max(body.max_wait_ms, 0), MAX_WAIT_MS) / 1000
    if ErrorCode.NOT_LEADER_OR_FOLLOWER in errors:
        max_wait = 0  # answer at once: the client must go to the leader
    deadline = time.monotonic() + max_wait
    while True:
        waiters = []
        if max_wait > 0 and not notifier.closing:
            waiters = [(path, notifier.subscribe(path)) for path in paths if path is not None]
        try:
            results, size = await _read_all(broker, wanted, paths, errors, body.max_bytes)
            remaining = deadline - time.monotonic()
            if size >= body.min_bytes or remaining <= 0 or not waiters or notifier.closing:
                break
            futures = [future for _, future in waiters]
            broker.stats.parked_fetches += 1
            try:
                done, _ = await asyncio.wait(
                    futures, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                broker.stats.parked_fetches -= 1
            if not done:  # nothing changed since the read (it came after subscribing)
                break
        finally:
            for path, future in waiters:
                notifier.unsubscribe(path, future)
    broker.stats.fetched_bytes += size
    responses: list[FetchableTopicResponse] = []
    index = 0
    for topic in body.topics:
        count = len(topic.partitions)
        responses.append(
            FetchableTopicResponse(topic=topic.topic, partitions=results[index : index + count])
        )
        index += count
    return FetchResponse(responses=responses)


async def _read_all(
    broker: Broker,
    wanted: list[tuple[str, int, int, int]],
    paths: list[str | None],
    errors: list[ErrorCode | None],
    max_bytes: int,
) -> tuple[list[PartitionData], int]:
    """One pass over every partition within the byte budgets; the bytes found."""
    budget = max_bytes
    size = 0
    results: list[PartitionData] = []
    for (_, partition, offset, partition_max), path, error in zip(
        wanted, paths, errors, strict=True
    ):
        if path is None or error is not None:
            results.append(PartitionData(partition_index=partition, error_code=error or 0))
            continue
        limit = min(partition_max, budget) if size else partition_max
        data, read = await _read_partition(broker, path, partition, offset, max(limit, 0))
        results.append(data)
        size += read
        budget -= read
    return results, size


async def _read_partition(
    broker: Broker, path: str, partition: int, offset: int, limit: int
) -> tuple[PartitionData, int]:
    """The partition's answer and the bytes of records in it."""
    store = broker.store
    try:
        if limit <= 0:  # the budget is spent: report the watermarks only
            info = await store.head(path)
            if not info.log_start <= offset <= info.tail:
                raise OffsetOutOfRange(
                    f"offset {offset} is outside [{info.log_start}, {info.tail}]",
                    log_start=info.log_start,
                    tail=info.tail,
                )
            return PartitionData(
                partition_index=partition,
                high_watermark=info.tail,
                last_stable_offset=info.tail,
                log_start_offset=info.log_start,
                records=b"",
            ), 0
        result = await store.read_batches(path, offset, max_bytes=limit)
    except OffsetOutOfRange as exc:
        return PartitionData(
            partition_index=partition,
            error_code=ErrorCode.OFFSET_OUT_OF_RANGE,
            high_watermark=exc.tail,
            last_stable_offset=exc.tail,
            log_start_offset=exc.log_start,
        ), 0
    except LogError as exc:
        return PartitionData(partition_index=partition, error_code=error_code(exc)), 0
    batches = result.batches
    return PartitionData(
        partition_index=partition,
        high_watermark=result.high_watermark,
        last_stable_offset=result.high_watermark,
        log_start_offset=result.log_start,
        records=batches,
    ), sum(map(len, batches))


async def list_offsets(broker: Broker, body: ListOffsetsRequest) -> ListOffsetsResponse:
    topics: list[ListOffsetsTopicResponse] = []
    for topic in body.topics:
        partitions = [
            await _list_offset(broker, topic.name, part.partition_index, part.timestamp)
            for part in topic.partitions
        ]
        topics.append(ListOffsetsTopicResponse(name=topic.name, partitions=partitions))
    return ListOffsetsResponse(topics=topics)


async def _list_offset(
    broker: Broker, topic: str, partition: int, timestamp: int
) -> ListOffsetsPartitionResponse:
    path = _kafka_path(topic, partition)
    if path is None:
        return ListOffsetsPartitionResponse(
            partition_index=partition, error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
    if not broker.brokers.leads(topic, partition):
        return ListOffsetsPartitionResponse(
            partition_index=partition, error_code=ErrorCode.NOT_LEADER_OR_FOLLOWER
        )
    store = broker.store
    try:
        if timestamp == LATEST:
            offset, found_at = (await store.head(path)).tail, -1
        elif timestamp == EARLIEST:
            offset, found_at = (await store.head(path)).log_start, -1
        elif timestamp == MAX_TIMESTAMP or timestamp < 0:
            return ListOffsetsPartitionResponse(
                partition_index=partition, error_code=ErrorCode.UNSUPPORTED_VERSION
            )
        else:
            found = await store.offset_for_time(path, timestamp)
            if found is None:  # no record that late: Kafka answers -1/-1
                return ListOffsetsPartitionResponse(partition_index=partition)
            offset, found_at = found
    except LogError as exc:
        return ListOffsetsPartitionResponse(partition_index=partition, error_code=error_code(exc))
    return ListOffsetsPartitionResponse(
        partition_index=partition, timestamp=found_at, offset=offset
    )


async def delete_records(broker: Broker, body: DeleteRecordsRequest) -> DeleteRecordsResponse:
    topics: list[DeleteRecordsTopicResult] = []
    for topic in body.topics:
        results: list[DeleteRecordsPartitionResult] = []
        for part in topic.partitions:
            index = part.partition_index
            path = _kafka_path(topic.name, index)
            code = ErrorCode.NONE
            if path is None:
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif not broker.brokers.leads(topic.name, index):
                code = ErrorCode.NOT_LEADER_OR_FOLLOWER
            if path is None or code != ErrorCode.NONE:
                results.append(DeleteRecordsPartitionResult(partition_index=index, error_code=code))
                continue
            try:
                start = await broker.store.delete_records(path, part.offset)
            except LogError as exc:
                results.append(
                    DeleteRecordsPartitionResult(
                        partition_index=index, low_watermark=-1, error_code=error_code(exc)
                    )
                )
                continue
            results.append(DeleteRecordsPartitionResult(partition_index=index, low_watermark=start))
        topics.append(DeleteRecordsTopicResult(name=topic.name, partitions=results))
    return DeleteRecordsResponse(topics=topics)
