"""aiokafka (asyncio): AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient.

Its objects live on one event loop in a thread of their own, so the scenarios (and the
several members of a group, each on its own thread) call it as they call the blocking clients.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import aiokafka.errors
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import OffsetAndMetadata

from ._api import (
    Acks,
    Client,
    Cluster,
    Compression,
    Consumer,
    Delivered,
    GroupView,
    KafkaCallError,
    OffsetSpec,
    Received,
    Record,
)

__all__ = ["AiokafkaClient"]

T = TypeVar("T")


class _LoopThread:
    """An event loop running in a daemon thread; ``run`` waits for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(_translated(coro), self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def _translated(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return await coro
    except aiokafka.errors.KafkaError as exc:
        if exc.errno is None:
            raise
        raise KafkaCallError(exc.errno, str(exc)) from exc


def _check(code: int, detail: object) -> None:
    if code:
        raise KafkaCallError(code, str(detail))


class _Consumer(Consumer):
    def __init__(self, loop: _LoopThread, bootstrap: str, group: str | None, max_wait_ms: int):
        self._loop = loop

        async def start() -> AIOKafkaConsumer:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=group,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                fetch_max_wait_ms=max_wait_ms,
                heartbeat_interval_ms=200,
                session_timeout_ms=6000,
            )
            await consumer.start()
            return consumer

        self._consumer = loop.run(start())

    def _call(self, fn: Callable[[], T]) -> T:
        """A plain method of the consumer, called on its loop (aiokafka makes futures there)."""

        async def call() -> T:
            return fn()

        return self._loop.run(call())

    def assign(self, topic: str, partitions: Sequence[int]) -> None:
        self._call(lambda: self._consumer.assign([TopicPartition(topic, p) for p in partitions]))

    def subscribe(self, topic: str) -> None:
        self._call(lambda: self._consumer.subscribe([topic]))

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self._call(self._consumer.assignment)}

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self._call(lambda: self._consumer.seek(TopicPartition(topic, partition), offset))

    def poll(self, count: int, timeout: float) -> list[Received]:
        async def poll() -> list[Received]:
            out: list[Received] = []
            deadline = time.monotonic() + timeout
            while len(out) < count and (left := deadline - time.monotonic()) > 0:
                batches = await self._consumer.getmany(timeout_ms=int(left * 1000) + 1)
                for records in batches.values():
                    out.extend(_received(r) for r in records)
            return out

        return self._loop.run(poll())

    def commit(self) -> None:
        self._loop.run(self._consumer.commit())

    def commit_offsets(self, topic: str, offsets: Mapping[int, int]) -> None:
        self._loop.run(
            self._consumer.commit(
                {TopicPartition(topic, p): OffsetAndMetadata(o, "") for p, o in offsets.items()}
            )
        )

    def committed(self, topic: str, partitions: Sequence[int]) -> dict[int, int | None]:
        async def committed() -> dict[int, int | None]:
            return {p: await self._consumer.committed(TopicPartition(topic, p)) for p in partitions}

        return self._loop.run(committed())

    def close(self) -> None:
        self._loop.run(self._consumer.stop())


def _received(record: Any) -> Received:
    return Received(
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=tuple(record.headers),
        timestamp=record.timestamp,
    )


class AiokafkaClient(Client):
    name = "aiokafka"

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap)
        self._loop = _LoopThread()

        async def start() -> AIOKafkaAdminClient:
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            await admin.start()
            return admin

        self._admin = self._loop.run(start())

    def cluster(self) -> Cluster:
        described = self._loop.run(self._admin.describe_cluster())
        topics = self._loop.run(self._admin.describe_topics())
        return Cluster(
            brokers=[(b["node_id"], b["host"], b["port"]) for b in described["brokers"]],
            topics={t["topic"]: len(t["partitions"]) for t in topics},
        )

    def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> None:
        response = self._loop.run(
            self._admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
        )
        for _, code, message in response.topic_errors:
            _check(code, message)

    def produce(
        self,
        topic: str,
        records: Sequence[Record],
        *,
        acks: Acks = "all",
        compression: Compression = "none",
        idempotent: bool = False,
    ) -> list[Delivered]:
        async def produce() -> list[Delivered]:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks={"0": 0, "1": 1, "all": "all"}[acks],
                compression_type=None if compression == "none" else compression,
                enable_idempotence=idempotent,
                linger_ms=5,
            )
            await producer.start()
            try:
                sends = [
                    await producer.send(
                        topic,
                        value=r.value,
                        key=r.key,
                        headers=list(r.headers),
                        partition=r.partition,
                        timestamp_ms=r.timestamp,
                    )
                    for r in records
                ]
                metas = await asyncio.gather(*sends)
            finally:
                await producer.stop()
            # acks=0: the send resolves to None, there being no answer
            return [
                Delivered(m.partition, m.offset) if m else Delivered(r.partition or 0, -1)
                for m, r in zip(metas, records, strict=True)
            ]

        return self._loop.run(produce())

    def consumer(self, group: str | None = None, *, max_wait_ms: int = 500) -> Consumer:
        return _Consumer(self._loop, self.bootstrap, group, max_wait_ms)

    def offsets(self, topic: str, partitions: Sequence[int], spec: OffsetSpec) -> dict[int, int]:
        tps = [TopicPartition(topic, p) for p in partitions]

        async def offsets() -> dict[TopicPartition, int]:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
            await consumer.start()
            try:
                if spec == "earliest":
                    return await consumer.beginning_offsets(tps)
                if spec == "latest":
                    return await consumer.end_offsets(tps)
                times = await consumer.offsets_for_times(dict.fromkeys(tps, spec))
                return {tp: -1 if t is None else t.offset for tp, t in times.items()}
            finally:
                await consumer.stop()

        return {tp.partition: offset for tp, offset in self._loop.run(offsets()).items()}

    def describe_configs(self, topic: str) -> dict[str, str]:
        responses = self._loop.run(
            self._admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        )
        configs: dict[str, str] = {}
        for response in responses:
            for code, message, _, name, entries in response.resources:
                _check(code, message)
                assert name == topic
                configs.update({entry[0]: entry[1] for entry in entries})
        return configs

    def list_groups(self) -> list[str]:
        return [group[0] for group in self._loop.run(self._admin.list_consumer_groups())]

    def describe_group(self, group: str) -> GroupView:
        (response,) = self._loop.run(self._admin.describe_consumer_groups([group]))
        (described,) = response.groups
        code, group_id, state, *_, members = described[:6]
        _check(code, group_id)
        return GroupView(state=state, members=len(members))

    def create_partitions(self, topic: str, total: int) -> None:
        self._loop.run(self._admin.create_partitions({topic: NewPartitions(total)}))

    def delete_records(self, topic: str, before: Mapping[int, int]) -> dict[int, int]:
        done = self._loop.run(
            self._admin.delete_records(
                {TopicPartition(topic, p): RecordsToDelete(o) for p, o in before.items()}
            )
        )
        return {tp.partition: low for tp, low in done.items()}

    def delete_topic(self, name: str) -> None:
        response = self._loop.run(self._admin.delete_topics([name]))
        for _, code, *_ in response.topic_error_codes:
            _check(code, name)

    def close(self) -> None:
        self._loop.run(self._admin.close())
        self._loop.stop()
