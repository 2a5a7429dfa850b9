"""Getting in where one does not belong, over Kafka: SASL with wrong passwords, replayed SCRAM
messages, requests before logging in, topics and groups outside a token's scopes. Real clients
(aiokafka, kafka-python, confluent-kafka) for what works; a raw connection (``Wire``) for
hand-made attacks. Every refusal has Kafka's error code, is logged and counted, and changes
no data."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from kafka_door.wire import Wire
from millstream.server.kafka import codec
from millstream.server.kafka.codec import ErrorCode
from servers import wait_until

from .conftest import Secured, issue_tokens, start_secured

pytestmark = pytest.mark.timeout(180)
_names = itertools.count()


def _topic(prefix: str = "kt-") -> str:
    return f"{prefix}{next(_names)}-{secrets.token_hex(3)}"


def _login_plain(wire: Wire, username: str, password: str) -> codec.SaslAuthenticateResponse:
    handshake = wire.call(codec.SaslHandshakeRequest(mechanism="PLAIN"), 1)
    assert handshake.error_code == ErrorCode.NONE
    assert set(handshake.mechanisms) == {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
    message = f"\x00{username}\x00{password}".encode()
    response: codec.SaslAuthenticateResponse = wire.call(
        codec.SaslAuthenticateRequest(auth_bytes=message), 2
    )
    return response


class ScramClient:
    """The client half of RFC 5802, written from the RFC for these tests."""

    def __init__(self, mechanism: str, username: str, password: str) -> None:
        self.hash = hashlib.sha256 if mechanism.endswith("256") else hashlib.sha512
        self.username = username
        self.password = password
        self.nonce = secrets.token_urlsafe(18)
        self.first_bare = f"n={username},r={self.nonce}"

    def first(self) -> bytes:
        return f"n,,{self.first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        attrs = dict(part.split("=", 1) for part in server_first.decode().split(","))
        assert attrs["r"].startswith(self.nonce)
        salted = hashlib.pbkdf2_hmac(
            self.hash().name, self.password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"])
        )
        client_key = hmac.new(salted, b"Client Key", self.hash).digest()
        stored = self.hash(client_key).digest()
        without_proof = f"c={base64.b64encode(b'n,,').decode()},r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(stored, auth_message, self.hash).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


def _scram(wire: Wire, client: ScramClient, mechanism: str) -> tuple[bytes, Any]:
    assert wire.call(codec.SaslHandshakeRequest(mechanism=mechanism), 1).error_code == 0
    first = wire.call(codec.SaslAuthenticateRequest(auth_bytes=client.first()), 2)
    assert first.error_code == ErrorCode.NONE
    final_message = client.final(first.auth_bytes)
    return final_message, wire.call(codec.SaslAuthenticateRequest(auth_bytes=final_message), 2)


def _metadata(wire: Wire, topics: list[str] | None, auto: bool = False) -> Any:
    request = codec.MetadataRequest(
        topics=None if topics is None else [codec.MetadataRequestTopic(name=t) for t in topics],
        allow_auto_topic_creation=auto,
    )
    return wire.call(request, 9)


# -- logging in ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_aiokafka_logs_in_with_each_mechanism(secured: Secured, mechanism: str) -> None:
    topic = _topic()
    login = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "kafka-app",
        "sasl_plain_password": secured.tokens["kafka-app"],
    }
    producer = AIOKafkaProducer(bootstrap_servers=secured.kafka, **login)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello " + mechanism.encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=secured.kafka,
        group_id=f"kg-{topic}",
        auto_offset_reset="earliest",
        **login,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 20)
        assert record.value == b"hello " + mechanism.encode()
        await consumer.commit()
    finally:
        await consumer.stop()
    # the same record over HTTP, with the same token
    with secured.client("kafka-app") as client:
        assert client.get(f"/v1/stream/{topic}", params={"offset": "-1"}).content.endswith(
            mechanism.encode()
        )


def test_kafka_python_and_confluent_log_in(secured: Secured) -> None:
    from confluent_kafka import Producer
    from kafka import KafkaConsumer

    topic = _topic()
    producer = Producer(
        {
            "bootstrap.servers": secured.kafka,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": "kafka-app",
            "sasl.password": secured.tokens["kafka-app"],
        }
    )
    producer.produce(topic, b"from librdkafka")
    assert producer.flush(20) == 0
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=secured.kafka,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username="kafka-app",
        sasl_plain_password=secured.tokens["kafka-app"],
        auto_offset_reset="earliest",
        consumer_timeout_ms=15000,
    )
    try:
        assert next(iter(consumer)).value == b"from librdkafka"
    finally:
        consumer.close()


def test_wrong_passwords_and_names_fail_with_sasl_authentication_failed(secured: Secured) -> None:
    before = secured.metric("millstream_auth_failures_total", door="kafka", reason="invalid_token")
    token = secured.tokens["kafka-app"]
    attempts = [
        ("kafka-app", token[:-1] + ("A" if token[-1] != "A" else "B")),  # wrong secret
        ("kafka-app", secured.tokens["admin"]),  # another token's password
        ("nobody", token),  # the password of another user
        ("kafka-app", "hunter2"),  # not a token at all
    ]
    for username, password in attempts:
        with Wire(secured.kafka) as wire:
            response = _login_plain(wire, username, password)
            assert response.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
            assert response.error_message
            assert "Authentication failed" in response.error_message
            assert wire.closed_by_server()
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        for username in ("kafka-app", "nobody"):
            with Wire(secured.kafka) as wire:
                _, response = _scram(wire, ScramClient(mechanism, username, "wrong"), mechanism)
                assert response.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
                assert wire.closed_by_server()
    after = secured.metric("millstream_auth_failures_total", door="kafka", reason="invalid_token")
    assert after == before + len(attempts) + 4
    assert "refused SASL PLAIN login of 'nobody'" in secured.log()


def test_a_replayed_scram_exchange_is_refused(secured: Secured) -> None:
    token = secured.tokens["kafka-app"]
    client = ScramClient("SCRAM-SHA-256", "kafka-app", token)
    with Wire(secured.kafka) as wire:
        recorded, response = _scram(wire, client, "SCRAM-SHA-256")
        assert response.error_code == ErrorCode.NONE
        assert response.auth_bytes.startswith(b"v=")  # the server proved it knows the key too
        assert _metadata(wire, []).topics == []  # logged in
    with Wire(secured.kafka) as wire:
        # An eavesdropper replays both client messages: the server's nonce is new, so the
        # recorded proof signs the wrong exchange.
        assert wire.call(codec.SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1).error_code == 0
        first = wire.call(codec.SaslAuthenticateRequest(auth_bytes=client.first()), 2)
        assert first.error_code == ErrorCode.NONE
        replay = wire.call(codec.SaslAuthenticateRequest(auth_bytes=recorded), 2)
        assert replay.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert "nonce" in (replay.error_message or "")
        assert wire.closed_by_server()


def test_requests_before_logging_in_close_the_connection(secured: Secured) -> None:
    before = secured.metric(
        "millstream_auth_failures_total", door="kafka", reason="unauthenticated"
    )
    with Wire(secured.kafka) as wire:
        versions = wire.call(codec.ApiVersionsRequest(), 3)  # allowed: clients ask first
        assert versions.error_code == ErrorCode.NONE
        wire.send(codec.ProduceRequest(acks=1, timeout_ms=1000, topic_data=[]), 9)
        assert wire.read_frame() is None
    with Wire(secured.kafka) as wire:
        wire.send(codec.MetadataRequest(topics=None), 9)
        assert wire.read_frame() is None
    with Wire(secured.kafka) as wire:  # SaslAuthenticate without a handshake
        response = wire.call(codec.SaslAuthenticateRequest(auth_bytes=b"\x00a\x00b"), 2)
        assert response.error_code == ErrorCode.ILLEGAL_SASL_STATE
        assert wire.closed_by_server()
    after = secured.metric("millstream_auth_failures_total", door="kafka", reason="unauthenticated")
    assert after == before + 2


async def test_aiokafka_without_credentials_cannot_produce(secured: Secured) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=secured.kafka, request_timeout_ms=3000)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()


# -- what a logged-in token may do --------------------------------------------------------------


@pytest.fixture
def reader(secured: Secured) -> Iterator[Wire]:
    """A raw connection logged in as ``kafka-reader`` (read:kt-, group:kg-)."""
    with Wire(secured.kafka) as wire:
        assert _login_plain(wire, "kafka-reader", secured.tokens["kafka-reader"]).error_code == 0
        yield wire


def _produce(wire: Wire, topic: str, payload: bytes) -> Any:
    from kafka.record.memory_records import MemoryRecordsBuilder

    builder = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
    builder.append(timestamp=None, key=None, value=payload, headers=[])
    builder.close()
    request = codec.ProduceRequest(
        acks=1,
        timeout_ms=5000,
        topic_data=[
            codec.TopicProduceData(
                name=topic,
                partition_data=[
                    codec.PartitionProduceData(index=0, records=bytes(builder.buffer()))
                ],
            )
        ],
    )
    return wire.call(request, 9)


def test_topics_outside_the_scopes_are_refused_per_topic(secured: Secured, reader: Wire) -> None:
    mine, other = _topic(), _topic("other-")
    with Wire(secured.kafka) as admin:
        assert _login_plain(admin, "admin", secured.tokens["admin"]).error_code == 0
        for topic in (mine, other):
            assert (
                _produce(admin, topic, b"seed").responses[0].partition_responses[0].error_code == 0
            )
    before = secured.metric("millstream_kafka_requests_total", api="Produce")
    forbidden = _forbidden(secured)
    # read-only: no produce, not even to its own prefix; the refusal is per topic
    produced = _produce(reader, mine, b"evil").responses[0].partition_responses[0]
    assert produced.error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    fetch = reader.call(
        codec.FetchRequest(
            max_wait_ms=0,
            min_bytes=0,
            topics=[
                codec.FetchTopic(
                    topic=t,
                    partitions=[codec.FetchPartition(partition=0, partition_max_bytes=1 << 20)],
                )
                for t in (mine, other)
            ],
        ),
        12,
    )
    by_topic = {t.topic: t.partitions[0] for t in fetch.responses}
    assert by_topic[mine].error_code == ErrorCode.NONE
    assert by_topic[mine].records
    assert by_topic[other].error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert not by_topic[other].records
    # metadata names nothing it may not describe
    listed = {t.name for t in _metadata(reader, None).topics}
    assert mine in listed
    assert other not in listed
    assert all(name.startswith("kt-") for name in listed)
    named = {t.name: t.error_code for t in _metadata(reader, [mine, other]).topics}
    assert named == {mine: ErrorCode.NONE, other: ErrorCode.TOPIC_AUTHORIZATION_FAILED}
    # no auto-creation without write, even inside the readable prefix
    ghost = _topic()
    created = _metadata(reader, [ghost], auto=True).topics[0]
    assert created.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    deleted = reader.call(codec.DeleteTopicsRequest(topic_names=[mine]), 5).responses[0]
    assert deleted.error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    offsets = reader.call(
        codec.ListOffsetsRequest(
            topics=[
                codec.ListOffsetsTopic(
                    name=t, partitions=[codec.ListOffsetsPartition(partition_index=0, timestamp=-1)]
                )
                for t in (mine, other)
            ]
        ),
        7,
    )
    assert [t.partitions[0].error_code for t in offsets.topics] == [
        ErrorCode.NONE,
        ErrorCode.TOPIC_AUTHORIZATION_FAILED,
    ]
    assert offsets.topics[0].partitions[0].offset == 1
    created = reader.call(
        codec.CreateTopicsRequest(topics=[codec.CreatableTopic(name=_topic(), num_partitions=1)]), 7
    )
    assert created.topics[0].error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    trimmed = reader.call(
        codec.DeleteRecordsRequest(
            topics=[
                codec.DeleteRecordsTopic(
                    name=mine,
                    partitions=[codec.DeleteRecordsPartition(partition_index=0, offset=1)],
                )
            ]
        ),
        2,
    )
    assert trimmed.topics[0].partitions[0].error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    grown = reader.call(
        codec.CreatePartitionsRequest(topics=[codec.CreatePartitionsTopic(name=mine, count=3)]), 3
    )
    assert grown.results[0].error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert reader.call(codec.InitProducerIdRequest(transactional_id=None), 4).error_code == (
        ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    )
    broker_configs = reader.call(
        codec.DescribeConfigsRequest(
            resources=[codec.DescribeConfigsResource(resource_type=4, resource_name="0")]
        ),
        4,
    )
    assert broker_configs.results[0].error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    # nothing changed: one record each, the ghost never created
    with secured.client("admin") as client:
        for topic in (mine, other):
            head = client.head(f"/v1/stream/{topic}")
            assert head.headers["stream-next-offset"].startswith("0000000000000001_")
        assert client.head(f"/v1/stream/{ghost}").status_code == 404
    assert secured.metric("millstream_kafka_requests_total", api="Produce") == before + 1
    # every request with a refused part was counted and logged (the listings only filter)
    assert _forbidden(secured) == forbidden + 10
    log = secured.log()
    assert f"token 'kafka-reader' is not authorized for Produce on '{mine}'" in log
    assert f"is not authorized for Fetch on '{other}' (forbidden)" in log
    assert "is not authorized for InitProducerId on 'the cluster (no write: scope)'" in log


def _forbidden(secured: Secured) -> float:
    return secured.metric("millstream_auth_failures_total", door="kafka", reason="forbidden")


def test_groups_outside_the_scopes_are_refused(secured: Secured, reader: Wire) -> None:
    forbidden = _forbidden(secured)

    def join(group: str) -> Any:
        return reader.call(
            codec.JoinGroupRequest(
                group_id=group,
                session_timeout_ms=10000,
                rebalance_timeout_ms=10000,
                member_id="",
                protocol_type="consumer",
                protocols=[codec.JoinGroupRequestProtocol(name="range", metadata=b"")],
            ),
            5,
        )

    assert join("other-group").error_code == ErrorCode.GROUP_AUTHORIZATION_FAILED
    assert join("kg-mine").error_code in (ErrorCode.NONE, ErrorCode.MEMBER_ID_REQUIRED)
    found = reader.call(codec.FindCoordinatorRequest(key="other-group", key_type=0), 3)
    assert found.error_code == ErrorCode.GROUP_AUTHORIZATION_FAILED
    committed = reader.call(
        codec.OffsetCommitRequest(
            group_id="other-group",
            generation_id_or_member_epoch=-1,
            topics=[
                codec.OffsetCommitRequestTopic(
                    name="kt-x",
                    partitions=[
                        codec.OffsetCommitRequestPartition(partition_index=0, committed_offset=1)
                    ],
                )
            ],
        ),
        8,
    )
    assert committed.topics[0].partitions[0].error_code == ErrorCode.GROUP_AUTHORIZATION_FAILED
    described = reader.call(codec.DescribeGroupsRequest(groups=["other-group", "kg-mine"]), 5)
    codes = {g.group_id: g.error_code for g in described.groups}
    assert codes["other-group"] == ErrorCode.GROUP_AUTHORIZATION_FAILED
    assert codes["kg-mine"] == ErrorCode.NONE
    listed = reader.call(codec.ListGroupsRequest(), 4).groups
    assert all(g.group_id.startswith("kg-") for g in listed)
    # JoinGroup, FindCoordinator, OffsetCommit, DescribeGroups: each counted and logged once
    assert _forbidden(secured) == forbidden + 4
    assert "is not authorized for JoinGroup on 'other-group' (forbidden)" in secured.log()


async def test_aiokafka_reports_topic_authorization_failed(secured: Secured) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=secured.kafka,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="kafka-app",
        sasl_plain_password=secured.tokens["kafka-app"],
    )
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(producer.send_and_wait("elsewhere", b"x"), 20)
    finally:
        await producer.stop()


def test_revoking_a_token_closes_its_kafka_connections(secured: Secured) -> None:
    token = issue_tokens(secured.data_dir, {"short-lived": ["read:kt-"]})["short-lived"]
    with Wire(secured.kafka, timeout=20) as wire:
        assert _login_plain(wire, "short-lived", token).error_code == ErrorCode.NONE
        assert _metadata(wire, []).topics == []
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "millstream", "tokens", "revoke", token,
             "--data-dir", str(secured.data_dir)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        assert wire.closed_by_server()
        assert time.monotonic() - started < 10
    with Wire(secured.kafka) as wire:
        assert _login_plain(wire, "short-lived", token).error_code == (
            ErrorCode.SASL_AUTHENTICATION_FAILED
        )


# -- limits ---------------------------------------------------------------------------------


def test_quotas_answer_throttle_time_and_caps_refuse_connections(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    node = start_secured(
        tmp_path_factory.mktemp("quota"),
        "--kafka-produce-byte-rate", "2000", "--kafka-fetch-byte-rate", "2000",
        "--max-connections", "2",
    )  # fmt: skip
    try:
        token = node.tokens["kafka-app"]
        with Wire(node.kafka) as one, Wire(node.kafka) as two, Wire(node.kafka) as three:
            assert _login_plain(one, "kafka-app", token).error_code == 0
            assert _login_plain(two, "kafka-app", token).error_code == 0
            refused = _login_plain(three, "kafka-app", token)
            assert refused.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
            assert "connections open" in (refused.error_message or "")
            topic = _topic()
            first = _produce(one, topic, b"x" * 1000)
            assert first.throttle_time_ms == 0  # within the burst
            second = _produce(one, topic, b"x" * 8000)
            assert second.responses[0].partition_responses[0].error_code == 0  # let through
            assert 2000 <= second.throttle_time_ms <= 5000  # ~3.5 s of debt at 2000 B/s
            # fetching has its own quota: the 9000 bytes are sent, then the client waits
            fetched = two.call(
                codec.FetchRequest(
                    max_wait_ms=0,
                    min_bytes=0,
                    topics=[
                        codec.FetchTopic(
                            topic=topic,
                            partitions=[
                                codec.FetchPartition(partition=0, partition_max_bytes=1 << 20)
                            ],
                        )
                    ],
                ),
                12,
            )
            assert fetched.responses[0].partitions[0].error_code == 0
            assert len(fetched.responses[0].partitions[0].records) > 9000
            assert 2000 <= fetched.throttle_time_ms <= 6000
        assert "too_many_connections" in node.log()
        assert (
            node.metric(
                "millstream_auth_failures_total", door="kafka", reason="too_many_connections"
            )
            == 1
        )
    finally:
        node.server.terminate()


def test_connections_are_counted_in_metrics(secured: Secured) -> None:
    with Wire(secured.kafka) as wire:
        assert _login_plain(wire, "kafka-app", secured.tokens["kafka-app"]).error_code == 0
        assert wait_until(lambda: secured.metric("millstream_kafka_connections") >= 1, 5)
