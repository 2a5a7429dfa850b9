"""Example 1, basic SSE: numbers and their squares, events with an id and a type, and a
countdown that ends in ``event: complete``.

``/numbers`` is written by hand with the seed's helpers; ``/events`` and ``/countdown`` with
``@dual_mode``, so they also answer JSON to a client that does not ask for a stream::

    curl -N 'http://127.0.0.1:8000/numbers?count=3'
    curl -N -H 'Accept: text/event-stream' 'http://127.0.0.1:8000/countdown?start=3'
    curl 'http://127.0.0.1:8000/countdown?start=3'
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import FastAPI, Query
from starlette.responses import StreamingResponse

from millstream.dualmode import SSEEvent, create_streaming_response, dual_mode, format_sse_event

from ._serve import serve

app = FastAPI(title="Example 1: basic SSE streaming")


async def numbers_and_squares(count: int, delay: float) -> AsyncIterator[str]:
    for n in range(1, count + 1):
        yield format_sse_event({"number": n, "square": n * n})
        await asyncio.sleep(delay)


@app.get("/numbers")
async def numbers(
    count: int = Query(default=10, ge=1, le=1000), delay: float = Query(default=0.1, ge=0, le=5)
) -> StreamingResponse:
    """Always a stream: one ``data:`` event per number."""
    return create_streaming_response(numbers_and_squares(count, delay))


@app.get("/events")
@dual_mode
async def events(
    count: int = Query(default=5, ge=1, le=1000), delay: float = Query(default=0.1, ge=0, le=5)
) -> AsyncIterator[SSEEvent]:
    """Typed events with ids: a browser's ``EventSource`` sends the last id back on reconnect."""
    for i in range(count):
        kind = "tick" if i % 2 == 0 else "tock"
        yield SSEEvent({"index": i, "message": f"event {i}"}, event=kind, id=str(i))
        await asyncio.sleep(delay)


@app.get("/countdown")
@dual_mode
async def countdown(
    start: int = Query(default=5, ge=0, le=100), delay: float = Query(default=0.1, ge=0, le=5)
) -> AsyncIterator[SSEEvent]:
    """``start``, ``start - 1``, ... ``1``, then ``event: complete``."""
    for remaining in range(start, 0, -1):
        yield SSEEvent({"remaining": remaining}, event="countdown")
        await asyncio.sleep(delay)
    yield SSEEvent({"message": "liftoff"}, event="complete")


if __name__ == "__main__":
    serve(app, description=__doc__)
