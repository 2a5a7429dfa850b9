"""The Kafka door of a cluster: every node a broker, partition leaders and group coordinators
agreed by all nodes, clients sent to the right node, a group that survives its coordinator.

Real clients (librdkafka through confluent-kafka, kafka-python) against three `millstream
serve --store postgresql://...` processes; raw requests (``tests/kafka_door/wire.py``) check
what a node answers a client that asks the wrong node.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_door.test_bad_input import batch, produce, produce_error
from kafka_door.wire import Wire
from millstream.server.kafka import codec
from servers import ServerProcess, wait_until

from .conftest import StartCluster, health, node_ids

pytestmark = pytest.mark.timeout(240)


def create_topic(bootstrap: str, name: str, partitions: int, replication: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, replication)]).values():
        future.result(15)


def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """Partition -> leader node id, as the node at ``bootstrap`` answers Metadata."""
    with Wire(bootstrap) as wire:
        answer = wire.call(
            codec.MetadataRequest(topics=[codec.MetadataRequestTopic(name=topic)]), 9
        )
    [found] = answer.topics
    assert found.error_code == 0
    return {p.partition_index: p.leader_id for p in found.partitions}


def brokers(bootstrap: str) -> dict[int, str]:
    with Wire(bootstrap) as wire:
        answer = wire.call(codec.MetadataRequest(topics=[]), 9)
    return {b.node_id: f"{b.host}:{b.port}" for b in answer.brokers}


def coordinator(bootstrap: str, group: str) -> int:
    with Wire(bootstrap) as wire:
        answer = wire.call(codec.FindCoordinatorRequest(key=group), 3)
    assert answer.error_code == 0
    node_id: int = answer.node_id
    return node_id


def described(bootstrap: str, group: str) -> tuple[str, set[str]]:
    """``(state, member ids)`` of ``group`` as the node at ``bootstrap`` describes it."""
    with Wire(bootstrap) as wire:
        [found] = wire.call(codec.DescribeGroupsRequest(groups=[group]), 3).groups
    return found.group_state, {m.member_id for m in found.members}


def by_id(nodes: list[ServerProcess]) -> dict[int, ServerProcess]:
    return {health(node)["cluster"]["node_id"]: node for node in nodes}


def produce_one(bootstrap: str, topic: str, partition: int, value: bytes) -> int:
    """Produce one record to ``partition`` through ``bootstrap``: its error code."""
    with Wire(bootstrap) as wire:
        return produce_error(wire, produce(topic, batch(value), partition=partition))


def test_every_node_is_a_broker_and_all_agree_on_leaders_and_coordinators(
    start_cluster: StartCluster,
) -> None:
    nodes = start_cluster(3)
    ids = by_id(nodes)
    assert sorted(ids) == [0, 1, 2]
    listed = brokers(nodes[0].kafka)
    assert listed == {node_id: node.kafka for node_id, node in ids.items()}
    assert all(brokers(node.kafka) == listed for node in nodes)

    # A replication factor up to the live brokers is accepted (PostgreSQL holds the copies).
    create_topic(nodes[1].kafka, "spread", 12, replication=3)
    seen = [leaders(node.kafka, "spread") for node in nodes]
    assert seen[0] == seen[1] == seen[2]
    assert len(set(seen[0].values())) > 1  # 12 partitions spread over the nodes

    groups = [f"group-{i}" for i in range(12)]
    owners = {g: coordinator(nodes[0].kafka, g) for g in groups}
    assert all(coordinator(node.kafka, g) == owners[g] for node in nodes[1:] for g in groups)
    assert len(set(owners.values())) > 1

    # The wrong node refuses a partition it does not lead, so clients go to the leader.
    partition, leader = next(iter(seen[0].items()))
    other = next(node for node_id, node in ids.items() if node_id != leader)
    assert produce_one(other.kafka, "spread", partition, b"x") == 6  # NOT_LEADER_OR_FOLLOWER
    assert produce_one(ids[leader].kafka, "spread", partition, b"x") == 0
    with Wire(other.kafka) as wire:
        join = wire.call(
            codec.JoinGroupRequest(
                group_id=next(
                    g for g in groups if owners[g] != health(other)["cluster"]["node_id"]
                ),
                session_timeout_ms=10_000,
                rebalance_timeout_ms=10_000,
                member_id="",
                protocol_type="consumer",
                protocols=[codec.JoinGroupRequestProtocol(name="range", metadata=b"")],
            ),
            5,
        )
    assert join.error_code == 16  # NOT_COORDINATOR

    # A client bootstrapped on one node reaches every partition through its leader.
    producer = Producer({"bootstrap.servers": nodes[2].kafka, "enable.idempotence": True})
    failed: list[Any] = []
    for k in range(12):
        producer.produce(
            "spread", value=b"v%d" % k, partition=k,
            on_delivery=lambda err, _msg: failed.append(err) if err else None,
        )  # fmt: skip
    assert producer.flush(30) == 0
    assert failed == []
    tails = [
        httpx.head(f"{nodes[0].url}/v1/stream/spread" + (f":{k}" if k else "")).headers[
            "stream-next-offset"
        ]
        for k in range(12)
    ]
    assert len(tails) == 12
    assert tails[partition].startswith("0000000000000002")  # the raw produce and this one


def test_a_group_consumes_through_three_nodes_while_its_coordinator_is_killed(
    start_cluster: StartCluster,
) -> None:
    nodes = start_cluster(3)
    everyone = ",".join(node.kafka for node in nodes)
    topic, group, partitions = "orders", "billing", 6
    create_topic(everyone, topic, partitions)
    producer = Producer({"bootstrap.servers": everyone, "enable.idempotence": True, "linger.ms": 5})
    produced: list[bytes] = []

    def delivered(err: KafkaError | None, msg: Any) -> None:
        if err is None:
            produced.append(msg.value())

    def produce(start: int, count: int) -> None:
        for i in range(start, start + count):
            producer.produce(topic, key=b"%d" % i, value=b"o-%d" % i, on_delivery=delivered)
            producer.poll(0)
        assert producer.flush(60) == 0

    produce(0, 300)
    seen: collections.Counter[bytes] = collections.Counter()
    errors: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def consume(name: str) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": everyone,
                "group.id": group,
                "client.id": name,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 500,
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        try:
            while not stop.is_set():
                message = consumer.poll(0.2)
                if message is None:
                    continue
                if message.error():
                    if message.error().fatal():
                        errors.append(str(message.error()))
                    continue
                with lock:
                    seen[message.value()] += 1
                try:
                    consumer.commit(message, asynchronous=False)
                except Exception as exc:  # a commit during a move: the next one covers it
                    if "fatal" in str(exc).lower():
                        errors.append(str(exc))
        finally:
            consumer.close()

    threads = [threading.Thread(target=consume, args=(f"c{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    try:
        assert wait_until(lambda: len(seen) >= 300, 60), len(seen)
        owner = coordinator(nodes[0].kafka, group)
        ids = by_id(nodes)
        members: set[str] = set()

        def stable_with_three() -> bool:
            nonlocal members
            state, members = described(ids[owner].kafka, group)
            return state == "Stable" and len(members) == 3

        assert wait_until(stable_with_three, 30)
        ids[owner].kill()  # SIGKILL: the group's coordinator dies
        survivors = [node for node_id, node in ids.items() if node_id != owner]
        produce(300, 300)  # through the survivors (the dead node's partitions move)
        assert wait_until(lambda: set(produced) <= set(seen), 90), len(set(produced) - set(seen))
        assert wait_until(lambda: all(owner not in node_ids(n) for n in survivors), 20)
        moved = coordinator(survivors[0].kafka, group)
        assert moved != owner
        assert coordinator(survivors[1].kafka, group) == moved
        # The new coordinator continued the group from the database: the same members, who
        # kept heartbeating at their generation instead of joining again under new ids.
        assert described(ids[moved].kafka, group) == ("Stable", members)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert errors == []
    assert len(produced) == 600
    # Every record consumed; a record may come twice only when its commit raced a move.
    assert set(seen) == set(produced)
    assert sum(seen.values()) - len(seen) < 100, sum(seen.values()) - len(seen)

    # The committed offsets survived the move: they reach every partition's end.
    admin_consumer = Consumer(
        {"bootstrap.servers": survivors[0].kafka, "group.id": group, "enable.auto.commit": False}
    )
    try:
        committed = admin_consumer.committed(
            [TopicPartition(topic, k) for k in range(partitions)], timeout=20
        )
        ends = [admin_consumer.get_watermark_offsets(tp, timeout=20)[1] for tp in committed]
    finally:
        admin_consumer.close()
    assert [tp.offset for tp in committed] == ends
    assert sum(ends) == 600
