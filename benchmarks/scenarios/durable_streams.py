"""Durable Streams over HTTP: the scenarios every HTTP server in the run faces.

Each scenario creates its own streams under ``/bench/<run>/`` (set-up is never measured),
measures a fixed amount of work with ``ctx.meter``, and checks every response: status,
``Stream-Next-Offset`` strictly increasing per writer and unique across writers, the stream's
tail after the run, and bodies where a read returns them. A failed check is counted in
``ctx.tally``; any failure makes the run report the scenario as failed, not as a number.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import aiohttp
import orjson

from benchmarks._model import (
    Context,
    Figure,
    Outcome,
    Scenario,
    ScenarioFailed,
    Tally,
    read_rss_bytes,
    register,
)
from benchmarks.scenarios._http1 import Connection, HTTPError
from benchmarks.scenarios._stats import percentile as _percentile

__all__ = ["PROTOCOL"]

PROTOCOL = "durable-streams"
MB = 1_000_000  # throughput is reported in decimal megabytes per second
MIB = 1024 * 1024
_RUN = os.urandom(4).hex()
_NETWORK_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)
_LEAN_ERRORS = (HTTPError, OSError)
_OFFSET = "Stream-Next-Offset"


def _path(name: str) -> str:
    """Where a scenario's stream lives, below the server's stream root."""
    return f"/bench/{_RUN}/{name}"


def _url(ctx: Context, name: str) -> str:
    return ctx.target + _path(name)


def _session(limit: int) -> aiohttp.ClientSession:
    """Pooled keep-alive connections, at most ``limit`` (0 = unbounded).

    No ``Accept-Encoding``: every server sends identity bodies, so compression cost (which
    some servers apply by default) is not what is compared.
    """
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        skip_auto_headers=("Accept-Encoding", "User-Agent"),
    )


def _payload(i: int, size: int) -> bytes:
    """A ``size``-byte text message that names its index, so a reader can check what arrived."""
    return f"m{i:010d}".encode().ljust(size, b".")


def _json_message(i: int) -> bytes:
    """About 100 bytes of JSON naming its index."""
    return orjson.dumps({"i": i, "pad": "x" * 78})


async def _create(
    session: aiohttp.ClientSession, url: str, content_type: str, body: bytes = b""
) -> str:
    """PUT a new stream (set-up: any failure aborts the scenario); returns its tail offset."""
    try:
        async with session.put(url, data=body, headers={"Content-Type": content_type}) as r:
            await r.read()
            if r.status != 201 or _OFFSET not in r.headers:
                raise ScenarioFailed(f"create {url}: HTTP {r.status}")
            return r.headers[_OFFSET]
    except _NETWORK_ERRORS as exc:
        raise ScenarioFailed(f"create {url}: {exc!r}") from exc


async def _append_setup(
    session: aiohttp.ClientSession, url: str, content_type: str, body: bytes
) -> str:
    """POST during set-up; any failure aborts the scenario. Returns the new tail offset."""
    try:
        async with session.post(url, data=body, headers={"Content-Type": content_type}) as r:
            await r.read()
            if r.status not in (200, 204) or _OFFSET not in r.headers:
                raise ScenarioFailed(f"set-up append to {url}: HTTP {r.status}")
            return r.headers[_OFFSET]
    except _NETWORK_ERRORS as exc:
        raise ScenarioFailed(f"set-up append to {url}: {exc!r}") from exc


async def _tail(session: aiohttp.ClientSession, url: str) -> str:
    """The stream's current tail offset, from HEAD."""
    try:
        async with session.head(url) as r:
            if r.status != 200 or _OFFSET not in r.headers:
                raise ScenarioFailed(f"HEAD {url}: HTTP {r.status}")
            return r.headers[_OFFSET]
    except _NETWORK_ERRORS as exc:
        raise ScenarioFailed(f"HEAD {url}: {exc!r}") from exc


async def _json_stream(session: aiohttp.ClientSession, url: str, messages: int) -> str:
    """Create a JSON stream holding ``messages`` ~100-byte messages (posted 500 per request)."""
    await _create(session, url, "application/json")
    tail = ""
    for start in range(0, messages, 500):
        batch = b"[" + b",".join(_json_message(i) for i in range(start, min(messages, start + 500)))
        tail = await _append_setup(session, url, "application/json", batch + b"]")
    return tail


