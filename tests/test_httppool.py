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


def test_a_lane_spreads_its_connections_over_pools_and_reuses_the_last_freed() -> None:
    made: list[httpx.Limits] = []
    pools = _httppool._Pools(150, lambda limits: made.append(limits) or len(made) - 1)
    size = _httppool.POOL_CONNECTIONS
    taken = [pools.take() for _ in range(150)]
    # The first pool fills before the next is made; each pool holds at most POOL_CONNECTIONS.
    assert [index for index, _ in taken] == [n // size for n in range(150)]
    assert [limits.max_connections for limits in made] == [size, size, 150 - 2 * size]
    assert pools.made() == [0, 1, 2]
    pools.give(2)
    pools.give(0)
    assert pools.take()[0] == 0  # the slot freed last: its pool has a kept-alive connection
    assert pools.take()[0] == 2


async def test_a_thousand_live_reads_on_one_client_use_small_pools_and_are_all_woken(
    server: ServerProcess,
) -> None:
    url = _url(server, "many")
    async with _httppool.async_client(timeout=10.0) as client:
        await client.put(url, headers=TEXT, content=b"0;")
        tail = (await client.head(url)).headers["Stream-Next-Offset"]
        readers = 1000

        async def read() -> bytes:
            request = client.build_request(
                "GET",
                url,
                params={"offset": tail, "live": "long-poll"},
                extensions=_httppool.STREAM_LANE,
            )
            response = await client.send(request)
            return response.content

        tasks = [asyncio.create_task(read()) for _ in range(readers)]
        transport = client._transport
        assert isinstance(transport, _httppool.QueuedAsyncTransport)
        _, stream_pools = transport._lanes["stream"]
        # Until every reader holds a slot (the transport's own count: no event to wait on).
        while len(stream_pools._free) > _httppool.DEFAULT_MAX_STREAMS - readers:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert len(stream_pools.made()) == -(-readers // _httppool.POOL_CONNECTIONS)
        await asyncio.sleep(1.0)
        await client.post(url, headers=TEXT, content=b"live;")
        bodies = await asyncio.wait_for(asyncio.gather(*tasks), timeout=30.0)
        # Woken by the append: a reader left to the server's 5 s timeout gets an empty 204.
        assert bodies == [b"live;"] * readers


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_requests"):
        _httppool.QueuedAsyncTransport(max_requests=0)
