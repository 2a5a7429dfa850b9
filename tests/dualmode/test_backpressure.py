"""The bounded buffer and its policies: unit tests of ``EventBuffer``, then clients that never
read, over real uvicorn, while the server's memory is watched."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI

from millstream.dualmode import Backpressure, StreamStatistics, dual_mode
from millstream.dualmode._backpressure import EventBuffer

from .conftest import RawClient, serving, wait_for

MIB = 1024 * 1024


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="policy"):
        Backpressure(policy="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        Backpressure(max_events=0)
    with pytest.raises(ValueError, match="positive"):
        Backpressure(timeout=0)


async def test_wait_policy_blocks_the_producer_until_there_is_room() -> None:
    stats = StreamStatistics()
    buffer = EventBuffer(Backpressure(max_events=2, policy="wait"), stats)
    await buffer.put(b"a")
    await buffer.put(b"b")
    blocked = asyncio.create_task(buffer.put(b"c"))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    assert buffer.take() == [b"a", b"b"]
    await blocked
    assert buffer.take() == [b"c"]
    assert stats.waits == 1
    assert stats.dropped == 0
    assert stats.max_buffered_events == 2


async def test_byte_limit_and_one_oversized_event() -> None:
    stats = StreamStatistics()
    buffer = EventBuffer(Backpressure(max_events=100, max_bytes=10, policy="drop_oldest"), stats)
    await buffer.put(b"x" * 50)  # an empty buffer takes one event, however large
    await buffer.put(b"y" * 4)  # full by bytes: the big one goes
    await buffer.put(b"z" * 4)
    assert buffer.take() == [b"y" * 4, b"z" * 4]
    assert stats.dropped == 1


async def test_drop_oldest_never_waits() -> None:
    stats = StreamStatistics()
    buffer = EventBuffer(Backpressure(max_events=3, policy="drop_oldest"), stats)
    for n in range(10):
        await buffer.put(str(n).encode())
    assert buffer.take() == [b"7", b"8", b"9"]
    assert stats.dropped == 7
    assert stats.waits == 0
    assert stats.max_buffered_events == 3


async def test_closing_wakes_both_sides() -> None:
    buffer = EventBuffer(Backpressure(max_events=1), StreamStatistics())
    await buffer.put(b"a")
    producer = asyncio.create_task(buffer.put(b"b"))
    await asyncio.sleep(0.01)
    buffer.close()
    with pytest.raises(RuntimeError):
        await producer
    assert await buffer.wait(None) is True
    assert buffer.take() == [b"a"]
    assert await buffer.wait(0.01) is True  # closed: nothing more will come
    assert buffer.take() == []


async def test_wait_times_out_when_nothing_comes() -> None:
    buffer = EventBuffer(Backpressure(), StreamStatistics())
    assert await buffer.wait(0.01) is False


def flood_app(limits: Backpressure, events: int, size: int) -> tuple[FastAPI, Any, dict[str, Any]]:
    app = FastAPI()
    seen: dict[str, Any] = {"produced": 0}

    @app.get("/flood")
    @dual_mode(backpressure=limits, heartbeat=None)
    async def flood() -> AsyncIterator[str]:
        payload = "x" * size
        try:
            for n in range(events):
                seen["produced"] = n + 1
                yield payload
                if n % 100 == 0:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise
        finally:
            seen["finished_at"] = time.monotonic()

    return app, flood, seen


async def test_drop_oldest_keeps_memory_bounded_for_a_client_that_never_reads() -> None:
    events, size = 200_000, 1000  # 200 MB through a client that reads nothing after the start
    limits = Backpressure(max_events=64, max_bytes=256 * 1024, policy="drop_oldest")
    app, flood, seen = flood_app(limits, events, size)
    async with serving(app) as url:
        before = rss()
        client = await RawClient.get(url, "/flood")
        await client.read_until(b"data: x")
        await wait_for(lambda: "finished_at" in seen, timeout=120)
        grown = rss() - before
        client.close()
    stats = flood.dualmode.statistics()
    print(f"drop_oldest: {stats.dropped} of {events} dropped, RSS grew {grown / MIB:.1f} MiB")
    assert seen["produced"] == events
    assert "cancelled" not in seen
    assert stats.dropped > events // 2  # most of the 200 MB never fit anywhere
    assert stats.max_buffered_events <= 64
    assert stats.max_buffered_bytes <= 256 * 1024 + size + 20
    assert grown < 64 * MIB


async def test_wait_pauses_the_generator_for_a_client_that_never_reads() -> None:
    limits = Backpressure(max_events=64, policy="wait")
    app, flood, seen = flood_app(limits, 10_000_000, 1000)
    async with serving(app) as url:
        before = rss()
        client = await RawClient.get(url, "/flood")
        await client.read_until(b"data: x")
        previous = -1
        while seen["produced"] != previous:  # until the generator stops making progress
            previous = seen["produced"]
            await asyncio.sleep(0.3)
        grown = rss() - before
        client.close()
        await wait_for(lambda: "finished_at" in seen, timeout=30)
    stats = flood.dualmode.statistics()
    print(f"wait: paused after {seen['produced']} events, RSS grew {grown / MIB:.1f} MiB")
    assert seen["produced"] < 100_000  # paused at what the socket buffers and 64 events hold
    assert seen["cancelled"] is True
    # No buffer under ``wait``: the generator sends its own events and is held by the socket.
    assert stats.events - stats.sent <= 1
    assert stats.dropped == 0
    assert grown < 64 * MIB


async def test_disconnect_policy_drops_a_client_that_stops_reading() -> None:
    limits = Backpressure(max_events=64, policy="disconnect", timeout=0.5)
    app, flood, seen = flood_app(limits, 10_000_000, 1000)
    async with serving(app) as url:
        client = await RawClient.get(url, "/flood")
        await client.read_until(b"data: x")
        await wait_for(lambda: "finished_at" in seen, timeout=60)
        body = await client.read_to_eof(timeout=60)  # the server closed the connection
        client.close()
    stats = flood.dualmode.statistics()
    assert seen["cancelled"] is True
    assert stats.disconnects == 1
    assert stats.active == 0
    assert not body.endswith(b"0\r\n\r\n")  # cut off, not a completed chunked body
