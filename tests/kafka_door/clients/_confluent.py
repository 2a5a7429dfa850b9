"""confluent-kafka (librdkafka, its own threads): Producer, Consumer, AdminClient."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

from confluent_kafka import (
    OFFSET_INVALID,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka import (
    Consumer as RdConsumer,
)
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from confluent_kafka.admin import (
    OffsetSpec as RdOffsetSpec,
)

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

__all__ = ["ConfluentClient"]

T = TypeVar("T")
TIMEOUT = 30.0
# librdkafka's ConsumerGroupState names -> Kafka's
_STATES = {
    "STABLE": "Stable",
    "EMPTY": "Empty",
    "PREPARING_REBALANCING": "PreparingRebalance",
    "COMPLETING_REBALANCING": "CompletingRebalance",
    "DEAD": "Dead",
}


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except KafkaException as exc:
        error = exc.args[0]
        if not isinstance(error, KafkaError):
            raise
        raise KafkaCallError(error.code(), error.str()) from exc


def _result(future: Future[T]) -> T:
    with _translated():
        return future.result(TIMEOUT)


class _Consumer(Consumer):
    def __init__(self, bootstrap: str, group: str | None, max_wait_ms: int) -> None:
        self._consumer = RdConsumer(
            {
                "bootstrap.servers": bootstrap,
                # librdkafka wants a group even for assign(); nothing joins it then
                "group.id": group or f"assign-only-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": max_wait_ms,
                "heartbeat.interval.ms": 200,
                "session.timeout.ms": 6000,
            }
        )

    def assign(self, topic: str, partitions: Sequence[int]) -> None:
        self._consumer.assign([TopicPartition(topic, p) for p in partitions])

    def subscribe(self, topic: str) -> None:
        self._consumer.subscribe([topic])

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self._consumer.assignment()}

    def seek(self, topic: str, partition: int, offset: int) -> None:
        with _translated():
            self._consumer.seek(TopicPartition(topic, partition, offset))

    def poll(self, count: int, timeout: float) -> list[Received]:
        out: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and (left := deadline - time.monotonic()) > 0:
            for message in self._consumer.consume(count - len(out), min(left, 1.0)):
                if error := message.error():
                    raise KafkaCallError(error.code(), error.str())
                out.append(_received(message))
        return out

    def commit(self) -> None:
        with _translated():
            self._consumer.commit(asynchronous=False)

    def commit_offsets(self, topic: str, offsets: Mapping[int, int]) -> None:
        with _translated():
            self._consumer.commit(
                offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                asynchronous=False,
            )

    def committed(self, topic: str, partitions: Sequence[int]) -> dict[int, int | None]:
        with _translated():
            found = self._consumer.committed(
                [TopicPartition(topic, p) for p in partitions], timeout=TIMEOUT
            )
        return {tp.partition: None if tp.offset == OFFSET_INVALID else tp.offset for tp in found}

    def close(self) -> None:
        self._consumer.close()


def _received(message: Message) -> Received:
    _, timestamp = message.timestamp()
    return Received(
        partition=message.partition(),
        offset=message.offset(),
        key=message.key(),
        value=message.value(),
        headers=tuple(message.headers() or ()),
        timestamp=timestamp,
    )


class ConfluentClient(Client):
    name = "confluent-kafka"

    def __init__(self, bootstrap: str) -> None:
        super().__init__(bootstrap)
        self._admin = AdminClient({"bootstrap.servers": bootstrap})

    def cluster(self) -> Cluster:
        with _translated():
            metadata = self._admin.list_topics(timeout=TIMEOUT)
        return Cluster(
            brokers=[(b.id, b.host, b.port) for b in metadata.brokers.values()],
            topics={name: len(t.partitions) for name, t in metadata.topics.items()},
        )

    def create_topic(
        self, name: str, partitions: int, configs: Mapping[str, str] | None = None
    ) -> None:
        topic = NewTopic(name, partitions, 1, config=dict(configs or {}))
        for future in self._admin.create_topics([topic]).values():
            _result(future)

    def produce(
        self,
        topic: str,
        records: Sequence[Record],
        *,
        acks: Acks = "all",
        compression: Compression = "none",
        idempotent: bool = False,
    ) -> list[Delivered]:
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": acks,
                "compression.type": compression,
                "enable.idempotence": idempotent,
                "linger.ms": 5,
            }
        )
        delivered: dict[int, Delivered | KafkaError] = {}

        def report(index: int) -> Any:
            def on_delivery(error: KafkaError | None, message: Message) -> None:
                offset = -1 if acks == "0" else message.offset()
                delivered[index] = error or Delivered(message.partition(), offset)

            return on_delivery

        for index, r in enumerate(records):
            extra: dict[str, Any] = {}
            if r.partition is not None:
                extra["partition"] = r.partition
            if r.timestamp is not None:
                extra["timestamp"] = r.timestamp
            producer.produce(
                topic,
                value=r.value,
                key=r.key,
                headers=list(r.headers),
                on_delivery=report(index),
                **extra,
            )
            producer.poll(0)
        assert producer.flush(TIMEOUT) == 0, "records still queued after the flush timeout"
        out = [delivered[i] for i in range(len(records))]
        for entry in out:
            if isinstance(entry, KafkaError):
                raise KafkaCallError(entry.code(), entry.str())
        return [d for d in out if isinstance(d, Delivered)]

    def consumer(self, group: str | None = None, *, max_wait_ms: int = 500) -> Consumer:
        return _Consumer(self.bootstrap, group, max_wait_ms)

    def offsets(self, topic: str, partitions: Sequence[int], spec: OffsetSpec) -> dict[int, int]:
        if spec == "earliest":
            wanted = RdOffsetSpec.earliest()
        elif spec == "latest":
            wanted = RdOffsetSpec.latest()
        else:
            wanted = RdOffsetSpec.for_timestamp(spec)
        futures = self._admin.list_offsets({TopicPartition(topic, p): wanted for p in partitions})
        return {tp.partition: _result(future).offset for tp, future in futures.items()}

    def describe_configs(self, topic: str) -> dict[str, str]:
        resource = ConfigResource(ResourceType.TOPIC, topic)
        (future,) = self._admin.describe_configs([resource]).values()
        return {name: entry.value for name, entry in _result(future).items()}

    def list_groups(self) -> list[str]:
        listed = _result(self._admin.list_consumer_groups())
        return [g.group_id for g in listed.valid]

    def describe_group(self, group: str) -> GroupView:
        (future,) = self._admin.describe_consumer_groups([group]).values()
        described = _result(future)
        return GroupView(state=_STATES[described.state.name], members=len(described.members))

    def create_partitions(self, topic: str, total: int) -> None:
        for future in self._admin.create_partitions([NewPartitions(topic, total)]).values():
            _result(future)

    def delete_records(self, topic: str, before: Mapping[int, int]) -> dict[int, int]:
        futures = self._admin.delete_records(
            [TopicPartition(topic, p, o) for p, o in before.items()]
        )
        return {tp.partition: _result(future).low_watermark for tp, future in futures.items()}

    def delete_topic(self, name: str) -> None:
        for future in self._admin.delete_topics([name]).values():
            _result(future)

    def close(self) -> None:
        """AdminClient has no close: dropping the last reference destroys the handle now,
        while the server still runs (not at some later garbage collection)."""
        del self._admin
