"""``Admin`` against real brokers: topics over the Kafka protocol (both brokers), and the HTTP
admin API that ``millstream serve`` serves beside its streams (topics, cluster, lag,
inspection), read from the same log as both doors."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from millstream.kafka import (
    ClusterInfo,
    ConfigurationError,
    ConnectionError,
    ConsumerError,
    ProducerRecord,
    StreamlineClient,
    TopicConfig,
    TopicError,
    TopicPartition,
)
from millstream.log import MemoryStore
from millstream.node import Node, NodeOptions

from .brokers import Broker, free_port
from .helpers import make_topic, read_all


async def test_create_list_describe_delete(client: StreamlineClient, name: str) -> None:
    admin = client.admin
    await admin.create_topics(
        [TopicConfig(f"{name}-a", num_partitions=3), TopicConfig(f"{name}-b")]
    )
    with pytest.raises(TopicError):
        await admin.create_topic(TopicConfig(f"{name}-a"))
    await admin.create_topic(TopicConfig(f"{name}-a"), exist_ok=True)
    await client.produce(f"{name}-a", b"x", partition=2)
    await admin.delete_topics([f"{name}-a", f"{name}-b"])
    with pytest.raises(TopicError):
        await admin.delete_topic(f"{name}-a")
    with pytest.raises(ConfigurationError):
        await admin.create_topic(TopicConfig(name, num_partitions=0))


@pytest.fixture
async def ms_client(millstream: Broker) -> AsyncIterator[StreamlineClient]:
    async with StreamlineClient(millstream.bootstrap, http_url=millstream.http_url or "") as client:
        yield client


async def test_topics_over_http(ms_client: StreamlineClient, millstream: Broker, name: str) -> None:
    admin = ms_client.admin
    await admin.create_topic(TopicConfig(name, num_partitions=3))
    await ms_client.producer.send_batch([ProducerRecord(name, b"v", partition=1)] * 4)
    assert name in await admin.list_topics()
    info = await admin.describe_topic(name)
    assert (info.name, info.partitions, info.replication_factor) == (name, 3, 1)
    assert not info.internal
    assert [(p.id, p.log_start_offset, p.high_watermark) for p in info.partition_info] == [
        (0, 0, 0),
        (1, 0, 4),
        (2, 0, 0),
    ]
    assert all(p.leader == 0 and p.replicas == [0] and p.isr == [0] for p in info.partition_info)
    # a Durable Streams stream with a topic-like name is a 1-partition topic
    async with httpx.AsyncClient() as web:
        created = await web.put(
            f"{millstream.http_url}/v1/stream/{name}-http", headers={"content-type": "text/plain"}
        )
        assert created.status_code == 201
    assert f"{name}-http" in await admin.list_topics()
    await admin.delete_topic(name)
    assert name not in await admin.list_topics()
    with pytest.raises(TopicError) as caught:
        await admin.describe_topic(name)
    assert f"no topic {name!r}" in str(caught.value)


async def test_cluster_info_agrees_with_kafka_metadata(
    ms_client: StreamlineClient, millstream: Broker
) -> None:
    cluster = await ms_client.admin.cluster_info()
    kafka = AIOKafkaAdminClient(bootstrap_servers=millstream.bootstrap)
    await kafka.start()
    try:
        metadata = await kafka.describe_cluster()
    finally:
        await kafka.close()
    assert cluster.cluster_id == metadata["cluster_id"]
    assert cluster.controller == metadata["controller_id"]
    [broker] = cluster.brokers
    [kafka_broker] = metadata["brokers"]
    assert (broker.id, broker.host, broker.port) == (
        kafka_broker["node_id"],
        kafka_broker["host"],
        kafka_broker["port"],
    )
    assert broker.port == millstream.port
    assert cluster.broker_id == broker.id


async def test_lag_after_partial_consumption(ms_client: StreamlineClient, name: str) -> None:
    topic = await make_topic(ms_client, name, partitions=2)
    other = await make_topic(ms_client, f"{name}-other")
    group = f"{name} group/1"  # spaces and slashes survive the URL
    await ms_client.producer.send_batch(
        [ProducerRecord(topic, f"a{i}", partition=0) for i in range(10)]
        + [ProducerRecord(topic, f"b{i}", partition=1) for i in range(4)]
        + [ProducerRecord(other, "c")]
    )
    async with ms_client.consumer(group_id=group, enable_auto_commit=False) as consumer:
        consumer.assign(
            [TopicPartition(topic, 0), TopicPartition(topic, 1), TopicPartition(other, 0)]
        )
        await consumer.commit({TopicPartition(topic, 0): 6, TopicPartition(topic, 1): 4})
        await consumer.commit({TopicPartition(other, 0): 0})

    lag = await ms_client.admin.consumer_group_lag(group)
    assert lag.group_id == group
    assert [
        (p.topic, p.partition, p.current_offset, p.end_offset, p.lag) for p in lag.partitions
    ] == [
        (topic, 0, 6, 10, 4),
        (topic, 1, 4, 4, 0),
        (other, 0, 0, 1, 1),
    ]
    assert lag.total_lag == 5
    one = await ms_client.admin.consumer_group_topic_lag(group, topic)
    assert [(p.partition, p.lag) for p in one.partitions] == [(0, 4), (1, 0)]
    assert one.total_lag == 4

    await ms_client.produce(topic, b"more", partition=1)  # the end moves, the lag with it
    assert (await ms_client.admin.consumer_group_topic_lag(group, topic)).total_lag == 5

    with pytest.raises(ConsumerError) as caught:
        await ms_client.admin.consumer_group_lag(f"{name}-nobody")
    assert caught.value.hint
    with pytest.raises(TopicError):
        await ms_client.admin.consumer_group_topic_lag(group, f"{name}-missing")


async def test_inspect_and_latest_messages(ms_client: StreamlineClient, name: str) -> None:
    topic = await make_topic(ms_client, name, partitions=2)
    for i in range(30):
        await ms_client.produce(
            topic,
            {"n": i},
            key=f"k{i}",
            partition=i % 2,
            headers={"i": str(i), "raw": b"\xff\x00"},
            timestamp_ms=1_700_000_000_000 + i,
        )
    await ms_client.produce(topic, b"\xff\xfe binary", partition=0, timestamp_ms=1_700_000_001_000)

    admin = ms_client.admin
    first = await admin.inspect_messages(topic)
    assert [m.offset for m in first] == list(range(16))  # partition 0 holds 16 records
    assert first[0].partition == 0
    assert first[0].key == "k0"
    assert first[0].value == '{"n":0}'
    assert first[0].timestamp == 1_700_000_000_000
    assert first[0].headers["i"] == "0"
    assert first[0].binary_headers == ["raw"]
    assert base64.b64decode(first[0].headers["raw"]) == b"\xff\x00"
    binary = first[-1]
    assert binary.value_encoding == "base64"
    assert binary.value_bytes() == b"\xff\xfe binary"

    page = await admin.inspect_messages(topic, partition=1, offset=3, limit=5)
    assert [(m.partition, m.offset, m.value) for m in page] == [
        (1, o, f'{{"n":{2 * o + 1}}}') for o in range(3, 8)
    ]
    assert await admin.inspect_messages(topic, partition=1, offset=15) == []

    latest = await admin.latest_messages(topic, count=3)
    assert [m.value for m in latest] == [
        '{"n":28}',
        '{"n":29}',
        base64.b64encode(b"\xff\xfe binary").decode(),
    ]
    assert [m.timestamp for m in latest] == sorted(m.timestamp for m in latest)

    with pytest.raises(TopicError, match="partition"):
        await admin.inspect_messages(topic, partition=5)
    with pytest.raises(TopicError):
        await admin.latest_messages(f"{name}-missing")
    with pytest.raises(ConfigurationError):
        await admin.inspect_messages(topic, limit=0)


async def test_inspection_sees_http_appends_and_kafka_records_alike(
    ms_client: StreamlineClient, millstream: Broker, name: str
) -> None:
    url = f"{millstream.http_url}/v1/stream/{name}"
    async with httpx.AsyncClient() as web:
        assert (await web.put(url, headers={"content-type": "application/json"})).status_code == 201
        await web.post(url, json=[{"via": "http"}], headers={"content-type": "application/json"})
    await ms_client.produce(name, {"via": "kafka"})
    values = [m.value for m in await ms_client.admin.inspect_messages(name)]
    assert values == ['{"via":"http"}', '{"via":"kafka"}']
    records = await read_all(ms_client, name, 2)
    assert [r.value for r in records] == [b'{"via":"http"}', b'{"via":"kafka"}']


async def test_http_api_unreachable_is_a_connection_error(millstream: Broker) -> None:
    async with StreamlineClient(
        millstream.bootstrap, http_url=f"http://127.0.0.1:{free_port()}"
    ) as client:
        with pytest.raises(ConnectionError) as caught:
            await client.admin.list_topics()
    assert "http_url" in caught.value.hint
    assert caught.value.retryable


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("content-length", "9")
        self.end_headers()
        self.wfile.write(b"not found")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def not_an_admin_api() -> Iterator[str]:
    """A plain HTTP server answering 404 to everything."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_a_server_without_the_admin_api_says_so(
    tansu_broker: Broker, not_an_admin_api: str
) -> None:
    async with StreamlineClient(tansu_broker.bootstrap, http_url=not_an_admin_api) as client:
        with pytest.raises(ConfigurationError) as caught:
            await client.admin.list_topics()
    assert "admin route" in caught.value.hint


