"""Every error class reached through a real failure, never a mock: a broker that is down,
frozen (requests time out), restarted mid-test (retries with backoff), or that refuses names,
topics, partitions and logins; the circuit breaker opening and closing on a real outage."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from millstream.kafka import (
    CircuitBreakerConfig,
    CircuitBreakerOpen,
    CircuitState,
    ConfigurationError,
    ConnectionError,
    ProducerConfig,
    RecordMetadata,
    RetryConfig,
    StreamlineClient,
    StreamlineError,
    TimeoutError,
    TopicConfig,
    TopicError,
    TopicPartition,
    retry_async,
)

from .brokers import Broker, free_port, millstream_kafka, tansu
from .conftest import BROKERS
from .helpers import make_topic, read_all


@pytest.fixture
def own_tansu() -> Iterator[Broker]:
    """A broker of this test's own, to stop, freeze and restart."""
    with tansu() as broker:
        yield broker


@pytest.fixture(params=BROKERS)
def restartable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    """Each broker, of this test's own: Tansu in memory, millstream durable (``durable``)."""
    if request.param == "tansu":
        with tansu() as broker:
            yield broker
        return
    with millstream_kafka(data_dir=tmp_path / "data") as broker:
        yield broker


def assert_actionable(error: StreamlineError) -> None:
    assert error.hint
    assert error.hint in str(error)
    assert isinstance(error.retryable, bool)


async def test_server_down_is_a_retryable_connection_error() -> None:
    client = StreamlineClient(f"127.0.0.1:{free_port()}", connection_timeout_ms=5000)
    with pytest.raises(ConnectionError) as caught:
        await client.start()
    assert caught.value.retryable
    assert_actionable(caught.value)
    assert "no broker answered" in str(caught.value)
    assert not client.is_connected
    with pytest.raises(ConnectionError):
        client.producer  # noqa: B018 - the property raises before start


async def test_bad_topic_names_are_configuration_errors(client: StreamlineClient) -> None:
    for bad in ["", "a" * 250, ".", "..", "has space", "slash/y", "colon:1", "ü"]:
        with pytest.raises(ConfigurationError) as caught:
            await client.produce(bad, b"x")
        assert not caught.value.retryable
        assert_actionable(caught.value)
        with pytest.raises(ConfigurationError):
            await client.admin.create_topic(TopicConfig(bad))
        async with client.consumer() as consumer:
            with pytest.raises(ConfigurationError):
                await consumer.subscribe([bad])


async def test_missing_topics_and_partitions_are_topic_errors(
    client: StreamlineClient, name: str
) -> None:
    with pytest.raises(TopicError) as caught:
        await client.admin.delete_topic(f"{name}-never-created")
    assert caught.value.kafka_code == 3
    assert_actionable(caught.value)
    await make_topic(client, name)
    with pytest.raises(TopicError) as exists:
        await client.admin.create_topic(TopicConfig(name))
    assert exists.value.kafka_code == 36
    await client.admin.create_topic(TopicConfig(name), exist_ok=True)
    with pytest.raises(TopicError) as partition:
        await client.produce(name, b"x", partition=7)
    assert "partition 7" in str(partition.value)


async def test_unknown_topic_without_auto_creation_is_a_topic_error() -> None:
    """millstream only: Tansu always creates topics."""
    with millstream_kafka("--no-kafka-auto-create-topics") as broker:
        async with StreamlineClient(
            broker.bootstrap,
            http_url=broker.http_url or "",
            request_timeout_ms=2000,
            producer_config=ProducerConfig(retries=0),
        ) as client:
            with pytest.raises(TopicError) as caught:
                await client.produce("never-created", b"x")
    assert not caught.value.retryable
    assert "create" in caught.value.hint


async def test_frozen_broker_gives_a_retryable_timeout_then_recovers(
    own_tansu: Broker, name: str
) -> None:
    async with StreamlineClient(
        own_tansu.bootstrap,
        request_timeout_ms=1500,
        producer_config=ProducerConfig(retries=0),
    ) as client:
        await make_topic(client, name)
        await client.produce(name, b"before")
        own_tansu.pause()
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError) as caught:
                await client.produce(name, b"while frozen")
            assert time.monotonic() - started < 10
        finally:
            own_tansu.resume()
        assert caught.value.retryable
        assert_actionable(caught.value)
        await retry_async(client.produce, name, b"after", config=RetryConfig(max_retries=5))
        # the frozen broker may have stored the timed-out record before it froze
        values = [r.value for r in await read_all(client, name, 2, timeout=10, exact=False)]
    assert values in ([b"before", b"after"], [b"before", b"while frozen", b"after"])


