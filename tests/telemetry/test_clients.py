"""SentinelClient and AsyncSentinelClient against a real broker: the exact upstream bytes arrive,
blocking mode raises like upstream, and the non-blocking path spools through an outage and
replays when the broker returns, counting every event."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import orjson
import pytest

from millstream.telemetry import (
    AsyncSentinelClient,
    ConnectionError,
    PromptInfo,
    ResponseInfo,
    SendError,
    SentinelClient,
    SentinelConfig,
    TelemetryEvent,
    ValidationError,
)

from .brokers import (
    Millstream,
    Tansu,
    collect_kafka_python_leaks,
    consume,
    free_port,
    millstream,
    tansu,
)
from .front import Front
from .test_events import upstream_bytes


def events(count: int, service: str = "svc") -> list[TelemetryEvent]:
    return [
        TelemetryEvent(
            service_name=service,
            model="gpt-4",
            prompt=PromptInfo(text=f"question {i} — ünïcode", tokens=5 + i % 7),
            response=ResponseInfo(text=f"answer {i}", tokens=10, finish_reason="stop"),
            latency_ms=100.0 + i,
            cost_usd=0.001 * (i % 5),
            metadata={"i": str(i)},
        )
        for i in range(count)
    ]


def settings(broker_address: str, spool: str, **extra: object) -> SentinelConfig:
    values: dict[str, object] = {
        "brokers": [broker_address],
        "enable_idempotence": False,  # Tansu's InitProducerId v0/v1 fails
        "spool_dir": spool,
        "request_timeout_ms": 3000,
        "linger_ms": 5,
    }
    values.update(extra)
    return SentinelConfig(**values)  # type: ignore[arg-type]


def wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def ids(values: list[bytes]) -> list[UUID]:
    return [UUID(orjson.loads(v)["event_id"]) for v in values]


@pytest.mark.parametrize("blocking", [False, True])
def test_sync_client_sends_the_upstream_bytes(
    broker: Tansu, spool_dir: str, blocking: bool
) -> None:
    batch = events(50)
    config = settings(broker.bootstrap, spool_dir, blocking=blocking, topic="sync-bytes")
    with SentinelClient(config=config) as client:
        for event in batch:
            client.send(event)
        client.flush(10)
        stats = client.stats()
    assert stats.sent == 50
    assert stats.dropped == stats.spooled == 0
    received = consume(broker.bootstrap, "sync-bytes", 50)
    assert sorted(received) == sorted(upstream_bytes(e) for e in batch)  # Tansu: 3 partitions


@pytest.mark.parametrize("blocking", [False, True])
async def test_async_client_sends_the_upstream_bytes(
    broker: Tansu, spool_dir: str, blocking: bool
) -> None:
    batch = events(50)
    config = settings(broker.bootstrap, spool_dir, blocking=blocking, topic="async-bytes")
    async with AsyncSentinelClient(config=config) as client:
        await asyncio.gather(*(client.send(e) for e in batch[:25]))
        for event in batch[25:]:
            await client.send(event)
        await client.flush(10)
        stats = client.stats()
    assert stats.sent == 50
    assert stats.dropped == 0
    received = await asyncio.to_thread(consume, broker.bootstrap, "async-bytes", 50)
    assert sorted(received) == sorted(upstream_bytes(e) for e in batch)


def test_track_builds_the_upstream_event(broker: Tansu, spool_dir: str) -> None:
    config = settings(broker.bootstrap, spool_dir, topic="tracked")
    with SentinelClient(config=config) as client:
        client.track(
            service="example-service",
            model="gpt-4",
            prompt="What is the capital of France?",
            response="The capital of France is Paris.",
            latency_ms=150.5,
            prompt_tokens=8,
            completion_tokens=7,
            cost_usd=0.001,
            trace_id="trace-1",
            metadata={"region": "eu"},
            errors=["retry"],
            prompt_embedding=[0.1, 0.2],
        )
    (value,) = consume(broker.bootstrap, "tracked", 1)
    received = TelemetryEvent.from_json(value)
    assert value == upstream_bytes(received)
    assert received.response.finish_reason == "stop"
    assert (received.trace_id, received.metadata, received.errors) == (
        "trace-1",
        {"region": "eu"},
        ["retry"],
    )
    assert received.prompt.embedding == [0.1, 0.2]


def test_errors_of_the_sync_client(spool_dir: str) -> None:
    unreachable = f"127.0.0.1:{free_port()}"
    client = SentinelClient(
        config=settings(unreachable, spool_dir, blocking=True, request_timeout_ms=500)
    )
    with pytest.raises(ValidationError):
        client.send("not an event")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="tokens must be >= 0"):
        client.track("s", "m", "p", "r", 1.0, -1, 1, 0.0)
    with pytest.raises(ConnectionError) as caught:
        client.send(events(1)[0])
    collect_kafka_python_leaks()
    assert caught.value.retryable
    client.close()
    client.close()  # idempotent
    with pytest.raises(SendError, match="Client is closed") as closed:
        client.send(events(1)[0])
    assert not closed.value.retryable


async def test_errors_of_the_async_client(spool_dir: str) -> None:
    unreachable = f"127.0.0.1:{free_port()}"
    client = AsyncSentinelClient(
        config=settings(unreachable, spool_dir, blocking=True, request_timeout_ms=500)
    )
    with pytest.raises(ConnectionError):
        await client.start()
    await client.close()
    with pytest.raises(SendError, match="Client is closed"):
        await client.send(events(1)[0])


def drained(client: SentinelClient | AsyncSentinelClient) -> bool:
    stats = client.stats()
    return stats.connected and stats.queued == stats.in_flight == stats.spool_bytes == 0


class Outage:
    """A broker reached through a front that can be cut and restored (the broker keeps its
    data, so every event can be accounted for)."""

    def __init__(self, broker: Tansu, port: int) -> None:
        self.broker = broker
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.gate: Front | None = None

    def restore(self) -> None:
        self.gate = Front(self.broker.port, self.port)
        self.gate.start()

    def cut(self) -> None:
        assert self.gate is not None
        self.gate.stop()
        self.gate = None


@pytest.fixture
def outage() -> Iterator[Outage]:
    port = free_port()
    with tansu(advertised_port=port) as broker:
        path = Outage(broker, port)
        path.restore()
        try:
            yield path
        finally:
            if path.gate is not None:
                path.cut()


def test_outage_spools_and_replays(outage: Outage, spool_dir: str) -> None:
    """The broker becomes unreachable mid-run and comes back: every event arrives (at least
    once), nothing is dropped, and the caller never waits for the dead broker."""
    before, during = events(100, "before"), events(300, "during")
    config = settings(outage.bootstrap, spool_dir, topic="outage", queue_size=50)
    with SentinelClient(config=config) as client:
        for event in before:
            client.send(event)
        client.flush(10)
        outage.cut()
        slowest = 0.0
        for event in during:
            started = time.perf_counter()
            client.send(event)
            slowest = max(slowest, time.perf_counter() - started)
        wait_for(lambda: not client.stats().connected)
        assert client.stats().spooled >= 250  # the queue holds 50, the rest went to disk
        outage.restore()
        wait_for(lambda: drained(client), timeout=60)
        stats = client.stats()
    assert slowest < 1.0  # no send waited for the dead broker (3 s request timeout)
    assert stats.dropped == 0
    received = ids(consume(outage.bootstrap, "outage", 400, timeout=10))
    assert set(received) == {e.event_id for e in before + during}


async def test_async_outage_spools_and_replays(outage: Outage, spool_dir: str) -> None:
    before, during = events(20, "before"), events(200, "during")
    config = settings(outage.bootstrap, spool_dir, topic="async-outage", queue_size=20)
    async with AsyncSentinelClient(config=config) as client:
        for event in before:
            await client.send(event)
        await client.flush(10)
        outage.cut()
        for event in during:
            await client.send(event)
        await asyncio.to_thread(wait_for, lambda: not client.stats().connected)
        outage.restore()
        deadline = time.monotonic() + 60
        while not drained(client):
            assert time.monotonic() < deadline, client.stats()
            await asyncio.sleep(0.05)
        assert client.stats().dropped == 0
    received = await asyncio.to_thread(consume, outage.bootstrap, "async-outage", 220, 10)
    assert set(ids(received)) == {e.event_id for e in before + during}


def test_spool_outlives_the_process(broker: Tansu, spool_dir: str) -> None:
    """Events spooled by one client (broker down at close) are sent by the next one."""
    unreachable = f"127.0.0.1:{free_port()}"
    batch = events(40)
    first = SentinelClient(config=settings(unreachable, spool_dir, topic="handover"))
    for event in batch:
        first.send(event)
    started = time.monotonic()
    first.close(timeout=0.5)
    assert time.monotonic() - started < 10  # the close timeout bounds it
    assert first.stats().spooled == 40
    assert any(Path(spool_dir).glob("*.seg"))
    with SentinelClient(config=settings(broker.bootstrap, spool_dir, topic="handover")) as second:
        wait_for(lambda: second.stats().replayed == 40)
    assert set(ids(consume(broker.bootstrap, "handover", 40))) == {e.event_id for e in batch}
    assert not any(Path(spool_dir).glob("*.seg"))


def test_drops_are_counted_and_logged(spool_dir: str, caplog: pytest.LogCaptureFixture) -> None:
    unreachable = f"127.0.0.1:{free_port()}"
    config = settings(unreachable, spool_dir, queue_size=10, spool_max_bytes=0)
    client = SentinelClient(config=config)
    with caplog.at_level(logging.WARNING, logger="millstream.telemetry"):
        for event in events(100):
            client.send(event)
        client.close(timeout=0.2)
    stats = client.stats()
    assert stats.dropped == 100  # no spool: everything is lost, and said so
    assert stats.sent == stats.spooled == 0
    assert any("dropped" in record.message for record in caplog.records)


def test_full_spool_drops_the_excess(spool_dir: str) -> None:
    unreachable = f"127.0.0.1:{free_port()}"
    config = settings(unreachable, spool_dir, queue_size=5, spool_max_bytes=20_000)
    client = SentinelClient(config=config)
    for event in events(200):
        client.send(event)
    client.close(timeout=0.2)
    stats = client.stats()
    assert stats.spooled > 0
    assert stats.dropped > 0
    assert stats.spooled + stats.dropped == 200
    assert sum(p.stat().st_size for p in Path(spool_dir).glob("*.seg")) <= 20_000


# -- against millstream's own Kafka door ---------------------------------------------------


@pytest.fixture
def door(tmp_path: Path) -> Iterator[Millstream]:
    with millstream(tmp_path / "data") as running:
        yield running


def door_settings(door: Millstream, spool: str, **extra: object) -> SentinelConfig:
    """The SDK's defaults (idempotent, acks=all, gzip), only the broker and spool set."""
    return SentinelConfig(brokers=[door.bootstrap], spool_dir=spool, **extra)  # type: ignore[arg-type]


