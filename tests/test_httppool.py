"""``millstream._httppool``: the slot queue in front of httpx's pool that every SDK's clients
use, against a real ``millstream serve``: order, timeouts, slots given back, separate lanes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest

from millstream import _httppool
from servers import ServerProcess, millstream_server

TEXT = {"Content-Type": "text/plain"}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with millstream_server("--memory", "--long-poll-timeout", "5") as process:
        yield process


async def test_slots_are_first_come_first_served_and_survive_cancellation() -> None:
    slots = _httppool._Slots(1)
    await slots.acquire(None)
    order: list[int] = []

    async def take(n: int) -> None:
        await slots.acquire(None)
        order.append(n)
        slots.release()

    tasks = [asyncio.create_task(take(n)) for n in range(5)]
    await asyncio.sleep(0)
    tasks[2].cancel()  # a waiter that gives up keeps no slot
    with pytest.raises(TimeoutError):
        await slots.acquire(0.01)  # nor does one that times out
    slots.release()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == [0, 1, 3, 4]
    await slots.acquire(None)  # the one slot is free again
    slots.release()


def _url(server: ServerProcess, name: str) -> str:
    return f"{server.url}/v1/stream/pool-{name}"


async def test_a_full_lane_times_out_and_a_closed_response_frees_its_slot(
    server: ServerProcess,
) -> None:
    url = _url(server, "async")
    async with _httppool.async_client(max_requests=1, max_streams=1, timeout=5.0) as client:
        await client.put(url, headers=TEXT, content=b"start;")
        held = await client.send(client.build_request("GET", url), stream=True)
        with pytest.raises(httpx.PoolTimeout):
            await client.get(url, timeout=httpx.Timeout(5.0, pool=0.1))
        # The stream lane is separate: a live read goes through while requests are full.
        live = client.build_request(
            "GET",
            url,
            params={"offset": "-1", "live": "long-poll"},
            extensions=_httppool.STREAM_LANE,
        )
        assert (await client.send(live)).status_code == 200
        await held.aclose()
        assert (await client.get(url)).status_code == 200
        bodies = await asyncio.gather(
            *(client.post(url, content=f"{i};".encode(), headers=TEXT) for i in range(200))
        )
        assert {r.status_code for r in bodies} == {204}
        read = await client.get(url, params={"offset": "-1"})
        assert read.content.count(b";") == 201


def test_the_blocking_twin(server: ServerProcess) -> None:
    url = _url(server, "sync")
    with _httppool.sync_client(max_requests=2, timeout=5.0) as client:
        client.put(url, headers={"Content-Type": "text/plain"})
        held = [client.send(client.build_request("GET", url), stream=True) for _ in range(2)]
        with pytest.raises(httpx.PoolTimeout):
            client.get(url, timeout=httpx.Timeout(5.0, pool=0.1))
        for response in held:
            response.close()
        statuses: list[int] = []
        threads = [
            threading.Thread(
                target=lambda: statuses.append(
                    client.post(url, content=b"x", headers=TEXT).status_code
                )
            )
            for _ in range(20)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [204] * 20


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_requests"):
        _httppool.QueuedAsyncTransport(max_requests=0)