# -- the HTTP API itself: bad input gets a JSON 4xx, never a 500 -----------------------------


@pytest.mark.parametrize(
    ("target", "status", "code"),
    [
        ("/v1/inspect/{t}?partition=-1", 400, "invalid_parameter"),
        ("/v1/inspect/{t}?partition=x", 400, "invalid_parameter"),
        ("/v1/inspect/{t}?offset=99999999999999999999", 400, "invalid_parameter"),
        ("/v1/inspect/{t}?limit=1001", 400, "invalid_parameter"),
        ("/v1/inspect/{t}?limit=%FF", 400, "invalid_parameter"),
        ("/v1/inspect/{t}/latest?count=0", 400, "invalid_parameter"),
        ("/v1/inspect/{t}?partition=9", 404, "partition_not_found"),
        ("/v1/inspect/nope-{t}", 404, "topic_not_found"),
        ("/v1/topics/nope-{t}", 404, "topic_not_found"),
        ("/v1/topics/bad%20name", 404, "topic_not_found"),
        ("/v1/topics/%FF", 400, "invalid_path"),
        ("/v1/topics/{t}/extra", 404, "not_found"),
        ("/v1/consumer-groups/nobody-{t}/lag", 404, "group_not_found"),
        ("/v1/consumer-groups/g/lag/a/b", 404, "not_found"),
        ("/v1/cluster/x", 404, "not_found"),
    ],
)
async def test_bad_requests_get_json_errors(
    millstream: Broker, ms_client: StreamlineClient, name: str, target: str, status: int, code: str
) -> None:
    await make_topic(ms_client, name)
    async with httpx.AsyncClient(base_url=millstream.http_url or "") as web:
        response = await web.get(target.replace("{t}", name))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code


