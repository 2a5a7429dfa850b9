"""Live reads underneath: `Store.wait` (wakes, timeouts, cancellation) and shared SSE frames."""

from __future__ import annotations

import asyncio

from millstream.log import AppendRequest, CreateRequest, MemoryStore, StreamConfig
from millstream.server.http._frames import FrameCache


async def _store_with_stream() -> MemoryStore:
    store = MemoryStore()
    await store.create("s", CreateRequest(StreamConfig("text/plain"), [b"a"]))
    return store


async def test_one_append_wakes_every_waiter_and_leaves_none_registered() -> None:
    store = await _store_with_stream()
    waiters = [asyncio.ensure_future(store.wait("s", 1, 5.0)) for _ in range(200)]
    await asyncio.sleep(0)
    assert store.notifier.waiter_count() == 200
    await store.append("s", AppendRequest([b"b"]))
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1.0) == [True] * 200
    assert store.notifier.waiter_count() == 0


async def test_a_timeout_or_a_cancelled_reader_does_not_disturb_the_others() -> None:
    store = await _store_with_stream()
    patient = [asyncio.ensure_future(store.wait("s", 1, 5.0)) for _ in range(3)]
    hasty = asyncio.ensure_future(store.wait("s", 1, 0.01))
    gone = asyncio.ensure_future(store.wait("s", 1, 5.0))
    await asyncio.sleep(0)
    gone.cancel()
    assert await hasty is False
    assert gone.cancelled()
    assert store.notifier.waiter_count() == 3  # the timed-out and cancelled ones unregistered
    await store.append("s", AppendRequest([b"b"]))
    assert await asyncio.wait_for(asyncio.gather(*patient), 1.0) == [True] * 3


async def test_no_wait_when_data_is_there_and_shutdown_wakes_waiters_with_false() -> None:
    store = await _store_with_stream()
    assert await store.wait("s", 0, 5.0) is True  # a message already sits at position 0
    assert await store.wait("missing", 0, 5.0) is True  # gone: the reader must look again
    parked = asyncio.ensure_future(store.wait("s", 1, 5.0))
    await asyncio.sleep(0)
    store.notifier.close()
    assert await asyncio.wait_for(parked, 1.0) is False
    assert await store.wait("s", 1, 5.0) is False  # after shutdown nothing parks
    assert store.notifier.waiter_count() == 0


def test_sse_frame_cache_keeps_the_latest_frame_per_stream_within_bounds() -> None:
    cache = FrameCache()
    cache.put(1, 0, 2, b"frame-a")
    assert cache.get(1, 0, 2) == b"frame-a"
    assert cache.get(1, 0, 3) is None
    assert cache.get(2, 0, 2) is None
    cache.put(1, 2, 3, b"frame-b")  # the stream moved on: the old frame is gone
    assert cache.get(1, 0, 2) is None
    assert cache.get(1, 2, 3) == b"frame-b"
    for stream_id in range(2, 3000):
        cache.put(stream_id, 0, 1, b"x")
    assert len(cache._frames) <= 1024
    cache.put(9999, 0, 1, b"y" * (40 << 20))  # larger than the whole budget: not kept
    assert cache.get(9999, 0, 1) is None
