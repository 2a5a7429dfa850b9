"""One log, two doors: records produced over Kafka read over HTTP (catch-up, SSE, the
millstream client), and HTTP appends consumed over Kafka, with the same offsets."""

from __future__ import annotations

import json

import httpx
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from millstream import DurableStream, stream
from millstream.log import format_offset
from servers import ServerProcess

pytestmark = pytest.mark.timeout(120)


def test_kafka_json_topic_reads_over_http_and_sse(
    kafka_server: ServerProcess, topic_name: str
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_server.kafka)
    try:
        admin.create_topics(
            [
                NewTopic(
                    topic_name, 1, 1, topic_configs={"millstream.content.type": "application/json"}
                )
            ]
        )
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_server.kafka, compression_type="gzip")
    values = [{"n": i, "text": "héllo"} for i in range(30)]
    for value in values:
        producer.send(topic_name, json.dumps(value).encode())
    producer.send(topic_name, b"not json")  # a JSON topic shows it as a JSON string
    producer.flush()
    producer.close()

    url = f"{kafka_server.url}/v1/stream/{topic_name}"
    response = httpx.get(url, params={"offset": "-1"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == [*values, "not json"]
    assert response.headers["stream-next-offset"] == format_offset(31)
    tail = httpx.get(url, params={"offset": format_offset(29)}).json()
    assert tail == [values[29], "not json"]

    with httpx.stream(
        "GET", url, params={"offset": format_offset(28), "live": "sse"}, timeout=10
    ) as sse:
        events: list[tuple[str, str]] = []
        kind = ""
        for line in sse.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, line[5:]))
                if kind == "control":
                    break
    assert json.loads(events[0][1]) == [values[28], values[29], "not json"]
    assert json.loads(events[-1][1])["streamNextOffset"] == format_offset(31)

    with stream(url, live=False) as res:  # the millstream client, unchanged
        assert res.read_json() == [*values, "not json"]


def test_http_appends_are_consumed_over_kafka(kafka_server: ServerProcess, topic_name: str) -> None:
    url = f"{kafka_server.url}/v1/stream/{topic_name}"
    with DurableStream.create(url, content_type="text/plain") as handle:
        for i in range(25):
            handle.append(f"line {i}")
        _consume_lines(kafka_server, topic_name, handle)


def _consume_lines(kafka_server: ServerProcess, topic_name: str, handle: DurableStream) -> None:
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_server.kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    try:
        tp = TopicPartition(topic_name, 0)
        consumer.assign([tp])
        got = []
        for message in consumer:
            got.append(message)
            if len(got) == 25:
                break
        assert [(m.offset, m.key, m.value) for m in got] == [
            (i, None, f"line {i}".encode()) for i in range(25)
        ]
        handle.append("live one")  # a consumer at the tail gets the next append
        message = next(consumer)
        assert (message.offset, message.value) == (25, b"live one")
        assert consumer.end_offsets([tp]) == {tp: 26}
    finally:
        consumer.close()


def test_both_doors_append_to_one_log(kafka_server: ServerProcess, topic_name: str) -> None:
    url = f"{kafka_server.url}/v1/stream/{topic_name}"
    httpx.put(url, headers={"content-type": "application/octet-stream"}).raise_for_status()
    producer = KafkaProducer(bootstrap_servers=kafka_server.kafka)
    for i in range(3):
        producer.send(topic_name, b"kafka %d" % i).get(10)
        httpx.post(
            url, content=b"http %d" % i, headers={"content-type": "application/octet-stream"}
        )
    producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_server.kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    try:
        consumer.assign([TopicPartition(topic_name, 0)])
        got = [next(consumer).value for _ in range(6)]
    finally:
        consumer.close()
    expected = [part for i in range(3) for part in (b"kafka %d" % i, b"http %d" % i)]
    assert got == expected
    with stream(url, live=False) as res:
        assert list(res.iter_bytes()) != []  # readable as a byte stream too