async def test_only_get_and_head(millstream: Broker) -> None:
    async with httpx.AsyncClient(base_url=millstream.http_url or "") as web:
        posted = await web.post("/v1/topics", json={"name": "x"})
        head = await web.head("/v1/cluster")
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET, HEAD"
    assert posted.json()["error"]["code"] == "method_not_allowed"
    assert head.status_code == 200
    assert head.content == b""


async def test_hostile_queries_never_fail_the_server(
    millstream: Broker, ms_client: StreamlineClient, name: str
) -> None:
    await make_topic(ms_client, name)
    await ms_client.produce(name, b"x")
    queries = [
        "partition=0&partition=1",
        "offset=&limit=",
        "offset=0x10",
        "limit=%00",
        "count=" + "9" * 500,
        "&&&=&=",
        "partition=" + "%" * 30,
        "offset=１２",  # full-width digits are not digits here
    ]
    async with httpx.AsyncClient(base_url=millstream.http_url or "") as client:
        for query in queries:
            for path in (f"/v1/inspect/{name}", f"/v1/inspect/{name}/latest"):
                response = await client.get(f"{path}?{query}")
                assert response.status_code in (200, 400, 404), (query, response.text)
                assert response.headers["content-type"] == "application/json"


async def test_the_node_reports_the_port_its_kafka_door_bound() -> None:
    """In process: ``kafka_port=0`` is resolved when the door starts; the admin API says which."""
    node = Node(MemoryStore(), NodeOptions(port=0, kafka_port=0))
    async with node.running():
        assert node.kafka_door is not None
        async with httpx.AsyncClient(base_url=node.http_url or "") as web:
            cluster = ClusterInfo.from_json((await web.get("/v1/cluster")).json())
        assert [(b.host, b.port) for b in cluster.brokers] == [("127.0.0.1", node.kafka_door.port)]


async def test_the_admin_api_can_be_turned_off() -> None:
    node = Node(MemoryStore(), NodeOptions(port=0, kafka_port=0, kafka_admin=False))
    async with node.running():
        assert node.kafka_door is not None
        bootstrap = f"127.0.0.1:{node.kafka_door.port}"
        async with StreamlineClient(bootstrap, http_url=node.http_url or "") as client:
            with pytest.raises(ConfigurationError) as caught:
                await client.admin.list_topics()
    assert "admin route" in caught.value.hint
