"""``@dual_mode`` over real uvicorn: both modes, headers, heartbeats, errors, caps, and what a
client disconnect does to the generator (measured from the hang-up to its ``finally``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Query, Request
from pydantic import BaseModel
from starlette.responses import PlainTextResponse

from millstream.dualmode import DualModeResponse, SSEEvent, dual_mode

from .conftest import RawClient, parse_sse, serving, wait_for

SSE = {"accept": "text/event-stream"}


class Order(BaseModel):
    item: str
    quantity: int


def make_app() -> tuple[FastAPI, dict[str, Any]]:
    app = FastAPI()
    seen: dict[str, Any] = {"cleanups": 0}

    @app.get("/count")
    @dual_mode
    async def count(n: int = Query(default=3, ge=0)) -> AsyncIterator[Any]:
        """Counts."""
        for i in range(n):
            yield {"i": i}
        yield SSEEvent("last\nline", event="complete")

    @app.post("/orders/{shop}")
    @dual_mode(batch=lambda items: {"lines": len(items), "items": items})
    async def orders(shop: str, order: Order, request: Request) -> AsyncIterator[Any]:
        seen["request"] = request
        for n in range(order.quantity):
            yield {"shop": shop, "item": order.item, "n": n}

    @app.get("/slow")
    @dual_mode(heartbeat=0.05)
    async def slow() -> AsyncIterator[str]:
        await asyncio.sleep(0.3)
        yield "finally"

    @app.get("/fails")
    @dual_mode
    async def fails() -> AsyncIterator[int]:
        try:
            yield 1
            raise RuntimeError("the model fell over")
        finally:
            seen["cleanups"] += 1

    @app.get("/big")
    @dual_mode(max_batch_items=5)
    async def big() -> AsyncIterator[int]:
        try:
            for i in range(1000):
                yield i
        finally:
            seen["cleanups"] += 1

    @app.get("/async-builder")
    @dual_mode(batch=lambda items: _async_total(items))
    async def async_builder() -> AsyncIterator[int]:
        for i in range(4):
            yield i

    @app.get("/text-builder")
    @dual_mode(batch=lambda items: PlainTextResponse(",".join(map(str, items))))
    async def text_builder() -> AsyncIterator[int]:
        for i in range(3):
            yield i

    @app.get("/hang")
    @dual_mode(heartbeat=None)
    async def hang() -> AsyncIterator[str]:
        seen["started"] = time.monotonic()
        try:
            yield "first"
            await asyncio.sleep(60)
            yield "never"
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise
        finally:
            seen["finally_at"] = time.monotonic()

    return app, seen


async def _async_total(items: list[int]) -> dict[str, int]:
    await asyncio.sleep(0)
    return {"total": sum(items)}


async def test_batch_and_stream_from_one_generator() -> None:
    app, _ = make_app()
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        batch = await client.get("/count")
        assert batch.status_code == 200
        assert batch.headers["content-type"] == "application/json"
        assert batch.json() == [{"i": 0}, {"i": 1}, {"i": 2}, "last\nline"]

        stream = await client.get("/count", headers=SSE)
        assert stream.status_code == 200
        assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["x-accel-buffering"] == "no"
        events = parse_sse(stream.content)
        assert [(e.event, e.data) for e in events] == [
            ("message", '{"i":0}'),
            ("message", '{"i":1}'),
            ("message", '{"i":2}'),
            ("complete", "last\nline"),
        ]
        assert (
            (await client.get("/count?stream=true&n=1"))
            .headers["content-type"]
            .startswith("text/event-stream")
        )
        assert (await client.get("/count?format=batch", headers=SSE)).json()[-1] == "last\nline"
        bad = await client.get("/count?stream=perhaps")
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "invalid_mode"
        assert (await client.get("/count?n=-1")).status_code == 422  # FastAPI's own validation


async def test_parameters_body_and_request_reach_the_generator() -> None:
    app, seen = make_app()
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        order = {"item": "tea", "quantity": 2}
        batch = await client.post("/orders/north", json=order)
        assert batch.json() == {
            "lines": 2,
            "items": [
                {"shop": "north", "item": "tea", "n": 0},
                {"shop": "north", "item": "tea", "n": 1},
            ],
        }
        assert isinstance(seen["request"], Request)
        stream = await client.post("/orders/south?stream=1", json=order)
        assert [e.data for e in parse_sse(stream.content)][-1] == (
            '{"shop":"south","item":"tea","n":1}'
        )
        assert (await client.post("/orders/x", json={"item": "tea"})).status_code == 422
        spec = (await client.get("/openapi.json")).json()
        count = spec["paths"]["/count"]["get"]
        assert [p["name"] for p in count["parameters"]] == ["n"]
        assert count["description"] == "Counts."
        assert "requestBody" in spec["paths"]["/orders/{shop}"]["post"]


async def test_heartbeat_comments_while_the_generator_is_quiet() -> None:
    app, _ = make_app()
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        body = (await client.get("/slow", headers=SSE)).content
    assert body.startswith(b": keep-alive\n\n")
    assert body.endswith(b"data: finally\n\n")
    assert [e.data for e in parse_sse(body)] == ["finally"]


async def test_an_error_mid_stream_becomes_an_error_event_and_ends_the_stream() -> None:
    app, seen = make_app()
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        stream = await client.get("/fails", headers=SSE)
        assert stream.status_code == 200
        events = parse_sse(stream.content)
        assert [(e.event, e.data) for e in events] == [
            ("message", "1"),
            ("error", '{"error":"the model fell over","type":"RuntimeError"}'),
        ]
        batch = await client.get("/fails")
        assert batch.status_code == 500
        assert batch.json() == {
            "error": {
                "code": "generator_failed",
                "error": "the model fell over",
                "type": "RuntimeError",
            }
        }
    assert seen["cleanups"] == 2
    assert app.routes  # the server survived both


async def test_batch_cap_answers_406_and_stops_the_generator() -> None:
    app, seen = make_app()
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.get("/big")
        assert answer.status_code == 406
        assert answer.json()["error"]["code"] == "batch_too_large"
        assert "stream" in answer.json()["error"]["hint"]
        assert seen["cleanups"] == 1
        streamed = parse_sse((await client.get("/big", headers=SSE)).content)
        assert len(streamed) == 1000


async def test_batch_builders() -> None:
    app, _ = make_app()
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/async-builder")).json() == {"total": 6}
        text = await client.get("/text-builder")
        assert text.headers["content-type"].startswith("text/plain")
        assert text.text == "0,1,2"


async def test_disconnect_cancels_the_generator_promptly() -> None:
    app, seen = make_app()
    async with serving(app) as url:
        client = await RawClient.get(url, "/hang")
        await client.read_until(b"data: first\n\n")
        hung_up = time.monotonic()
        client.close()
        await wait_for(lambda: "finally_at" in seen, timeout=30)
    latency = seen["finally_at"] - hung_up
    print(f"disconnect -> generator finally: {latency * 1000:.2f} ms")
    assert seen.get("cancelled") is True
    # The generator was asleep for 60 s: its finally ran because the disconnect cancelled it.
    assert latency < 60


async def test_disconnect_while_the_generator_waits_at_yield() -> None:
    """A generator blocked on a full buffer (at its ``yield``) still sees CancelledError."""
    app = FastAPI()
    seen: dict[str, Any] = {}

    @app.get("/flood")
    @dual_mode(heartbeat=None)
    async def flood() -> AsyncIterator[str]:
        try:
            n = 0
            while True:
                n += 1
                seen["produced"] = n
                yield "x" * 1000
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise
        finally:
            seen["finally_at"] = time.monotonic()

    async with serving(app) as url:
        client = await RawClient.get(url, "/flood")
        await client.read_until(b"data: x")
        # Stop reading; wait until the generator is parked (its count stops growing).
        previous = -1
        while seen["produced"] != previous:
            previous = seen["produced"]
            await asyncio.sleep(0.2)
        hung_up = time.monotonic()
        client.close()
        await wait_for(lambda: "finally_at" in seen, timeout=30)
    print(f"disconnect -> finally at yield: {(seen['finally_at'] - hung_up) * 1000:.2f} ms")
    assert seen["cancelled"] is True
    stats = flood.dualmode.statistics()
    assert stats.client_disconnects == 1
    assert stats.max_buffered_events <= 1024


async def test_disconnect_in_batch_mode_cancels_the_generator() -> None:
    app, seen = make_app()
    async with serving(app) as url:
        host, port = url.removeprefix("http://").split(":")
        _reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await wait_for(lambda: "started" in seen)
        writer.close()
        await wait_for(lambda: "finally_at" in seen, timeout=30)
    assert seen["cancelled"] is True


async def test_dual_mode_response_by_hand() -> None:
    app = FastAPI()

    async def words() -> AsyncIterator[str]:
        for word in ("a", "b"):
            yield word

    @app.get("/words")
    async def handler(stream: bool = False) -> DualModeResponse:
        return DualModeResponse(words(), "stream" if stream else "batch", headers={"x-k": "v"})

    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        batch = await client.get("/words")
        assert batch.json() == ["a", "b"]
        assert batch.headers["x-k"] == "v"
        streamed = await client.get("/words?stream=true")
        assert [e.data for e in parse_sse(streamed.content)] == ["a", "b"]
        assert streamed.headers["x-k"] == "v"


def test_decoration_errors() -> None:
    def plain() -> list[int]:
        return [1]

    with pytest.raises(TypeError):
        dual_mode(plain)  # type: ignore[arg-type]

    async def gen(x: int) -> AsyncIterator[int]:
        yield x

    with pytest.raises(ValueError, match="durable=True"):
        dual_mode(url="http://127.0.0.1:1/v1/stream/x")(gen)
    with pytest.raises(ValueError, match="store="):
        dual_mode(durable=True)(gen)
    with pytest.raises(ValueError, match="not a parameter"):
        dual_mode(durable=True, url="http://127.0.0.1:1/x", key="nope")(gen)
    with pytest.raises(ValueError, match="heartbeat"):
        dual_mode(heartbeat=0)(gen)
