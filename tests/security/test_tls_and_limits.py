"""TLS on both doors (a CA made in the test), plaintext clients on TLS ports, brute force,
per-token rate limits and live-reader caps, against real ``serve`` processes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kafka_door.wire import Wire
from millstream.server.kafka import codec
from millstream.server.kafka.codec import ErrorCode
from servers import wait_until
from tlsfiles import TlsFiles

from .conftest import Secured, start_secured, trusting

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory, ca: TlsFiles) -> Iterator[Secured]:
    node = start_secured(
        tmp_path_factory.mktemp("tls"),
        "--tls-cert", str(ca.server_cert), "--tls-key", str(ca.server_key),
        "--auth-failure-burst", "1000",
    )  # fmt: skip
    node.verify = trusting(ca)
    try:
        yield node
    finally:
        node.server.terminate()


def test_both_doors_speak_tls(tls_node: Secured, ca: TlsFiles) -> None:
    assert tls_node.url.startswith("https://127.0.0.1:")
    assert "TLS; tokens required" in "".join(tls_node.server.output)
    with tls_node.client("admin") as client:
        assert client.put("/v1/stream/tls", headers={"Content-Type": "text/plain"}).is_success
        assert client.post(
            "/v1/stream/tls", content=b"secret", headers={"Content-Type": "text/plain"}
        ).is_success
        with client.stream(
            "GET", "/v1/stream/tls", params={"offset": "-1", "live": "sse"}
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    assert line == "data:secret"
                    break
    # a client that does not trust the CA refuses the server
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls_node.url}/health", timeout=5)

    async def kafka() -> bytes:
        login = {
            "security_protocol": "SASL_SSL",
            "ssl_context": trusting(ca),
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_plain_username": "kafka-app",
            "sasl_plain_password": tls_node.tokens["kafka-app"],
        }
        producer = AIOKafkaProducer(bootstrap_servers=tls_node.kafka, **login)
        await producer.start()
        try:
            await producer.send_and_wait("kt-tls", b"over tls")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            "kt-tls", bootstrap_servers=tls_node.kafka, auto_offset_reset="earliest", **login
        )
        await consumer.start()
        try:
            return bytes((await asyncio.wait_for(consumer.getone(), 20)).value)
        finally:
            await consumer.stop()

    assert asyncio.run(kafka()) == b"over tls"
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": tls_node.kafka,
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(ca.ca),
            "sasl.mechanisms": "PLAIN",
            "sasl.username": "kafka-app",
            "sasl.password": tls_node.tokens["kafka-app"],
        }
    )
    producer.produce("kt-tls", b"librdkafka over tls")
    assert producer.flush(20) == 0


def test_plaintext_clients_on_tls_ports_are_refused_and_counted(tls_node: Secured) -> None:
    http_before = tls_node.metric("millstream_tls_handshake_failures_total", door="http")
    kafka_before = tls_node.metric("millstream_tls_handshake_failures_total", door="kafka")
    plain = tls_node.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/v1/stream/tls", params={"offset": "-1"}, timeout=5)
    with Wire(tls_node.kafka) as wire:  # a Kafka client without TLS
        wire.send(codec.ApiVersionsRequest(), 3)
        assert wire.read_frame() is None
    assert wait_until(
        lambda: (
            tls_node.metric("millstream_tls_handshake_failures_total", door="http")
            == http_before + 1
        )
    )
    assert wait_until(
        lambda: (
            tls_node.metric("millstream_tls_handshake_failures_total", door="kafka")
            == kafka_before + 1
        )
    )
    assert "TLS handshake with" in "".join(tls_node.server.output)
    with tls_node.client("admin") as client:  # the server is fine
        assert client.get("/v1/stream/tls", params={"offset": "-1"}).content == b"secret"


# -- limits ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    node = start_secured(
        tmp_path_factory.mktemp("guarded"),
        "--auth-failure-rate", "0.2", "--auth-failure-burst", "5",
    )  # fmt: skip
    try:
        yield node
    finally:
        node.server.terminate()


def test_brute_force_hits_the_rate_limit_on_both_doors(guarded: Secured) -> None:
    with guarded.client("admin") as admin:
        admin.put("/v1/stream/a/vault", headers={"Content-Type": "text/plain"})
    statuses = []
    for attempt in range(8):
        with guarded.client(f"ms_{attempt:016x}_{'g' * 43}") as guess:
            statuses.append(guess.get("/v1/stream/a/vault", params={"offset": "-1"}))
    assert [r.status_code for r in statuses[:5]] == [401] * 5
    limited = statuses[-1]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 3  # a failure allowed every 5 s
    assert orjson.loads(limited.content)["error"]["code"] == "auth_rate_limited"
    # while locked out, even a good token from this address gets 429: a guess learns nothing
    with guarded.client("admin") as admin:
        assert admin.get("/v1/stream/a/vault", params={"offset": "-1"}).status_code == 429
    with Wire(guarded.kafka) as wire:
        assert wire.call(codec.SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
        login = f"\x00admin\x00{guarded.tokens['admin']}".encode()
        response = wire.call(codec.SaslAuthenticateRequest(auth_bytes=login), 2)
        assert response.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert "too many failed authentications" in (response.error_message or "")
    time.sleep(int(limited.headers["retry-after"]) + 1)
    with guarded.client("admin") as admin:
        assert admin.get("/v1/stream/a/vault", params={"offset": "-1"}).status_code == 200
        assert (
            admin.head("/v1/stream/a/vault")
            .headers["stream-next-offset"]
            .startswith("0000000000000000_")
        )
    assert (
        guarded.metric("millstream_auth_failures_total", door="http", reason="auth_rate_limited")
        >= 3
    )
    assert "too many failed authentications from this address" in guarded.log()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    node = start_secured(
        tmp_path_factory.mktemp("limited"),
        "--rate-limit", "2", "--rate-burst", "5", "--max-live-readers", "1",
        "--auth-failure-burst", "1000",
    )  # fmt: skip
    try:
        yield node
    finally:
        node.server.terminate()


def test_a_token_over_its_request_rate_gets_429_with_retry_after(limited: Secured) -> None:
    with limited.client("admin") as admin:
        admin.put("/v1/stream/a/rated", headers={"Content-Type": "text/plain"})
    time.sleep(3)  # the admin's bucket refills
    with limited.client("writer-a") as writer, limited.client("reader-a") as reader:
        statuses = [
            writer.post(
                "/v1/stream/a/rated", content=b"x", headers={"Content-Type": "text/plain"}
            ).status_code
            for _ in range(8)
        ]
        assert statuses[:5] == [204] * 5
        assert 429 in statuses[5:]
        refused = writer.post(
            "/v1/stream/a/rated", content=b"x", headers={"Content-Type": "text/plain"}
        )
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert orjson.loads(refused.content)["error"]["code"] == "rate_limited"
        # another token has its own allowance
        assert reader.get("/v1/stream/a/rated", params={"offset": "-1"}).status_code == 200
    with limited.client("admin") as admin:
        appended = admin.get("/v1/stream/a/rated", params={"offset": "-1"}).content
    assert appended == b"x" * statuses.count(204)


def test_live_readers_per_token_are_capped(limited: Secured) -> None:
    with limited.client("admin") as admin:
        admin.put("/v1/stream/a/capped", headers={"Content-Type": "text/plain"})
    opened = threading.Event()
    stop = threading.Event()

    def first_reader() -> None:
        with (
            limited.client("reader-a") as reader,
            reader.stream(
                "GET", "/v1/stream/a/capped", params={"offset": "-1", "live": "sse"}
            ) as response,
        ):
            assert response.status_code == 200
            for _ in response.iter_lines():
                opened.set()
                if stop.is_set():
                    return

    thread = threading.Thread(target=first_reader, daemon=True)
    thread.start()
    assert opened.wait(10)
    time.sleep(1)  # the reader's bucket refills between requests
    with limited.client("reader-a") as reader:
        second = reader.get("/v1/stream/a/capped", params={"offset": "-1", "live": "long-poll"})
    assert second.status_code == 429
    assert orjson.loads(second.content)["error"]["code"] == "too_many_live_readers"
    stop.set()
    with limited.client("admin") as admin:  # wakes the reader so it sees stop
        admin.post("/v1/stream/a/capped", content=b"z", headers={"Content-Type": "text/plain"})
    thread.join(10)
