"""httpx clients for millstream's SDKs (``millstream.client``, ``millstream.llm``, ...) that
stay fast when many requests wait for a connection.

httpx's connection pool re-examines every waiting request each time a connection frees
(encode/httpx issue 3215, open): with hundreds of requests queued on one ``AsyncClient``, each
request costs time in proportion to the queue and throughput collapses (600 ``put``s gathered
on one connection ran at 12 requests/s against ~900/s one after the other). Here a request
first takes a slot from a semaphore (first come, first served, constant work per wake-up);
only requests holding a slot reach the pool, which therefore never has a queue. A slot is
held until the response is closed, as its connection is.

Two lanes, each with its own slots and its own pool, so neither can starve or slow the other:
short requests (appends, catch-up reads, LLM completions) take one of ``max_requests`` slots;
long-lived streams (long-poll, SSE, streamed LLM output), which keep a connection for as long
as they read, take one of ``max_streams``. httpx's pool also examines every connection it holds
(and every request it serves) each time it places a request or frees a connection, so a lane
spreads its connections over pools of at most ``POOL_CONNECTIONS``: a thousand parked
long-polls in one pool made each of their next requests cost time in proportion to all the
others (1,000 live readers on one client were woken 20 s after an append, instead of within
a few hundred ms). A freed slot goes back to its pool and is the next one taken, so a reader's
next request finds the connection its last one kept alive. Mark a request as a stream with
``extensions=STREAM_LANE``::

    client = async_client(timeout=30.0)
    await client.post(url, content=body)                       # request lane
    async with client.stream("GET", url, extensions=STREAM_LANE) as response:  # stream lane
        ...
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

import httpx

__all__ = [
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_MAX_STREAMS",
    "POOL_CONNECTIONS",
    "STREAM_LANE",
    "QueuedAsyncTransport",
    "QueuedTransport",
    "async_client",
    "sync_client",
]

# Short requests in flight at once per client. More connections than this to one server
# rarely add throughput (each request is a round trip the server answers in well under 1 ms)
# and cost sockets and memory on both sides.
DEFAULT_MAX_REQUESTS = 64
# Long-lived streams at once per client: each holds a connection (HTTP/1.1) while it waits.
DEFAULT_MAX_STREAMS = 4096
# Connections per httpx pool (see the module docstring): a lane of more slots has more pools.
POOL_CONNECTIONS = 64

_LANE = "millstream.lane"
STREAM_LANE: dict[str, Any] = {_LANE: "stream"}


def _pool_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout") or {}
    value = timeout.get("pool")
    return float(value) if value is not None else None


def _limits(slots: int) -> httpx.Limits:
    # Every connection may stay alive between requests (httpx closes it after 5 s idle): a
    # live reader's next long-poll reuses the connection its last one used.
    return httpx.Limits(max_connections=slots, max_keepalive_connections=slots)


_Pool = TypeVar("_Pool")


class _Pools(Generic[_Pool]):
    """A lane's httpx pools, ``POOL_CONNECTIONS`` connections each, made when first needed.

    One entry per free slot names the pool it belongs to; ``take`` pops the entry freed last,
    so a pool's kept-alive connections are reused before another pool opens new ones. The
    caller holds a lane slot before it takes, so there is always an entry to pop."""

    def __init__(self, slots: int, make: Callable[[httpx.Limits], _Pool]) -> None:
        if slots < 1:
            raise ValueError("max_requests and max_streams must be >= 1")
        self._make = make
        self._sizes = [
            min(POOL_CONNECTIONS, slots - start) for start in range(0, slots, POOL_CONNECTIONS)
        ]
        self._pools: list[_Pool | None] = [None] * len(self._sizes)
        self._free = [slot // POOL_CONNECTIONS for slot in reversed(range(slots))]
        self._lock = threading.Lock()  # the blocking transport takes from several threads

    def take(self) -> tuple[int, _Pool]:
        with self._lock:
            index = self._free.pop()
            pool = self._pools[index]
            if pool is None:
                pool = self._pools[index] = self._make(_limits(self._sizes[index]))
            return index, pool

    def give(self, index: int) -> None:
        with self._lock:
            self._free.append(index)

    def made(self) -> list[_Pool]:
        return [pool for pool in self._pools if pool is not None]


def _shared_tls(transport_options: dict[str, Any]) -> dict[str, Any]:
    """The transport options with one TLS context for all of a lane's pools (building one
    costs milliseconds; each httpx transport would build its own)."""
    verify = transport_options.get("verify", True)
    if isinstance(verify, ssl.SSLContext):
        return transport_options
    options = {key: value for key, value in transport_options.items() if key != "cert"}
    options["verify"] = httpx.create_ssl_context(
        verify=verify,
        cert=transport_options.get("cert"),
        trust_env=transport_options.get("trust_env", True),
    )
    return options


class _Slots:
    """A first-come-first-served counting semaphore with constant work per acquire and release.

    Not ``asyncio.Semaphore``: on Python 3.11 its ``acquire`` calls ``locked()``, which scans
    every waiter, so 10,000 queued requests cost 10,000² steps (measured: 5 reads/s)."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, timeout: float | None) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we gave up: pass it on
            else:
                waiter.cancel()  # release() skips it
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class _ReleasingAsyncStream(httpx.AsyncByteStream):
    """A response body that gives its slot back when closed (once)."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class _ReleasingStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        yield from self._inner

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class QueuedAsyncTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncHTTPTransport`` behind two FIFO semaphores (see the module docstring).
    A request waiting longer than its pool timeout for a slot raises ``httpx.PoolTimeout``."""

    def __init__(
        self,
        *,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        max_streams: int = DEFAULT_MAX_STREAMS,
        **transport_options: Any,
    ) -> None:
        options = _shared_tls(transport_options)

        def make(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
            return httpx.AsyncHTTPTransport(limits=limits, **options)

        self._lanes = {
            lane: (_Slots(slots), _Pools(slots, make))
            for lane, slots in (("request", max_requests), ("stream", max_streams))
        }

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        slots, pools = self._lanes[request.extensions.get(_LANE, "request")]
        try:
            await slots.acquire(_pool_timeout(request))
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no free connection slot", request=request) from exc
        index, pool = pools.take()

        def release() -> None:
            pools.give(index)
            slots.release()

        try:
            response = await pool.handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleasingAsyncStream(response.stream, release)
        return response

    async def aclose(self) -> None:
        for _, pools in self._lanes.values():
            for pool in pools.made():
                await pool.aclose()


class QueuedTransport(httpx.BaseTransport):
    """The blocking twin of ``QueuedAsyncTransport``, for ``httpx.Client`` shared by threads."""

    def __init__(
        self,
        *,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        max_streams: int = DEFAULT_MAX_STREAMS,
        **transport_options: Any,
    ) -> None:
        options = _shared_tls(transport_options)

        def make(limits: httpx.Limits) -> httpx.HTTPTransport:
            return httpx.HTTPTransport(limits=limits, **options)

        self._lanes = {
            lane: (threading.BoundedSemaphore(slots), _Pools(slots, make))
            for lane, slots in (("request", max_requests), ("stream", max_streams))
        }

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        slots, pools = self._lanes[request.extensions.get(_LANE, "request")]
        timeout = _pool_timeout(request)
        if not slots.acquire(timeout=timeout if timeout is not None else -1):
            raise httpx.PoolTimeout("no free connection slot", request=request)
        index, pool = pools.take()

        def release() -> None:
            pools.give(index)
            slots.release()

        try:
            response = pool.handle_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _ReleasingStream(response.stream, release)
        return response

    def close(self) -> None:
        for _, pools in self._lanes.values():
            for pool in pools.made():
                pool.close()


def async_client(
    *,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    max_streams: int = DEFAULT_MAX_STREAMS,
    verify: Any = True,
    **client_options: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on a ``QueuedAsyncTransport``; other options go to httpx."""
    transport = QueuedAsyncTransport(
        max_requests=max_requests, max_streams=max_streams, verify=verify
    )
    return httpx.AsyncClient(transport=transport, verify=verify, **client_options)


def sync_client(
    *,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    max_streams: int = DEFAULT_MAX_STREAMS,
    verify: Any = True,
    **client_options: Any,
) -> httpx.Client:
    """An ``httpx.Client`` on a ``QueuedTransport``; other options go to httpx."""
    transport = QueuedTransport(max_requests=max_requests, max_streams=max_streams, verify=verify)
    return httpx.Client(transport=transport, verify=verify, **client_options)