# --- appends -----------------------------------------------------------------------------


async def _appends(
    ctx: Context, *, writers: int, messages: int, size: int, producers: bool = False
) -> tuple[list[float], int]:
    """``messages`` appends of ``size`` bytes by ``writers`` concurrent writers to one stream.

    Returns per-request latencies (seconds) of the successful appends and their count. With
    ``producers`` each writer is an idempotent producer (own Producer-Id, epoch 0, seq 0..).
    """
    tally = ctx.tally
    path = _path(f"append-{writers}-{size}-{int(producers)}")
    content_type = "application/octet-stream"
    latencies: list[float] = []
    seen: set[str] = set()
    indexes = iter(range(messages))
    body_cache = _payload(0, size) if size > 4096 else b""
    expected = (200,) if producers else (200, 204)

    async def writer(w: int) -> None:
        last = ""
        connection = Connection(ctx.target)
        try:
            for seq, i in enumerate(indexes):
                headers = {"Content-Type": content_type}
                if producers:
                    headers |= {"Producer-Id": f"bench-{w}", "Producer-Epoch": "0"}
                    headers["Producer-Seq"] = str(seq)
                body = body_cache or _payload(i, size)
                started = time.perf_counter()
                try:
                    r = await connection.request("POST", path, body, headers)
                except _LEAN_ERRORS as exc:
                    tally.fail(f"POST: {exc!r}")
                    continue
                elapsed = time.perf_counter() - started
                offset = r.headers.get("stream-next-offset", "")
                if r.status not in expected:
                    tally.fail(f"POST: HTTP {r.status}")
                    continue
                if producers and r.headers.get("producer-seq") != str(seq):
                    tally.fail(f"Producer-Seq {r.headers.get('producer-seq')!r}, sent {seq}")
                    continue
                if not offset or offset <= last or offset in seen:
                    tally.fail(f"offset {offset!r} not new and increasing (previous {last!r})")
                    continue
                seen.add(offset)
                last = offset
                latencies.append(elapsed)
                tally.ok()
        finally:
            connection.close()

    async with _session(1) as session:
        url = ctx.target + path
        await _create(session, url, content_type)
        with ctx.meter.measure():
            await asyncio.gather(*(writer(w) for w in range(writers)))
        if seen and (tail := await _tail(session, url)) != max(seen):
            tally.fail(f"tail {tail!r} after the run, highest acknowledged {max(seen)!r}")
    return latencies, len(latencies)


def _rate(count: int, ctx: Context) -> float:
    return count / ctx.meter.wall if ctx.meter.wall > 0 else 0.0


async def _append_small(ctx: Context) -> Outcome:
    writers, messages = int(ctx.params["writers"]), int(ctx.params["messages"])
    latencies, done = await _appends(ctx, writers=writers, messages=messages, size=100)
    values = {"msgs_per_s": _rate(done, ctx)}
    if writers == 1:
        values["p50_ms"] = _percentile(latencies, 0.50) * 1000
        values["p99_ms"] = _percentile(latencies, 0.99) * 1000
    return Outcome(values, {"writers": writers, "messages": done, "bytes_each": 100})


async def _append_idempotent(ctx: Context) -> Outcome:
    producers = int(ctx.params["producers"])
    _, done = await _appends(
        ctx, writers=producers, messages=ctx.params["messages"], size=100, producers=True
    )
    return Outcome({"msgs_per_s": _rate(done, ctx)}, {"producers": producers, "messages": done})


async def _append_large(ctx: Context) -> Outcome:
    writers = int(ctx.params["writers"])
    _, done = await _appends(ctx, writers=writers, messages=ctx.params["messages"], size=MIB)
    return Outcome({"mb_per_s": _rate(done, ctx) * MIB / MB}, {"writers": writers, "appends": done})


async def _create_many(ctx: Context, prefix: str, count: int, concurrency: int, size: int) -> int:
    """PUT ``count`` new text streams (with a ``size``-byte first message if ``size``)."""
    tally, names = ctx.tally, iter(range(count))

    async def creator() -> None:
        connection = Connection(ctx.target)
        try:
            for i in names:
                body = _payload(i, size) if size else b""
                try:
                    r = await connection.request(
                        "PUT", _path(f"{prefix}/{i}"), body, {"Content-Type": "text/plain"}
                    )
                except _LEAN_ERRORS as exc:
                    tally.fail(f"PUT: {exc!r}")
                    continue
                if r.status != 201 or "stream-next-offset" not in r.headers:
                    tally.fail(f"PUT: HTTP {r.status}")
                    continue
                tally.ok()
        finally:
            connection.close()

    with ctx.meter.measure():
        await asyncio.gather(*(creator() for _ in range(concurrency)))
    return tally.requests - tally.errors


