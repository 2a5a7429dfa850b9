"""confluent-kafka (librdkafka) against a real ``millstream serve``: an idempotent zstd
producer, a group of consumers that rebalances, exactly-once delivery of what was acked."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.timeout(120)


def test_idempotent_producer_and_a_rebalancing_group(bootstrap: str, topic_name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic_name, 4, 1)]).values():
        future.result(10)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "zstd",
            "linger.ms": 5,
        }
    )
    acked: list[tuple[int, int]] = []

    def delivered(err: KafkaError | None, msg: object) -> None:
        assert err is None, err
        acked.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    for i in range(400):
        producer.produce(topic_name, key=b"%d" % i, value=b"m%d" % i, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(20) == 0
    assert len(acked) == 400

    group = f"g-{topic_name}"
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def consume(name: str) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "client.id": name,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic_name])
        try:
            while not stop.is_set():
                message = consumer.poll(0.2)
                if message is None or message.error():
                    continue
                with lock:
                    seen.append((message.partition(), message.offset()))
                consumer.commit(message=message, asynchronous=False)
        finally:
            consumer.close()

    first = threading.Thread(target=consume, args=("c1",))
    first.start()
    deadline = time.monotonic() + 30
    while len(seen) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    second = threading.Thread(target=consume, args=("c2",))  # joins: the group rebalances
    second.start()
    while len(set(seen)) < 400 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    first.join(20)
    second.join(20)
    assert sorted(set(seen)) == sorted(acked)

    check = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        committed = check.committed([TopicPartition(topic_name, p) for p in range(4)], timeout=10)
    finally:
        check.close()
    ends = {p: max(o for q, o in acked if q == p) + 1 for p in range(4)}
    assert {tp.partition: tp.offset for tp in committed} == ends
