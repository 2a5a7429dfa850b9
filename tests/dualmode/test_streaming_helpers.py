"""The seed's streaming utilities: transform, replay, collect, and errors as events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from millstream.dualmode import (
    StreamBuffer,
    batch_to_stream,
    create_streaming_response,
    format_sse_event,
    resilient_stream,
    transform_stream,
)

from .conftest import parse_sse, serving


async def numbers(n: int, fail_at: int = -1) -> AsyncIterator[int]:
    for i in range(n):
        if i == fail_at:
            raise KeyError("missing")
        yield i


async def test_transform_stream_with_sync_and_async_functions() -> None:
    async def slow_double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    assert [x async for x in transform_stream(numbers(3), str)] == ["0", "1", "2"]
    assert [x async for x in transform_stream(numbers(3), slow_double)] == [0, 2, 4]


async def test_batch_to_stream() -> None:
    frames = [f async for f in batch_to_stream([{"a": 1}, "b"])]
    assert frames == ['data: {"a":1}\n\n', "data: b\n\n"]
    custom = [f async for f in batch_to_stream([1, 2], formatter=lambda i: f"data: {i * 10}\n\n")]
    assert custom == ["data: 10\n\n", "data: 20\n\n"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert len([f async for f in batch_to_stream(range(3), delay=0.02)]) == 3
    assert loop.time() - started >= 0.04  # two gaps between three items


async def test_stream_buffer_collects_and_caps() -> None:
    buffer = StreamBuffer()
    assert await buffer.collect(numbers(4)) == [0, 1, 2, 3]
    assert buffer.items == [0, 1, 2, 3]
    assert len(buffer) == 4
    with pytest.raises(ValueError, match="more than 2"):
        await StreamBuffer(max_items=2).collect(numbers(5))


async def test_resilient_stream_turns_errors_into_events() -> None:
    seen: list[object] = []

    async def on_error(exc: Exception) -> None:
        seen.append(type(exc))

    source = transform_stream(numbers(5, fail_at=2), format_sse_event)
    frames = [
        f
        async for f in resilient_stream(
            source, on_error=on_error, on_complete=lambda: seen.append("done")
        )
    ]
    events = parse_sse("".join(frames).encode())
    assert [(e.event, e.data) for e in events] == [
        ("message", "0"),
        ("message", "1"),
        ("error", '{"error":"\'missing\'","type":"KeyError"}'),
    ]
    assert seen == [KeyError, "done"]
    clean = [f async for f in resilient_stream(batch_to_stream(["x"]))]
    assert clean == ["data: x\n\n"]


async def test_create_streaming_response_over_http() -> None:
    app = FastAPI()

    @app.get("/sse")
    async def sse() -> object:
        return create_streaming_response(batch_to_stream(["a", "b"]), headers={"x-extra": "1"})

    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.get("/sse")
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["connection"] == "keep-alive"
    assert answer.headers["x-accel-buffering"] == "no"
    assert answer.headers["x-extra"] == "1"
    assert [e.data for e in parse_sse(answer.content)] == ["a", "b"]