async def _create_streams(ctx: Context) -> Outcome:
    concurrency, count = int(ctx.params["concurrency"]), int(ctx.params["streams"])
    created = await _create_many(ctx, "create", count, concurrency, 0)
    return Outcome({"creates_per_s": _rate(created, ctx)}, {"concurrency": concurrency})


# --- reads -------------------------------------------------------------------------------


async def _catch_up(ctx: Context) -> Outcome:
    """Read a JSON stream from the start to its tail, page by page, ``reads`` times."""
    messages, reads, tally = int(ctx.params["messages"]), int(ctx.params["reads"]), ctx.tally
    url = _url(ctx, "catch-up")
    total_bytes = 0
    async with _session(1) as session:
        tail = await _json_stream(session, url, messages)
        with ctx.meter.measure():
            for _ in range(reads):
                offset, received, pages = "-1", 0, 0
                while pages < messages + 1:
                    pages += 1
                    try:
                        async with session.get(url, params={"offset": offset}) as r:
                            body = await r.read()
                            status, headers = r.status, r.headers
                    except _NETWORK_ERRORS as exc:
                        tally.fail(f"GET: {exc!r}")
                        break
                    if status != 200 or _OFFSET not in headers:
                        tally.fail(f"GET: HTTP {status}")
                        break
                    total_bytes += len(body)
                    try:
                        items = orjson.loads(body)
                    except orjson.JSONDecodeError:
                        tally.fail("GET: body is not JSON")
                        break
                    if [m.get("i") for m in items] != list(range(received, received + len(items))):
                        tally.fail(f"GET: messages out of order after {received}")
                        break
                    tally.ok()
                    received += len(items)
                    offset = headers[_OFFSET]
                    if headers.get("Stream-Up-To-Date") == "true":
                        break
                if received != messages or offset != tail:
                    tally.fail(f"catch-up read got {received}/{messages} messages to {offset!r}")
    return Outcome(
        {"mb_per_s": total_bytes / MB / ctx.meter.wall if ctx.meter.wall else 0.0},
        {"messages": messages, "reads": reads, "bytes": total_bytes},
    )


async def _repeated_gets(ctx: Context) -> Outcome:
    """GET the whole of a 1,000-message JSON stream over and over, ``concurrency`` at a time."""
    concurrency, requests = int(ctx.params["concurrency"]), int(ctx.params["requests"])
    messages, tally = int(ctx.params["messages"]), ctx.tally
    path = _path("hot")
    target = f"{path}?offset=-1"
    work = iter(range(requests))
    expect: dict[str, Any] = {}

    async def reader() -> None:
        connection = Connection(ctx.target)
        try:
            for _ in work:
                try:
                    r = await connection.request("GET", target)
                except _LEAN_ERRORS as exc:
                    tally.fail(f"GET: {exc!r}")
                    continue
                offset = r.headers.get("stream-next-offset")
                if r.status != 200 or (len(r.body), offset) != (expect["length"], expect["offset"]):
                    tally.fail(f"GET: HTTP {r.status}, {len(r.body)} bytes to {offset!r}")
                    continue
                tally.ok()
        finally:
            connection.close()

    async with _session(1) as session:
        url = ctx.target + path
        await _json_stream(session, url, messages)
        async with session.get(url, params={"offset": "-1"}) as r:
            first = await r.read()
            items = orjson.loads(first) if r.status == 200 else []
            if not items or items[0].get("i") != 0:
                raise ScenarioFailed(f"first GET of the hot stream: HTTP {r.status}")
            expect |= {"length": len(first), "offset": r.headers.get(_OFFSET)}
    with ctx.meter.measure():
        await asyncio.gather(*(reader() for _ in range(concurrency)))
    ok = tally.requests - tally.errors
    return Outcome(
        {"req_per_s": _rate(ok, ctx)},
        {"concurrency": concurrency, "messages_per_response": len(items), "bytes": len(first)},
    )


# --- live delivery -----------------------------------------------------------------------


