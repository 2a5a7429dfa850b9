"""The official ``durable-streams`` client's public API, as millstream's client provides it
(issue 12), against both real servers: code written for it runs with only the import changed.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import pytest

from millstream.client import (
    AsyncDurableStream,
    AsyncIdempotentProducer,
    DurableStream,
    DurableStreamError,
    FetchTimeoutError,
    IdempotentProducer,
    InvalidArgumentError,
    SSEBytesIterationError,
    SSEReadAllError,
    StreamNotFoundError,
    astream,
    stream,
)


def test_close_releases_the_client_and_close_stream_ends_the_stream(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    handle.append({"n": 1})
    handle.close()  # releases connections only: the stream stays open
    assert handle._client.is_closed
    with DurableStream(url) as again:
        assert not again.head().stream_closed
        again.append({"n": 2})
        final = again.close_stream(data={"n": 3})
        assert final.final_offset == again.head().offset
        assert again.head().stream_closed
    with stream(url, live=False) as res:
        assert res.read_json() == [{"n": 1}, {"n": 2}, {"n": 3}]


async def test_async_aclose_and_close_stream(url: str) -> None:
    handle = await AsyncDurableStream.create(url, content_type="text/plain")
    await handle.append("a")
    await handle.aclose()
    assert handle._client.is_closed
    async with AsyncDurableStream(url) as again:
        assert not (await again.head()).stream_closed
        await again.close_stream("b")
        assert (await again.head()).stream_closed
    await AsyncDurableStream(url).close()  # close() is aclose() on the async twin


def test_static_helpers_create_stream_and_initial_body(url: str) -> None:
    with pytest.raises(StreamNotFoundError):
        DurableStream.head_static(url)
    with DurableStream(url) as handle:
        handle.create_stream(content_type="application/json", body='[{"a":1},{"b":2}]')
    head = DurableStream.head_static(url)
    assert (head.content_type, head.stream_closed) == ("application/json", False)
    with stream(url, live=False) as res:  # the raw body: a JSON array is several messages
        assert res.read_json() == [{"a": 1}, {"b": 2}]
    DurableStream.delete_static(url)
    with pytest.raises(StreamNotFoundError):
        DurableStream.head_static(url)
    DurableStream.create(url, content_type="text/plain", body=b"first").close()
    with stream(url, live=False) as res:
        assert res.read_text() == "first"


async def test_async_static_helpers(url: str) -> None:
    async with await AsyncDurableStream.create(url, content_type="text/plain", body="x"):
        pass
    assert (await AsyncDurableStream.head_static(url)).content_type == "text/plain"
    await AsyncDurableStream.delete_static(url)
    with pytest.raises(StreamNotFoundError):
        await AsyncDurableStream.head_static(url)


def test_response_metadata_from_the_first_response(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    tail = handle.append({"n": 1}).next_offset
    with stream(url) as res:  # before any consumption
        assert (res.status, res.ok, res.closed) == (200, True, False)
        assert res.headers["stream-next-offset"] == tail
        assert (res.offset, res.up_to_date, res.start_offset) == (tail, True, "-1")
        assert res.live is True  # the official name of "auto"
        first = next(res.iter_events())  # json by default
    assert res.closed
    assert first.data == [{"n": 1}]
    with stream(url, live="auto") as res:
        assert res.live is True
    with stream(url, live=False, offset=tail) as res:
        assert res.start_offset == tail
        assert [e.data for e in res.iter_events()] == [None]  # only "caught up"


def test_read_all_stops_at_up_to_date_in_long_poll(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    handle.append({"n": 1})
    started = time.monotonic()
    with stream(url, live="long-poll") as res:  # nobody writes: it must not block
        assert res.read_json() == [{"n": 1}]
        assert res.up_to_date
    assert time.monotonic() - started < 5
    with stream(url, live="sse") as res, pytest.raises(SSEReadAllError):
        res.read_json()
    with stream(url, live="sse") as res, pytest.raises(SSEBytesIterationError):
        res.read_bytes()


def test_timeout_ends_a_live_read(server: Any, url: str) -> None:
    DurableStream.create(url, content_type="application/json").append({"n": 1})
    # The servers hold a long-poll 1 s; a 0.3 s timeout ends the read instead of reconnecting.
    started = time.monotonic()
    with stream(url, live="long-poll", timeout=0.3) as res:
        items: list[Any] = []
        with pytest.raises(FetchTimeoutError) as info:
            items.extend(res.iter_json())
    assert items == [{"n": 1}]
    assert isinstance(info.value, httpx.TimeoutException)  # as the official client lets through
    assert info.value.code == "TIMEOUT"
    assert time.monotonic() - started < 5


def test_str_on_a_json_stream_is_json_text(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    handle.append(json.dumps({"serialized": True}))  # the official way
    handle.append({"python": "value"})  # the seed README's way
    handle.append(b"[1, 2]")  # JSON text as bytes: one message, a list
    with pytest.raises(DurableStreamError) as info:
        handle.append("not json")
    assert info.value.code == "BAD_VALUE"
    assert "json.dumps" in info.value.hint
    with stream(url, live=False) as res:
        assert res.read_json() == [{"serialized": True}, {"python": "value"}, [1, 2]]


def test_a_bad_str_fails_alone_not_its_batch(url: str) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    outcomes: list[str] = []

    def append(value: Any) -> None:
        try:
            handle.append(value)
            outcomes.append("ok")
        except DurableStreamError:
            outcomes.append("refused")

    threads = [threading.Thread(target=append, args=(v,)) for v in ['"a"', "{oops", '"b"'] * 5]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 10 + ["refused"] * 5
    with stream(url, live=False) as res:
        assert sorted(res.read_json()) == ["a"] * 5 + ["b"] * 5


def test_malformed_json_body_is_a_parse_error(url: str) -> None:
    DurableStream.create(url, content_type="text/plain", body="not json")
    with stream(url, live=False) as res, pytest.raises(DurableStreamError) as info:
        res.read_json()
    assert info.value.code == "PARSE_ERROR"


async def test_async_header_and_param_functions_are_awaited_per_request(url: str) -> None:
    calls: list[str] = []

    async def token() -> str:
        await asyncio.sleep(0)
        calls.append("token")
        return f"Bearer {len(calls)}"

    async with await AsyncDurableStream.create(
        url, content_type="application/json", headers={"Authorization": token}
    ) as handle:
        await handle.append({"n": 1})
        await handle.append({"n": 2})
    assert len(calls) == 3  # create and two appends
    async with astream(url, live=False, params={"tenant": token}) as res:
        assert await res.read_json() == [{"n": 1}, {"n": 2}]
    assert len(calls) == 4
    with pytest.raises(TypeError, match="async"):
        stream(url, live=False, headers={"Authorization": token})  # type: ignore[dict-item]


async def test_producer_official_name_in_asyncio_and_linger(url: str) -> None:
    await (await AsyncDurableStream.create(url, content_type="application/json")).aclose()
    producer = IdempotentProducer(url, "official-way", linger_ms=20, max_batch_items=3)
    assert isinstance(producer, AsyncIdempotentProducer)
    assert isinstance(producer, IdempotentProducer)
    producer.append(json.dumps({"i": 0}))  # official: JSON text
    await asyncio.sleep(0)
    assert producer.pending_count == 1  # lingering for 20 ms
    await asyncio.sleep(0.2)
    assert (producer.pending_count, producer.next_seq) == (0, 1)
    for i in range(1, 7):
        producer.append(json.dumps({"i": i}))  # a full batch does not linger
    await asyncio.sleep(0)
    assert producer.next_seq == 3  # batches of at most 3 items
    await producer.flush()
    first = await producer.close_stream()
    again = await producer.close_stream()  # repeating it is harmless
    assert (again.duplicate, again.offset) == (True, first.offset)
    await producer.close()
    async with astream(url, live=False) as res:
        assert [x["i"] for x in await res.read_json()] == list(range(7))


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"epoch": -1}, "epoch"),
        ({"max_batch_bytes": 0}, "max_batch_bytes"),
        ({"max_batch_bytes": -1}, "max_batch_bytes"),
        ({"max_batch_items": 0}, "max_batch_items"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"linger_ms": -1}, "linger_ms"),
    ],
)
def test_producer_limits_are_validated(options: dict[str, Any], argument: str) -> None:
    for make in (IdempotentProducer.blocking, AsyncIdempotentProducer):
        with pytest.raises(ValueError, match=argument) as info:
            make("http://127.0.0.1:9/s", "p", **options)
        assert isinstance(info.value, InvalidArgumentError)
        assert info.value.code == "INVALID_ARGUMENT"


def test_blocking_producer_outside_asyncio(url: str) -> None:
    DurableStream.create(url, content_type="application/json")
    producer = IdempotentProducer(url, "threads")
    assert not isinstance(producer, AsyncIdempotentProducer)
    with producer:
        producer.append({"n": 1}).result(10)