def test_both_clients_against_the_millstream_door(door: Millstream, spool_dir: str) -> None:
    sync_batch, async_batch = events(30, "sync"), events(30, "async")
    with SentinelClient(config=door_settings(door, spool_dir, topic="door")) as client:
        for event in sync_batch:
            client.send(event)

    async def send_async() -> None:
        async with AsyncSentinelClient(config=door_settings(door, spool_dir, topic="door")) as a:
            for event in async_batch:
                await a.send(event)

    asyncio.run(send_async())
    expected = [upstream_bytes(e) for e in sync_batch + async_batch]
    received = consume(door.bootstrap, "door", 60)
    assert received == expected  # one partition: in order, byte for byte
    # the same log over HTTP: the Sentinel made llm-telemetry JSON, "door" is a plain topic
    read = httpx.get(f"{door.url}/v1/stream/door", params={"offset": "-1"})
    assert read.status_code == 200


def test_server_stopped_and_restarted_mid_run(door: Millstream, spool_dir: str) -> None:
    """millstream goes down (SIGTERM) while the app keeps calling track(); it comes back with
    its data: every event is there, none dropped, and the caller never waited."""
    before, during, after = events(100, "before"), events(200, "during"), events(50, "after")
    config = door_settings(door, spool_dir, topic="restart", queue_size=50, request_timeout_ms=3000)
    with SentinelClient(config=config) as client:
        for event in before:
            client.send(event)
        client.flush(10)
        door.stop()
        slowest = 0.0
        for event in during:
            started = time.perf_counter()
            client.send(event)
            slowest = max(slowest, time.perf_counter() - started)
        wait_for(lambda: not client.stats().connected)
        door.start()
        for event in after:
            client.send(event)
        wait_for(lambda: drained(client), timeout=60)
        stats = client.stats()
    assert slowest < 1.0
    assert stats.dropped == 0
    assert stats.spooled >= 150
    received = ids(consume(door.bootstrap, "restart", 350, timeout=15))
    assert set(received) == {e.event_id for e in before + during + after}


async def test_close_right_after_sending_delivers(broker: Tansu, spool_dir: str) -> None:
    """Closing before the sender has even connected still delivers (not spools) the events."""
    batch = events(20)
    async with AsyncSentinelClient(
        config=settings(broker.bootstrap, spool_dir, topic="quick")
    ) as c:
        for event in batch:
            await c.send(event)
    assert c.stats().sent == 20
    assert c.stats().spooled == 0
    received = await asyncio.to_thread(consume, broker.bootstrap, "quick", 20)
    assert sorted(received) == sorted(upstream_bytes(e) for e in batch)