class _Live:
    """Live readers of one text stream: each resolves ``arrivals[i]`` when message i reaches it.

    ``arrivals`` maps message index to a list of arrival times (one per reader); ``expect`` is
    the number of readers, and ``all_in`` fires once every reader has message ``current``.
    """

    def __init__(self, url: str, readers: int, tally: Tally) -> None:
        self.url, self.readers, self.tally = url, readers, tally
        self.current = -1
        self.arrived: list[float] = []
        self.all_in = asyncio.Event()
        self.ready = 0
        self.all_ready = asyncio.Event()

    def deliver(self, body: str) -> None:
        """One reader saw ``body``: it must be exactly the message the writer last sent."""
        if body != _payload(self.current, 100).decode():
            self.tally.fail(f"live reader got {body[:24]!r}, expected message {self.current}")
            return
        self.tally.ok()
        self.arrived.append(time.perf_counter())
        if len(self.arrived) == self.readers:
            self.all_in.set()

    def armed(self) -> None:
        self.ready += 1
        if self.ready == self.readers:
            self.all_ready.set()

    async def long_poll(self, session: aiohttp.ClientSession, offset: str) -> None:
        """Poll forever from ``offset`` (cancelled by the scenario when it is done)."""
        armed = False
        while True:
            if not armed:
                armed = True
                self.armed()
            try:
                params = {"offset": offset, "live": "long-poll"}
                async with session.get(self.url, params=params) as r:
                    body = await r.read()
                    status, next_offset = r.status, r.headers.get(_OFFSET, "")
            except _NETWORK_ERRORS as exc:
                self.tally.fail(f"long-poll: {exc!r}")
                await asyncio.sleep(0.05)
                continue
            if status == 204 and next_offset == offset:
                continue
            if status != 200 or not next_offset or next_offset <= offset:
                self.tally.fail(f"long-poll: HTTP {status} to {next_offset!r} from {offset!r}")
                await asyncio.sleep(0.05)
                continue
            offset = next_offset
            self.deliver(body.decode())

    async def sse(self, session: aiohttp.ClientSession, offset: str) -> None:
        """Hold one SSE connection from ``offset``; data events carry one message each."""
        from benchmarks.scenarios._sse import SSEReader

        params = {"offset": offset, "live": "sse"}
        try:
            async with session.get(self.url, params=params) as r:
                if r.status != 200:
                    self.tally.fail(f"SSE: HTTP {r.status}")
                    return
                parser, armed = SSEReader(), False
                async for line in r.content:
                    event = parser.feed_line(line)
                    if event is None:
                        continue
                    kind, data = event
                    if kind == "data":
                        self.deliver(data)
                    elif kind == "control":
                        control = orjson.loads(data)
                        next_offset = control.get("streamNextOffset", "")
                        if next_offset < offset:
                            self.tally.fail(f"SSE control offset {next_offset!r} < {offset!r}")
                        offset = next_offset
                        if not armed:
                            armed = True
                            self.armed()
        except _NETWORK_ERRORS as exc:
            self.tally.fail(f"SSE: {exc!r}")

    async def send(self, session: aiohttp.ClientSession, i: int) -> float:
        """Append message ``i``; returns the time just before the request went out."""
        self.current, self.arrived = i, []
        self.all_in.clear()
        started = time.perf_counter()
        try:
            headers = {"Content-Type": "text/plain"}
            async with session.post(self.url, data=_payload(i, 100), headers=headers) as r:
                await r.read()
                if r.status not in (200, 204):
                    self.tally.fail(f"POST: HTTP {r.status}")
        except _NETWORK_ERRORS as exc:
            self.tally.fail(f"POST: {exc!r}")
        return started


