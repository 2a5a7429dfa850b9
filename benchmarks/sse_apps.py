"""The dual-mode suite's servers: one generator of events, served by millstream.dualmode and by
its peers, each as its own uvicorn process (uvloop + httptools, access log off, as for the
Durable Streams servers).

``python -m benchmarks.sse_apps NAME --port 0`` with NAME one of ``APPS``; every app answers
``GET /events?n=&size=&interval=&phase=&run=`` with ``n`` events of a ``size``-byte payload,
each ``{"i", "t", "p"}`` (``t``: wall-clock time at the yield, for delivery latency),
``interval`` seconds apart after a first wait of ``phase`` seconds. The durable apps keep one
generation per ``run`` (a fresh one per request).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI
from starlette.responses import Response, StreamingResponse

__all__ = ["APPS", "build", "main"]


async def generate(
    n: int, size: int, interval: float, phase: float = 0.0
) -> AsyncIterator[dict[str, Any]]:
    """The one generator every app serves (after ``phase`` seconds, so that many clients'
    events do not all fall due at the same instant)."""
    payload = "x" * size
    if phase:
        await asyncio.sleep(phase)
    for i in range(n):
        if interval:
            await asyncio.sleep(interval)
        elif i % 64 == 63:
            await asyncio.sleep(0)  # a generator that never awaits would starve the loop
        yield {"i": i, "t": time.time(), "p": payload}


def dualmode_app(durable: str, scratch: Path) -> FastAPI:
    from millstream.dualmode import dual_mode
    from millstream.log import MemoryStore, SqliteStore, Store

    app = FastAPI()
    if not durable:

        @app.get("/events")
        @dual_mode
        async def events(
            n: int = 1000, size: int = 100, interval: float = 0.0, phase: float = 0.0
        ) -> AsyncIterator[dict[str, Any]]:
            async for item in generate(n, size, interval, phase):
                yield item

        return app

    store: Store = MemoryStore() if durable == "memory" else SqliteStore(scratch / "data")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.start()
        yield
        await durable_events.dualmode.aclose()
        await store.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/events")
    @dual_mode(durable=True, store=store, key="run", ttl=600)
    async def durable_events(
        run: str, n: int = 1000, size: int = 100, interval: float = 0.0, phase: float = 0.0
    ) -> AsyncIterator[dict[str, Any]]:
        async for item in generate(n, size, interval, phase):
            yield item

    return app


def sse_starlette_app() -> FastAPI:
    from sse_starlette.sse import EventSourceResponse

    app = FastAPI()

    @app.get("/events")
    async def events(
        n: int = 1000, size: int = 100, interval: float = 0.0, phase: float = 0.0
    ) -> Response:
        async def source() -> AsyncIterator[dict[str, str]]:
            async for item in generate(n, size, interval, phase):
                yield {"data": orjson.dumps(item).decode()}

        return EventSourceResponse(source())

    return app


def streaming_response_app() -> FastAPI:
    app = FastAPI()

    @app.get("/events")
    async def events(
        n: int = 1000, size: int = 100, interval: float = 0.0, phase: float = 0.0
    ) -> Response:
        async def source() -> AsyncIterator[bytes]:
            async for item in generate(n, size, interval, phase):
                yield b"data: " + orjson.dumps(item) + b"\n\n"

        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(source(), media_type="text/event-stream", headers=headers)

    return app


APPS: dict[str, Callable[[Path], FastAPI]] = {
    "dualmode": lambda scratch: dualmode_app("", scratch),
    "dualmode-durable-memory": lambda scratch: dualmode_app("memory", scratch),
    "dualmode-durable-sqlite": lambda scratch: dualmode_app("sqlite", scratch),
    "sse-starlette": lambda scratch: sse_starlette_app(),
    "streaming-response": lambda scratch: streaming_response_app(),
}


def build(name: str, scratch: Path) -> FastAPI:
    return APPS[name](scratch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sse_apps", description=__doc__)
    parser.add_argument("app", choices=sorted(APPS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scratch", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    args.scratch.mkdir(parents=True, exist_ok=True)
    app = build(args.app, args.scratch)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="info",
        backlog=4096,
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
