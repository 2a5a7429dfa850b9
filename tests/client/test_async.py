"""The async twin mirrors the sync behaviour against both real servers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from millstream.client import (
    AsyncDurableStream,
    SSEBytesIterationError,
    StreamClosedError,
    StreamConsumedError,
    StreamNotFoundError,
    astream,
)


async def test_create_append_read(url: str) -> None:
    async with await AsyncDurableStream.create(url, content_type="application/json") as handle:
        await handle.append({"event": "click"})
        await handle.append([1, 2])
        async with handle.stream(live=False) as res:
            assert await res.read_json() == [{"event": "click"}, [1, 2]]


async def test_await_astream_and_one_shot(url: str) -> None:
    async with await AsyncDurableStream.create(url, content_type="application/json") as h:
        await h.append(1)
    res = await astream(url, live=False)
    assert [b async for b in res] == [b"[1]"]
    with pytest.raises(StreamConsumedError):
        await res.read_text()
    await res.aclose()


async def test_missing_stream(url: str) -> None:
    with pytest.raises(StreamNotFoundError):
        async with astream(url):
            pass


async def test_gathered_appends_batch_and_keep_order(url: str) -> None:
    async with await AsyncDurableStream.create(url, content_type="application/json") as handle:
        results = await asyncio.gather(*[handle.append({"i": i}) for i in range(500)])
        assert len({r.next_offset for r in results}) < 500
        async with handle.stream(live=False) as res:
            assert [x["i"] async for x in res.iter_json()] == list(range(500))


async def test_plain_handle_and_close(url: str) -> None:
    await (await AsyncDurableStream.create(url, content_type="application/json")).release()
    async with AsyncDurableStream(url) as handle:
        await handle.append('"first"')
        await handle.close_stream({"last": True})
        with pytest.raises(StreamClosedError):
            await handle.append({"late": True})
        head = await handle.head()
        assert head.closed


@pytest.mark.parametrize("live", ["auto", "long-poll", "sse"])
async def test_live_tail_until_close(url: str, live: str) -> None:
    async with await AsyncDurableStream.create(url, content_type="application/json") as handle:

        async def writer() -> None:
            for i in range(3):
                await asyncio.sleep(0.05)
                await handle.append(i)
            await handle.close_stream()

        task = asyncio.create_task(writer())
        got: list[Any] = []
        async with handle.stream(live=live) as res:  # type: ignore[arg-type]
            async for item in res.iter_json():
                got.append(item)
        await task
        assert got == [0, 1, 2]


async def test_sse_events_and_async_on_error(url: str) -> None:
    async with await AsyncDurableStream.create(url, content_type="text/plain") as handle:
        await handle.append("hi")
        await handle.close_stream()
    async with astream(url, live="sse") as res:
        with pytest.raises(SSEBytesIterationError):
            res.__aiter__()
    async with astream(url, live="sse") as res:
        events = [e async for e in res.iter_events(mode="text")]
    assert "".join(e.data for e in events) == "hi"
    assert events[-1].closed

    seen: list[Exception] = []

    async def on_error(error: Exception) -> None:
        seen.append(error)

    with pytest.raises(StreamNotFoundError):
        await astream(url + "-missing", on_error=on_error)
    assert len(seen) == 1


async def test_append_nowait(url: str) -> None:
    async with await AsyncDurableStream.create(url, content_type="application/json") as handle:
        futures = [handle.append_nowait(i) for i in range(100)]
        await asyncio.gather(*futures)
        async with handle.stream(live=False) as res:
            assert await res.read_json() == list(range(100))