async def _live(ctx: Context, mode: str, readers: int, rounds: int, settle: float) -> list[float]:
    """``rounds`` appends, each timed from the POST until all ``readers`` delivered it.

    Between rounds the writer waits ``settle`` seconds so long-poll readers are parked again.
    Returns per-round delivery times in seconds (rounds that never completed are errors).
    """
    url = _url(ctx, f"live-{mode}-{readers}")
    live = _Live(url, readers, ctx.tally)
    times: list[float] = []
    async with _session(0) as session:
        offset = await _create(session, url, "text/plain")
        tasks = [
            asyncio.create_task(getattr(live, mode.replace("-", "_"))(session, offset))
            for _ in range(readers)
        ]
        try:
            await asyncio.wait_for(live.all_ready.wait(), timeout=60)
            await asyncio.sleep(settle)
            ctx.rss_peak = read_rss_bytes(ctx.server_pid) if ctx.server_pid else 0
            for i in range(rounds):
                with ctx.meter.measure():
                    started = await live.send(session, i)
                    try:
                        await asyncio.wait_for(live.all_in.wait(), timeout=10)
                    except TimeoutError:
                        ctx.tally.fail(f"round {i}: {len(live.arrived)}/{readers} got it in 10 s")
                        continue
                times.append(max(live.arrived) - started)
                await asyncio.sleep(settle)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return times


async def _latency(ctx: Context) -> Outcome:
    mode, rounds = str(ctx.params["mode"]), int(ctx.params["rounds"])
    times = await _live(ctx, mode, 1, rounds, settle=float(ctx.params["settle"]))
    values = {"p50_ms": _percentile(times, 0.5) * 1000, "p99_ms": _percentile(times, 0.99) * 1000}
    return Outcome(values, {"mode": mode, "rounds": len(times)})


async def _fan_out(ctx: Context) -> Outcome:
    mode, readers = str(ctx.params["mode"]), int(ctx.params["readers"])
    rss = bool(ctx.params.get("rss", False))
    times = await _live(ctx, mode, readers, int(ctx.params["rounds"]), float(ctx.params["settle"]))
    values = {"p50_ms": _percentile(times, 0.5) * 1000, "max_ms": max(times, default=0.0) * 1000}
    if rss:
        values["rss_mb"] = max(ctx.rss_peak, read_rss_bytes(ctx.server_pid)) / MIB
    return Outcome(values, {"mode": mode, "readers": readers, "rounds": len(times)})


# --- memory ------------------------------------------------------------------------------


async def _idle_memory(ctx: Context) -> Outcome:
    """RSS of a fresh server before and after creating ``streams`` streams of 100 bytes each."""
    count = int(ctx.params["streams"])
    before = read_rss_bytes(ctx.server_pid)
    await _create_many(ctx, "idle", count, 32, 100)
    await asyncio.sleep(float(ctx.params["settle"]))
    after = read_rss_bytes(ctx.server_pid)
    return Outcome(
        {"rss_mb": after / MIB},
        {"streams": count, "rss_before_mb": round(before / MIB, 1)},
    )


# --- registry ----------------------------------------------------------------------------

_RATE = "higher"
_TIME = "lower"


def _fig(key: str, label: str, unit: str, better: str = _RATE) -> Figure:
    return Figure(key, label, unit, higher_is_better=better == _RATE)


def _scenario(
    name: str,
    title: str,
    run: Any,
    figures: tuple[Figure, ...],
    smoke: dict[str, Any],
    quick: dict[str, Any],
    full: dict[str, Any],
    timeout: tuple[float, float, float] = (20, 60, 120),
    fresh_server: bool = False,
    protocol: str = PROTOCOL,
) -> None:
    register(
        Scenario(
            name=name,
            protocol=protocol,
            title=title,
            figures=figures,
            run=run,
            params={"smoke": smoke, "quick": quick, "full": full},
            timeout=dict(zip(("smoke", "quick", "full"), timeout, strict=True)),
            fresh_server=fresh_server,
        )
    )


_scenario(
    "append-1",
    "append 100 B, 1 writer",
    _append_small,
    (
        _fig("msgs_per_s", "append 100 B, 1 writer", "msg/s"),
        _fig("p50_ms", "append latency p50, 1 writer", "ms", _TIME),
        _fig("p99_ms", "append latency p99, 1 writer", "ms", _TIME),
    ),
    {"writers": 1, "messages": 50},
    {"writers": 1, "messages": 500},
    {"writers": 1, "messages": 10000},
)
for _writers, _quick, _full in ((16, 2000, 40000), (64, 3000, 60000)):
    _scenario(
        f"append-{_writers}",
        f"append 100 B, {_writers} writers",
        _append_small,
        (_fig("msgs_per_s", f"append 100 B, {_writers} writers", "msg/s"),),
        {"writers": _writers, "messages": 200},
        {"writers": _writers, "messages": _quick},
        {"writers": _writers, "messages": _full},
    )
