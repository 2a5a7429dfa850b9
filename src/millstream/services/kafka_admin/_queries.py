"""What the admin API reports, read from the store: topics (``log.Topics``), partition offsets
(each partition stream's log start and tail), committed offsets of consumer groups (the Kafka
door's key-value layout) and records (Kafka batches decoded by ``log.iter_records``).

The committed-offset layout is the Kafka door's documented contract
(``millstream/server/kafka/_group_store.py``): namespace ``kafka.offsets``, key
``quote(group, safe="")/<topic>/<partition>``, value JSON whose ``offset`` is the next record
the group will read; namespace ``kafka.groups`` holds a record per group that joined.
"""

from __future__ import annotations

import heapq
from urllib.parse import quote

import orjson

from millstream.kafka import (
    ConsumerGroupLag,
    ConsumerLag,
    InspectedMessage,
    PartitionInfo,
    TopicInfo,
)
from millstream.log import (
    OffsetOutOfRange,
    Store,
    StreamNotFound,
    Topics,
    iter_records,
    partition_path,
)

__all__ = [
    "GROUPS_NAMESPACE",
    "OFFSETS_NAMESPACE",
    "GroupNotFound",
    "PartitionNotFound",
    "Queries",
]

OFFSETS_NAMESPACE = "kafka.offsets"
GROUPS_NAMESPACE = "kafka.groups"
_READ_BYTES = 1 << 20  # per read_batches call while inspecting


class GroupNotFound(LookupError):
    """No consumer group of this id has joined or committed."""


class PartitionNotFound(LookupError):
    """The topic exists but has no such partition."""


class Queries:
    """Read-only answers over one store; ``node_id`` leads every partition (one node)."""

    def __init__(self, store: Store, *, node_id: int) -> None:
        self.store = store
        self.topics = Topics(store)
        self.node_id = node_id

    async def list_topics(self) -> list[TopicInfo]:
        return [
            TopicInfo(name=t.name, partitions=t.partitions, replication_factor=1)
            for t in await self.topics.list()
        ]

    async def describe_topic(self, name: str) -> TopicInfo:
        """Raises ``TopicNotFound`` (and ``InvalidTopic`` for an illegal name)."""
        topic = await self.topics.describe(name)
        partitions = []
        for index, path in enumerate(topic.paths()):
            start, end = await self._offsets(path)
            node = self.node_id
            partitions.append(PartitionInfo(index, node, [node], [node], start, end))
        return TopicInfo(
            name=topic.name,
            partitions=topic.partitions,
            replication_factor=1,
            partition_info=partitions,
        )

    async def group_lag(self, group_id: str, topic: str | None = None) -> ConsumerGroupLag:
        """Lag of every partition the group committed an offset on (of ``topic`` only, when
        given): high watermark minus committed offset, never below 0."""
        prefix = quote(group_id, safe="") + "/"
        if topic is not None:
            await self.topics.describe(topic)  # TopicNotFound for a missing topic
            prefix += topic + "/"
        committed = await self.store.kv_scan(OFFSETS_NAMESPACE, prefix)
        if not committed and await self._unknown_group(group_id):
            raise GroupNotFound(f"no consumer group {group_id!r}")
        lags: list[ConsumerLag] = []
        for key, item in committed:
            name, _, number = key[len(quote(group_id, safe="")) + 1 :].rpartition("/")
            partition = int(number)
            offset = int(orjson.loads(item.value)["offset"])
            try:
                _, end = await self._offsets(partition_path(name, partition))
            except StreamNotFound:
                continue  # the topic was deleted since the commit
            lags.append(ConsumerLag(name, partition, offset, end, max(end - offset, 0)))
        lags.sort(key=lambda lag: (lag.topic, lag.partition))
        return ConsumerGroupLag(group_id, lags, sum(lag.lag for lag in lags))

    async def inspect(
        self, topic: str, partition: int, offset: int | None, limit: int
    ) -> list[InspectedMessage]:
        """Up to ``limit`` records of one partition from ``offset`` (from the log start when
        ``None`` or below it; nothing at or past the end)."""
        info = await self.topics.describe(topic)
        if not 0 <= partition < info.partitions:
            raise PartitionNotFound(
                f"topic {topic!r} has {info.partitions} partition(s), not {partition}"
            )
        path = partition_path(topic, partition)
        start, end = await self._offsets(path)
        first = start if offset is None else max(offset, start)
        return await self._read(path, partition, first, min(end, first + limit))

    async def latest(self, topic: str, count: int) -> list[InspectedMessage]:
        """The ``count`` newest records of ``topic`` across its partitions, oldest first (by
        timestamp, then partition and offset)."""
        info = await self.topics.describe(topic)
        newest: list[tuple[int, int, int, InspectedMessage]] = []
        for partition, path in enumerate(info.paths()):
            start, end = await self._offsets(path)
            for message in await self._read(path, partition, max(start, end - count), end):
                item = (message.timestamp, partition, message.offset, message)
                if len(newest) < count:
                    heapq.heappush(newest, item)
                else:
                    heapq.heappushpop(newest, item)
        return [item[3] for item in sorted(newest, key=lambda i: i[:3])]

    # -- internals --------------------------------------------------------------------------

    async def _offsets(self, path: str) -> tuple[int, int]:
        """(log start, high watermark) of one partition stream."""
        info = await self.store.head(path)
        return info.log_start, info.tail

    async def _unknown_group(self, group_id: str) -> bool:
        return await self.store.kv_get(GROUPS_NAMESPACE, group_id) is None

    async def _read(
        self, path: str, partition: int, start: int, stop: int
    ) -> list[InspectedMessage]:
        """Records at positions ``[start, stop)``."""
        out: list[InspectedMessage] = []
        position = start
        while position < stop:
            try:
                result = await self.store.read_batches(path, position, max_bytes=_READ_BYTES)
            except OffsetOutOfRange:
                break  # truncated meanwhile
            if not result.batches:
                break
            for batch in result.batches:
                for record in iter_records(batch):
                    if position <= record.offset < stop:
                        out.append(
                            InspectedMessage.from_record(
                                partition=partition,
                                offset=record.offset,
                                timestamp=record.timestamp_ms,
                                key=record.key,
                                value=record.value,
                                headers=[(k, v or b"") for k, v in record.headers],
                            )
                        )
            if result.next <= position:
                break
            position = result.next
        return out
