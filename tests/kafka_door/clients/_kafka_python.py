"""kafka-python 3 (pure Python, blocking): KafkaProducer, KafkaConsumer, KafkaAdminClient."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import kafka.errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, NewPartitions, NewTopic
from kafka.structs import OffsetAndMetadata

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

__all__ = ["KafkaPythonClient"]


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except kafka.errors.BrokerResponseError as exc:
        raise KafkaCallError(exc.errno or -1, str(exc)) from exc


class _Consumer(Consumer):
    def __init__(self, bootstrap: str, group: str | None, max_wait_ms: int) -> None:
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=max_wait_ms,
            heartbeat_interval_ms=200,
            session_timeout_ms=6000,
        )

    def assign(self, topic: str, partitions: Sequence[int]) -> None:
        self._consumer.assign([TopicPartition(topic, p) for p in partitions])

    def subscribe(self, topic: str) -> None:
        self._consumer.subscribe([topic])

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self._consumer.assignment()}

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self._consumer.seek(TopicPartition(topic, partition), offset)

    def poll(self, count: int, timeout: float) -> list[Received]:
        out: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and (left := deadline - time.monotonic()) > 0:
            with _translated():
                batches = self._consumer.poll(timeout_ms=int(left * 1000) + 1)
            for records in batches.values():
                out.extend(_received(r) for r in records)
        return out

    def commit(self) -> None:
        with _translated():
            self._consumer.commit()

    def commit_offsets(self, topic: str, offsets: Mapping[int, int]) -> None:
        with _translated():
            self._consumer.commit(
                {TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}
            )

    def committed(self, topic: str, partitions: Sequence[int]) -> dict[int, int | None]:
        with _translated():
            return {p: self._consumer.committed(TopicPartition(topic, p)) for p in partitions}

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def _received(record: Any) -> Received:
    return Received(
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=tuple((k, v) for k, v in record.headers),
        timestamp=record.timestamp,
    )


class KafkaPythonClient(Client):
    name = "kafka-python"

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap)
        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap)

    def cluster(self) -> Cluster:
        with _translated():
            brokers = self._admin.describe_cluster()["brokers"]
            topics = self._admin.describe_topics()
        return Cluster(
            brokers=[(b["broker_id"], b["host"], b["port"]) for b in brokers],
            topics={t["name"]: len(t["partitions"]) for t in topics},
        )

    def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> None:
        with _translated():
            self._admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])

    def produce(
        self,
        topic: str,
        records: Sequence[Record],
        *,
        acks: Acks = "all",
        compression: Compression = "none",
        idempotent: bool = False,
    ) -> list[Delivered]:
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks={"0": 0, "1": 1, "all": "all"}[acks],
            compression_type=None if compression == "none" else compression,
            enable_idempotence=idempotent,
            linger_ms=5,
        )
        try:
            futures = [
                producer.send(
                    topic,
                    value=r.value,
                    key=r.key,
                    headers=list(r.headers),
                    partition=r.partition,
                    timestamp_ms=r.timestamp,
                )
                for r in records
            ]
            producer.flush(30)
            with _translated():
                metas = [future.get(30) for future in futures]
        finally:
            producer.close()
        return [Delivered(m.partition, m.offset) for m in metas]

    def consumer(self, group: str | None = None, *, max_wait_ms: int = 500) -> Consumer:
        return _Consumer(self.bootstrap, group, max_wait_ms)

    def offsets(self, topic: str, partitions: Sequence[int], spec: OffsetSpec) -> dict[int, int]:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            with _translated():
                if spec == "earliest":
                    found = consumer.beginning_offsets(tps)
                elif spec == "latest":
                    found = consumer.end_offsets(tps)
                else:
                    times = consumer.offsets_for_times(dict.fromkeys(tps, spec))
                    found = {tp: -1 if t is None else t.offset for tp, t in times.items()}
        finally:
            consumer.close()
        return {tp.partition: offset for tp, offset in found.items()}

    def describe_configs(self, topic: str) -> dict[str, str]:
        with _translated():
            described = self._admin.describe_configs(
                [ConfigResource("TOPIC", topic)], config_filter="all"
            )
        return {key: entry["value"] for key, entry in described["topic"][topic].items()}

    def list_groups(self) -> list[str]:
        with _translated():
            return [g["group_id"] for g in self._admin.list_groups()]

    def describe_group(self, group: str) -> GroupView:
        with _translated():
            described = self._admin.describe_groups([group])[group]
        return GroupView(state=described["group_state"], members=len(described["members"]))

    def create_partitions(self, topic: str, total: int) -> None:
        with _translated():
            self._admin.create_partitions({topic: NewPartitions(total)})

    def delete_records(self, topic: str, before: Mapping[int, int]) -> dict[int, int]:
        with _translated():
            done = self._admin.delete_records(
                {TopicPartition(topic, p): o for p, o in before.items()}
            )
        return {tp.partition: meta["low_watermark"] for tp, meta in done.items()}

    def delete_topic(self, name: str) -> None:
        with _translated():
            self._admin.delete_topics([name])

    def close(self) -> None:
        self._admin.close()
