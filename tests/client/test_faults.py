"""Faults injected by a real proxy process-thread between the client and a real server: cut
connections, 429/503 with Retry-After, slow responses, lost responses, a killed server."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from typing import Any

import pytest

from millstream.client import (
    AsyncIdempotentProducer,
    DurableStream,
    FetchError,
    FetchTimeoutError,
    RetryPolicy,
    stream,
)
from servers import millstream_server, reference_server

from .conftest import Server, via
from .faultproxy import Fault, FaultProxy, running_proxy

FAST = RetryPolicy(initial_delay=0.05, max_delay=0.2)
# Consecutive injected failures exceed the default budget of 2 on purpose; the point of these
# tests is that no item is lost or repeated, not the budget.
PERSISTENT = RetryPolicy(max_retries=10, initial_delay=0.05, max_delay=0.2)


def is_get(method: str, target: str) -> bool:
    return method == "GET"


def live(mode: str) -> Any:
    return lambda method, target: method == "GET" and f"live={mode}" in target


def test_catch_up_read_cut_mid_body_resumes(url: str, proxy: FaultProxy) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    for i in range(50):
        handle.append({"i": i, "pad": "x" * 50})
    proxy.add(Fault(is_get, times=2, cut_after=400))
    with stream(via(proxy, url), live=False, retry=FAST) as res:
        items = res.read_json()
    assert [x["i"] for x in items] == list(range(50))
    assert len([r for r in proxy.requests if r[0] == "GET"]) == 3


@pytest.mark.parametrize("mode", ["long-poll", "sse"])
def test_live_read_survives_cuts_and_sees_each_item_once(
    url: str, proxy: FaultProxy, mode: str
) -> None:
    handle = DurableStream.create(url, content_type="application/json")
    total = 40

    def writer() -> None:
        for i in range(total):
            handle.append({"i": i})
            time.sleep(0.01)
            if i in (10, 25):
                proxy.kill_connections()  # the server "crashes" mid-read, twice
        handle.close_stream()

    # Cut some live responses part-way through their body, too.
    proxy.add(Fault(live(mode), times=3, cut_after=300))
    got: list[int] = []
    thread = threading.Thread(target=writer)
    with stream(via(proxy, url), live=mode, retry=PERSISTENT) as res:  # type: ignore[arg-type]
        thread.start()
        got = [x["i"] for x in res.iter_json()]
    thread.join()
    assert got == list(range(total))


def test_429_retry_after_is_honoured(url: str, proxy: FaultProxy) -> None:
    DurableStream.create(url, content_type="application/json").append(1)
    fault = proxy.add(Fault(is_get, status=429, headers={"Retry-After": "1"}))
    started = time.monotonic()
    with stream(via(proxy, url), live=False) as res:
        assert res.read_json() == [1]
    assert fault.hits == 1
    assert 0.9 <= time.monotonic() - started < 3


def test_503_on_append_is_retried_once_applied(url: str, proxy: FaultProxy) -> None:
    DurableStream.create(url, content_type="application/json")
    fault = proxy.add(
        Fault(lambda m, t: m == "POST", status=503, headers={"Retry-After": "0.2"}, times=2)
    )
    handle = DurableStream(via(proxy, url), content_type="application/json")
    handle.append({"once": True})
    assert fault.hits == 2
    with stream(url, live=False) as res:
        assert res.read_json() == [{"once": True}]


def test_retries_give_up_with_a_retryable_error(url: str, proxy: FaultProxy) -> None:
    DurableStream.create(url, content_type="application/json")
    proxy.add(Fault(lambda m, t: m == "HEAD", status=503, times=10))
    handle = DurableStream(via(proxy, url), retry=FAST)
    with pytest.raises(FetchError) as info:
        handle.head()
    assert info.value.status == 503
    assert info.value.retryable
    assert len([r for r in proxy.requests if r[0] == "HEAD"]) == 3  # 1 + 2 retries


def test_slow_server_and_timeouts(url: str, proxy: FaultProxy) -> None:
    DurableStream.create(url, content_type="application/json")
    proxy.add(Fault(lambda m, t: m == "HEAD", delay=2.0, times=10))
    quick = DurableStream(via(proxy, url), timeout=0.3, retry=RetryPolicy(max_retries=0))
    started = time.monotonic()
    with pytest.raises(FetchTimeoutError) as info:
        quick.head()
    assert time.monotonic() - started < 1.5
    assert info.value.retryable
    assert info.value.hint
    patient = DurableStream(via(proxy, url), timeout=0.3, retry=RetryPolicy(max_retries=0))
    assert patient.head(timeout=5).exists  # a per-call timeout overrides the client's


def test_plain_append_is_not_retried_when_its_response_is_lost(url: str, proxy: FaultProxy) -> None:
    DurableStream.create(url, content_type="application/json")
    proxy.add(Fault(lambda m, t: m == "POST", drop_response=True))
    handle = DurableStream(via(proxy, url), content_type="application/json")
    with pytest.raises(FetchError):
        handle.append({"maybe": 1})
    with stream(url, live=False) as res:
        assert res.read_json() == [{"maybe": 1}]  # applied once, never duplicated by a retry


async def test_producer_retry_after_lost_response_is_exactly_once(
    url: str, proxy: FaultProxy
) -> None:
    DurableStream.create(url, content_type="application/json")
    proxy.add(Fault(lambda m, t: m == "POST", drop_response=True, times=2))
    async with AsyncIdempotentProducer(via(proxy, url), "exactly-once", retry=FAST) as producer:
        first = producer.append({"n": 1})
        await producer.flush()
        assert (await first).duplicate  # the server had it; the retry was deduplicated
        producer.append({"n": 2})
        await producer.flush()
    with stream(url, live=False) as res:
        assert res.read_json() == [{"n": 1}, {"n": 2}]


@pytest.mark.slow
def test_server_killed_and_restarted_reader_resumes(server: Server) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        start = (
            (lambda: millstream_server("--data-dir", data_dir, "--long-poll-timeout", "1"))
            if server.name == "millstream"
            else (
                lambda: reference_server("--data-dir", data_dir, "--long-poll-timeout-ms", "1000")
            )
        )
        with start() as first, running_proxy(first.url) as proxy:
            url = f"{proxy.url}/v1/stream/crash"
            handle = DurableStream.create(url, content_type="application/json")
            for i in range(10):
                handle.append(i)
            events: list[Any] = []
            res = stream(
                url,
                live="long-poll",
                # retries for ~2 minutes: the second server may take many seconds to start on
                # a loaded machine, and the reader must still be retrying when it does
                retry=RetryPolicy(max_retries=600, initial_delay=0.1, max_delay=0.2),
            )
            reader = threading.Thread(target=lambda: events.extend(res.iter_events(mode="json")))
            reader.start()
            time.sleep(0.3)
            first.kill()  # kill -9: the reader's connection drops, reconnects fail for a while
            time.sleep(0.5)
            with start() as second:
                proxy.upstream = second.url
                for i in range(10, 20):
                    handle.append(i)
                handle.close_stream()
                reader.join(15)
                res.close()
                second.terminate()
    got = [item for event in events for item in event.data or []]
    # On failure, show each response's items with its Stream-Next-Offset to tell a client
    # repeat (same offset twice) from a server answering overlapping ranges.
    assert got == list(range(20)), [(e.data, e.next_offset) for e in events]


def test_async_live_read_survives_cuts(url: str, proxy: FaultProxy) -> None:
    from millstream.client import AsyncDurableStream

    async def main() -> list[int]:
        async with await AsyncDurableStream.create(url, content_type="application/json") as h:

            async def writer() -> None:
                for i in range(20):
                    await h.append(i)
                    await asyncio.sleep(0.01)
                    if i == 8:
                        proxy.kill_connections()
                await h.close_stream()

            proxy.add(Fault(live("sse"), times=2, cut_after=250))
            async with AsyncDurableStream(via(proxy, url), retry=PERSISTENT) as reader:
                task = asyncio.create_task(writer())
                async with reader.stream(live="sse") as res:
                    got = [x async for x in res.iter_json()]
                await task
                return got

    assert asyncio.run(main()) == list(range(20))