def _restart_later(broker: Broker, delay: float) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        broker.start()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


async def test_retry_with_backoff_survives_a_restart(restartable: Broker, name: str) -> None:
    attempts: list[float] = []
    async with StreamlineClient(
        restartable.bootstrap,
        request_timeout_ms=800,
        producer_config=ProducerConfig(retries=0),
    ) as client:
        await make_topic(client, name)
        await client.produce(name, b"first")

        async def produce_once(value: bytes) -> RecordMetadata:
            attempts.append(time.monotonic())
            return await client.produce(name, value)

        restartable.kill()
        restarter = _restart_later(restartable, 2.0)
        try:
            meta = await retry_async(
                produce_once,
                b"second",
                config=RetryConfig(max_retries=10, initial_backoff_ms=100, max_backoff_ms=1600),
            )
        finally:
            restarter.join()
        assert len(attempts) >= 2  # it failed while the broker was down, then got through
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert all(gap >= 0.09 for gap in gaps)  # each retry waited its backoff
        assert meta.offset >= 0
        if restartable.durable:  # the first record survived the restart, the retried one too
            values = {r.value for r in await read_all(client, name, 2, exact=False)}
            assert values == {b"first", b"second"}


async def test_producer_retries_on_its_own(own_tansu: Broker, name: str) -> None:
    async with StreamlineClient(
        own_tansu.bootstrap,
        request_timeout_ms=800,
        producer_config=ProducerConfig(retries=8),
    ) as client:
        await make_topic(client, name)
        own_tansu.kill()
        restarter = _restart_later(own_tansu, 1.5)
        try:
            meta = await client.produce(name, b"retried by the producer")
        finally:
            restarter.join()
        assert meta.offset >= 0
        assert client.metrics.snapshot().errors_total >= 1


async def test_circuit_breaker_opens_on_an_outage_and_closes_after(
    own_tansu: Broker, name: str
) -> None:
    changes: list[tuple[CircuitState, CircuitState]] = []
    breaker = CircuitBreakerConfig(
        failure_threshold=2,
        success_threshold=1,
        open_timeout_s=1.0,
        half_open_max_requests=1,
        on_state_change=lambda old, new: changes.append((old, new)),
    )
    async with StreamlineClient(
        own_tansu.bootstrap,
        request_timeout_ms=700,
        circuit_breaker=breaker,
        producer_config=ProducerConfig(retries=0),
    ) as client:
        await make_topic(client, name)
        await client.produce(name, b"metadata is known")
        consumer = client.consumer()  # the client's consumers share its breaker
        await consumer.start()
        consumer.assign([TopicPartition(name, 0)])
        own_tansu.pause()
        try:
            for _ in range(2):  # the first times out; then the connection is given up
                with pytest.raises((TimeoutError, ConnectionError)):
                    await client.produce(name, b"x")
            started = time.monotonic()
            with pytest.raises(CircuitBreakerOpen) as caught:
                await client.produce(name, b"refused at once")
            assert time.monotonic() - started < 0.2
            assert caught.value.retryable
            assert_actionable(caught.value)
            with pytest.raises(CircuitBreakerOpen):
                await consumer.poll(timeout_ms=10)
        finally:
            own_tansu.resume()
        await consumer.close()
        await asyncio.sleep(1.1)
        assert client.circuit_breaker is not None
        assert client.circuit_breaker.state is CircuitState.HALF_OPEN
        await client.produce(name, b"trial")
        assert client.circuit_breaker.state is CircuitState.CLOSED
    assert changes == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]


async def test_not_started_parts_say_so(client: StreamlineClient, name: str) -> None:
    consumer = client.consumer()
    with pytest.raises(StreamlineError, match="not started") as caught:
        await consumer.poll()
    assert_actionable(caught.value)
    fresh = StreamlineClient(client.bootstrap_servers)
    with pytest.raises(ConnectionError) as not_started:
        fresh.admin  # noqa: B018
    assert not not_started.value.retryable