_scenario(
    "idempotent-16",
    "idempotent producers, 16 concurrent",
    _append_idempotent,
    (_fig("msgs_per_s", "idempotent append, 16 producers", "msg/s"),),
    {"producers": 16, "messages": 200},
    {"producers": 16, "messages": 2000},
    {"producers": 16, "messages": 30000},
)
_scenario(
    "create-16",
    "stream creation, 16 concurrent",
    _create_streams,
    (_fig("creates_per_s", "create stream, 16 concurrent", "creates/s"),),
    {"concurrency": 16, "streams": 100},
    {"concurrency": 16, "streams": 2000},
    {"concurrency": 16, "streams": 20000},
)
_scenario(
    "append-1mib-4",
    "append 1 MiB, 4 writers",
    _append_large,
    (_fig("mb_per_s", "append 1 MiB, 4 writers", "MB/s"),),
    {"writers": 4, "messages": 8},
    {"writers": 4, "messages": 64},
    {"writers": 4, "messages": 512},
)
_scenario(
    "catch-up-20k",
    "catch-up read, 20k-message JSON stream",
    _catch_up,
    (_fig("mb_per_s", "catch-up read, 20k JSON messages", "MB/s"),),
    {"messages": 2000, "reads": 1},
    {"messages": 20000, "reads": 3},
    {"messages": 20000, "reads": 20},
)
_scenario(
    "get-1k-16",
    "repeated GET of a 1,000-message stream, 16 concurrent",
    _repeated_gets,
    (_fig("req_per_s", "GET 1,000-message stream, 16 concurrent", "req/s"),),
    {"concurrency": 16, "requests": 100, "messages": 1000},
    {"concurrency": 16, "requests": 1000, "messages": 1000},
    {"concurrency": 16, "requests": 10000, "messages": 1000},
)
for _mode in ("long-poll", "sse"):
    _scenario(
        f"latency-{_mode}",
        f"append → live {_mode} reader",
        _latency,
        (
            _fig("p50_ms", f"append → {_mode} delivery p50", "ms", _TIME),
            _fig("p99_ms", f"append → {_mode} delivery p99", "ms", _TIME),
        ),
        {"mode": _mode, "rounds": 20, "settle": 0.002},
        {"mode": _mode, "rounds": 100, "settle": 0.005},
        {"mode": _mode, "rounds": 1000, "settle": 0.005},
    )
for _mode, _readers, _rounds in (("long-poll", 200, (4, 20)), ("sse", 100, (8, 40))):
    _scenario(
        f"fan-out-{_mode}-{_readers}",
        f"fan-out to {_readers} {_mode} readers",
        _fan_out,
        (
            _fig("p50_ms", f"fan-out to {_readers} {_mode}, p50", "ms", _TIME),
            _fig("max_ms", f"fan-out to {_readers} {_mode}, max", "ms", _TIME),
        ),
        {"mode": _mode, "readers": 20, "rounds": 3, "settle": 0.05},
        {"mode": _mode, "readers": _readers, "rounds": _rounds[0], "settle": 0.1},
        {"mode": _mode, "readers": _readers, "rounds": _rounds[1], "settle": 0.2},
    )
_scenario(
    "fan-out-sse-1000",
    "fan-out to 1,000 SSE readers (fresh server)",
    _fan_out,
    (
        _fig("p50_ms", "fan-out to 1,000 sse, p50", "ms", _TIME),
        _fig("max_ms", "fan-out to 1,000 sse, max", "ms", _TIME),
        _fig("rss_mb", "server RSS, 1,000 SSE readers", "MiB", _TIME),
    ),
    {"mode": "sse", "readers": 50, "rounds": 2, "settle": 0.05, "rss": True},
    {"mode": "sse", "readers": 1000, "rounds": 3, "settle": 0.2, "rss": True},
    {"mode": "sse", "readers": 1000, "rounds": 15, "settle": 0.3, "rss": True},
    fresh_server=True,
)
_scenario(
    "idle-10k",
    "server RSS idle with 10k streams (fresh server)",
    _idle_memory,
    (_fig("rss_mb", "server RSS, idle with 10k streams", "MiB", _TIME),),
    {"streams": 200, "settle": 0.2},
    {"streams": 10000, "settle": 1.0},
    {"streams": 10000, "settle": 2.0},
    fresh_server=True,
)
del _writers, _quick, _full, _mode, _readers, _rounds
