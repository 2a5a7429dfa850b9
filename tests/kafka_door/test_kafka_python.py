"""kafka-python 3 against a real ``millstream serve``: its default producer (idempotent,
acks=all), a consumer group with commits, the admin client, offsets by time."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

pytestmark = pytest.mark.timeout(120)


def _consume(bootstrap: str, topic: str, count: int, **config: object) -> list[object]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
        **config,
    )
    try:
        out = []
        for message in consumer:
            out.append(message)
            if len(out) == count:
                break
        if config.get("group_id"):
            consumer.commit()
        return out
    finally:
        consumer.close()


def test_idempotent_producer_and_group_consumer(bootstrap: str, topic_name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic_name, 3, 1)])
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(topic_name, 3, 1)])
        producer = KafkaProducer(bootstrap_servers=bootstrap)  # idempotent, acks=all
        sent = [
            producer.send(
                topic_name, key=b"k%d" % (i % 5), value=b"v%d" % i, headers=[("n", str(i).encode())]
            )
            for i in range(60)
        ]
        producer.flush()
        metas = [future.get(10) for future in sent]
        producer.close()
        assert {m.partition for m in metas} == {0, 1, 2}
        for partition in range(3):
            offsets = [m.offset for m in metas if m.partition == partition]
            assert offsets == list(range(len(offsets)))  # dense, in send order

        got = _consume(bootstrap, topic_name, 60, group_id="kp-group")
        assert sorted(m.value for m in got) == sorted(b"v%d" % i for i in range(60))
        for message in got:
            number = int(message.value[1:])
            assert message.key == b"k%d" % (number % 5)
            assert message.headers == [("n", str(number).encode())]

        offsets = admin.list_group_offsets({"kp-group": None})["kp-group"]
        ends = {m.partition: 0 for m in metas}
        for m in metas:
            ends[m.partition] = max(ends[m.partition], m.offset + 1)
        assert {tp.partition: om.offset for tp, om in offsets.items()} == ends
        groups = {g["group_id"]: g for g in admin.list_groups()}
        assert groups["kp-group"]["group_state"] == "Empty"
        described = admin.describe_groups(["kp-group"])["kp-group"]
        assert described["group_state"] == "Empty"
        assert described["error"] is None
    finally:
        admin.close()


def test_admin_partitions_configs_records_and_deletion(bootstrap: str, topic_name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            [NewTopic(topic_name, 1, 1, topic_configs={"message.timestamp.type": "LogAppendTime"})]
        )
        configs = admin.describe_configs([ConfigResource("TOPIC", topic_name)])
        assert configs["topic"][topic_name]["message.timestamp.type"]["value"] == "LogAppendTime"
        admin.create_partitions({topic_name: NewPartitions(4)})
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, enable_idempotence=False)
        before = int(time.time() * 1000)
        for partition in range(4):
            for i in range(5):
                producer.send(topic_name, value=b"%d-%d" % (partition, i), partition=partition)
        meta = producer.send(topic_name, value=b"late", partition=3).get(10)
        producer.close()
        assert meta.offset == 5
        assert meta.timestamp >= before  # LogAppendTime: stamped by the broker

        consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        try:
            tps = [TopicPartition(topic_name, p) for p in range(4)]
            assert consumer.beginning_offsets(tps) == dict.fromkeys(tps, 0)
            assert consumer.end_offsets(tps) == {**dict.fromkeys(tps[:3], 5), tps[3]: 6}
            found = consumer.offsets_for_times({tps[3]: meta.timestamp})[tps[3]]
            assert found is not None
            assert found.offset <= 5
            assert consumer.offsets_for_times({tps[0]: int(time.time() * 1000) + 60_000}) == {
                tps[0]: None
            }
            admin.delete_records({tps[1]: 3})
            assert consumer.beginning_offsets([tps[1]]) == {tps[1]: 3}
        finally:
            consumer.close()
        rest = _consume(bootstrap, topic_name, 18)
        assert len(rest) == 4 * 5 + 1 - 3
        assert not [m for m in rest if m.partition == 1 and m.offset < 3]

        admin.delete_topics([topic_name])
        assert topic_name not in admin.list_topics()
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_topics([topic_name])
    finally:
        admin.close()
