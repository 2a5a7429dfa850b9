"""Example 4, backpressure and disconnects: a bounded queue between a producer and a slow
consumer, disconnect checks and cleanup, a limit on concurrent streams, per-item timeouts that
emit ``event: timeout``, and ``@dual_mode``'s buffer policies with their counters.

    curl -N 'http://127.0.0.1:8000/stream/bounded?items=20'
    curl -N 'http://127.0.0.1:8000/stream/timeouts?items=6&slow_every=3'
    curl -N 'http://127.0.0.1:8000/stream/feed/drop_oldest?events=100000' | head -c 300
    curl http://127.0.0.1:8000/stats
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Query, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from millstream.dualmode import (
    Backpressure,
    BackpressurePolicy,
    DualModeEndpoint,
    DualModeResponse,
    ResponseMode,
    SSEEvent,
    dual_mode,
)

from ._serve import serve

app = FastAPI(title="Example 4: backpressure")
MAX_CONCURRENT = 2
QUEUE_SIZE = 5
streams_limit = asyncio.Semaphore(MAX_CONCURRENT)
#: What ran: "cancelled" when a client left mid-stream, "cleaned_up" by every finally.
cleanups: Counter[str] = Counter()
queue_depth = {"max": 0}


async def bounded(
    request: Request, items: int, produce_delay: float, consume_delay: float
) -> AsyncIterator[dict[str, Any]]:
    """A producer task fills a queue of ``QUEUE_SIZE``; when the consumer is slower, the
    producer waits at ``put`` instead of piling items up in memory."""
    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=QUEUE_SIZE)

    async def produce() -> None:
        for n in range(items):
            await asyncio.sleep(produce_delay)
            await queue.put(n)
            queue_depth["max"] = max(queue_depth["max"], queue.qsize())
        await queue.put(None)

    producer = asyncio.create_task(produce())
    try:
        while (n := await queue.get()) is not None:
            if await request.is_disconnected():  # the seed's disconnect check
                break
            await asyncio.sleep(consume_delay)
            yield {"item": n, "queued": queue.qsize()}
    except asyncio.CancelledError:
        cleanups["cancelled"] += 1
        raise
    finally:
        producer.cancel()
        cleanups["cleaned_up"] += 1


@app.get("/stream/bounded")
async def stream_bounded(
    request: Request,
    items: int = Query(default=20, ge=1, le=10_000),
    produce_delay: float = Query(default=0.0, ge=0, le=1),
    consume_delay: float = Query(default=0.01, ge=0, le=1),
) -> Response:
    source = bounded(request, items, produce_delay, consume_delay)
    return DualModeResponse(source, ResponseMode.STREAM)


async def limited(count: int) -> AsyncIterator[dict[str, int]]:
    for n in range(count):
        await asyncio.sleep(0.05)
        yield {"n": n}


class LimitedResponse(DualModeResponse):
    """Gives the stream's slot back when the answer ends, however it ends."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            streams_limit.release()


@app.get("/stream/limited")
async def stream_limited(count: int = Query(default=10, ge=1, le=1000)) -> Response:
    """At most ``MAX_CONCURRENT`` of these streams at once; more get 429 at once."""
    if streams_limit.locked():
        return JSONResponse(
            {"error": {"code": "too_many_streams", "message": f"at most {MAX_CONCURRENT}"}},
            status_code=429,
            headers={"retry-after": "1"},
        )
    await streams_limit.acquire()
    return LimitedResponse(limited(count), ResponseMode.STREAM)


async def fetch(n: int, slow: bool) -> dict[str, int]:
    await asyncio.sleep(10 if slow else 0.01)
    return {"item": n}


@app.get("/stream/timeouts")
@dual_mode
async def stream_timeouts(
    items: int = Query(default=6, ge=1, le=1000),
    slow_every: int = Query(default=3, ge=1),
    timeout: float = Query(default=0.2, gt=0, le=10),
) -> AsyncIterator[Any]:
    """Each item gets ``timeout`` seconds; a late one becomes ``event: timeout`` and the
    stream goes on."""
    for n in range(items):
        try:
            yield await asyncio.wait_for(fetch(n, slow=(n + 1) % slow_every == 0), timeout)
        except TimeoutError:
            yield SSEEvent({"item": n, "timeout_s": timeout}, event="timeout")


def feed_endpoint(policy: BackpressurePolicy) -> DualModeEndpoint:
    limits = Backpressure(max_events=16, max_bytes=64 * 1024, policy=policy, timeout=2.0)

    @dual_mode(backpressure=limits, heartbeat=1.0)
    async def feed(
        events: int = Query(default=1000, ge=1, le=10_000_000),
        size: int = Query(default=100, ge=1, le=100_000),
    ) -> AsyncIterator[dict[str, Any]]:
        """A generator much faster than most clients: the buffer policy decides."""
        padding = "x" * size
        try:
            for n in range(events):
                yield {"n": n, "padding": padding}
                if n % 64 == 0:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            cleanups["cancelled"] += 1
            raise
        finally:
            cleanups["cleaned_up"] += 1

    feed.__name__ = f"feed_{policy}"
    return feed


feeds = {policy: feed_endpoint(policy) for policy in ("wait", "drop_oldest", "disconnect")}
for _policy, _endpoint in feeds.items():
    app.add_api_route(f"/stream/feed/{_policy}", _endpoint, methods=["GET"])


@app.get("/stats")
async def stats() -> dict[str, Any]:
    """Buffer counters per policy, cleanups, and the bounded queue's deepest point."""
    return {
        "feeds": {p: dataclasses.asdict(f.dualmode.statistics()) for p, f in feeds.items()},
        "cleanups": dict(cleanups),
        "max_queue_depth": queue_depth["max"],
        "queue_size": QUEUE_SIZE,
    }


if __name__ == "__main__":
    serve(app, description=__doc__)
