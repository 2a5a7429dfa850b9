"""The dual-mode suite (``python -m benchmarks --suite dualmode``): one generator served as SSE
by millstream.dualmode (plain, and durable on a MemoryStore and on SQLite with fsync) and by its
peers, sse-starlette's ``EventSourceResponse`` and a plain ``StreamingResponse``
(``benchmarks/sse_apps.py``). Every event is parsed and its index checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid

import aiohttp
import orjson

from benchmarks._model import Context, Figure, Outcome, read_rss_bytes
from benchmarks.scenarios._sse import SSEReader
from benchmarks.scenarios.durable_streams import MIB, _percentile, _scenario, _session

__all__ = ["PROTOCOL"]

PROTOCOL = "sse-app"
_HEADERS = {"Accept": "text/event-stream"}
_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


def _events_url(ctx: Context, n: int, size: int, interval: float = 0.0, warmup: float = 0.0) -> str:
    # ``run`` names a fresh generation for the durable apps; the others ignore it. Events
    # start after ``warmup`` (every client connected), each client's at a random phase of the
    # interval, as independent users' would.
    run = uuid.uuid4().hex
    phase = round(warmup + random.uniform(0, interval), 4) if interval else 0.0
    return f"{ctx.target}/events?n={n}&size={size}&interval={interval}&phase={phase}&run={run}"


async def _one_connection(ctx: Context) -> Outcome:
    """One client reads ``events`` events as fast as the server sends them."""
    n, size = ctx.params["events"], ctx.params["size"]
    expected = 0
    async with _session(1) as session:
        with ctx.meter.measure():
            async with session.get(_events_url(ctx, n, size), headers=_HEADERS) as response:
                if response.status != 200:
                    ctx.tally.fail(f"HTTP {response.status}")
                    return Outcome({})
                rest = b""
                async for chunk in response.content.iter_any():
                    blocks = (rest + chunk).replace(b"\r\n", b"\n").split(b"\n\n")
                    rest = blocks.pop()
                    for block in blocks:
                        for line in block.split(b"\n"):
                            if line.startswith(b"data:"):
                                if orjson.loads(line[5:])["i"] != expected:
                                    ctx.tally.fail(f"event {expected} missing or out of order")
                                expected += 1
    if expected != n:
        ctx.tally.fail(f"{expected} of {n} events arrived")
    ctx.tally.ok(n)
    _, server_share = ctx.meter.shares()
    return Outcome(
        {
            "events_per_s": n / ctx.meter.wall,
            "server_us_per_event": server_share * ctx.meter.wall / n * 1e6,
        }
    )


async def _many_clients(ctx: Context) -> Outcome:
    """``clients`` SSE connections, each ``events`` events ``interval`` s apart: delivery
    latency (yield to parsed by the client) of the events generated once every client is
    connected (not the connection storm), and the server's RSS while they are connected."""
    clients, n, interval = ctx.params["clients"], ctx.params["events"], ctx.params["interval"]
    latencies: list[float] = []
    done = asyncio.Event()
    connected = [0, 0.0]  # clients with a response head; when the last one got it

    async def client(session: aiohttp.ClientSession) -> None:
        got = 0
        try:
            url = _events_url(ctx, n, 100, interval, ctx.params["warmup"])
            async with session.get(url, headers=_HEADERS) as response:
                if response.status != 200:
                    ctx.tally.fail(f"HTTP {response.status}")
                    return
                connected[0] += 1
                if connected[0] == clients:
                    connected[1] = time.time()
                parser = SSEReader()
                async for line in response.content:
                    event = parser.feed_line(line)
                    if event is None:
                        continue
                    item = orjson.loads(event[1])
                    if connected[1] and item["t"] >= connected[1]:
                        latencies.append((time.time() - item["t"]) * 1000)
                    if item["i"] != got:
                        ctx.tally.fail(f"event {got} missing or out of order")
                    got += 1
        except _ERRORS as exc:
            ctx.tally.fail(f"SSE client: {exc!r}")
            return
        if got == n:
            ctx.tally.ok()
        else:
            ctx.tally.fail(f"{got} of {n} events arrived")

    async def sample_rss() -> None:
        while not done.is_set():
            ctx.rss_peak = max(ctx.rss_peak, read_rss_bytes(ctx.server_pid))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.1)

    async with _session(0) as session:
        sampler = asyncio.create_task(sample_rss())
        with ctx.meter.measure():
            await asyncio.gather(*(client(session) for _ in range(clients)))
        done.set()
        await sampler
    if len(latencies) < clients:
        ctx.tally.fail(f"only {len(latencies)} events came after every client was connected")
    _, server_share = ctx.meter.shares()
    return Outcome(
        {
            "p50_ms": _percentile(latencies, 0.50),
            "p99_ms": _percentile(latencies, 0.99),
            "rss_mib": ctx.rss_peak / MIB,
            "server_us_per_event": server_share * ctx.meter.wall / (clients * n) * 1e6,
        },
        {"events": len(latencies)},
    )


_TIMEOUTS = (30.0, 90.0, 180.0)
_scenario(
    "sse-1-connection",
    "one SSE connection, 100-byte events as fast as they go",
    _one_connection,
    (
        Figure("events_per_s", "SSE events/s, 1 connection", "events/s", True),
        Figure("server_us_per_event", "server CPU per event, 1 connection", "µs", False),
    ),
    {"events": 2000, "size": 100},
    {"events": 50_000, "size": 100},
    {"events": 300_000, "size": 100},
    timeout=_TIMEOUTS,
    protocol=PROTOCOL,
)
_scenario(
    "sse-1000-clients",
    "1,000 SSE clients, an event every 0.2 s each",
    _many_clients,
    (
        Figure("p50_ms", "delivery latency p50, 1,000 clients", "ms", False),
        Figure("p99_ms", "delivery latency p99, 1,000 clients", "ms", False),
        Figure("rss_mib", "server RSS, 1,000 SSE clients", "MiB", False),
        Figure("server_us_per_event", "server CPU per event, 1,000 clients", "µs", False),
    ),
    {"clients": 50, "events": 3, "interval": 0.2, "warmup": 0.5},
    {"clients": 1000, "events": 10, "interval": 0.2, "warmup": 3.0},
    {"clients": 1000, "events": 20, "interval": 0.2, "warmup": 3.0},
    timeout=_TIMEOUTS,
    fresh_server=True,
    protocol=PROTOCOL,
)
