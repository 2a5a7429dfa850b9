"""Example 2, mode detection: the same items as one JSON answer or as a stream, chosen by a
query parameter, by the ``Accept`` header, by negotiation of both, or by ``@dual_mode``.

    curl 'http://127.0.0.1:8000/items/simple?stream=true'
    curl -H 'Accept: text/event-stream' http://127.0.0.1:8000/items/header
    curl 'http://127.0.0.1:8000/items/negotiate?format=stream'
    curl 'http://127.0.0.1:8000/service/report?rows=3'
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from starlette.responses import Response

from millstream.dualmode import (
    DualModeResponse,
    ModeDetector,
    ResponseMode,
    detect_mode,
    dual_mode,
    negotiate_mode,
)

from ._serve import serve

app = FastAPI(title="Example 2: mode detection")
ITEMS = [{"id": i, "name": f"item-{i}", "price": round(9.99 * (i + 1), 2)} for i in range(5)]


async def items(delay: float = 0.0) -> AsyncIterator[dict[str, Any]]:
    for item in ITEMS:
        await asyncio.sleep(delay)
        yield item


@app.get("/items/simple")
async def items_simple(stream: bool = Query(default=False)) -> Response:
    """The mode from a query parameter only."""
    mode = ResponseMode.STREAM if stream else ResponseMode.BATCH
    return DualModeResponse(items(), mode)


@app.get("/items/header")
async def items_header(request: Request) -> Response:
    """The mode from ``Accept`` only (the seed's ``detect_mode``)."""
    return DualModeResponse(items(), detect_mode(request))


@app.get("/items/negotiate")
async def items_negotiate(mode: Annotated[ResponseMode, Depends(negotiate_mode)]) -> Response:
    """``?stream=``, then ``?format=``, then ``Accept``: the ``negotiate_mode`` dependency."""
    return DualModeResponse(items(), mode)


# A client that sends ``X-Stream: 1`` gets a stream too; everyone else a batch.
report_mode = ModeDetector(stream_headers={"accept": "text/event-stream", "x-stream": "1"})


def report_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rows": rows, "count": len(rows), "total": round(sum(r["value"] for r in rows), 2)}


@app.get("/service/report")
@dual_mode(detector=report_mode, batch=report_summary)
async def report(rows: int = Query(default=5, ge=1, le=1000)) -> AsyncIterator[dict[str, Any]]:
    """A service answering both ways: rows as they are computed, or one summary."""
    for row in range(rows):
        await asyncio.sleep(0)
        yield {"row": row, "value": row * 1.5}


if __name__ == "__main__":
    serve(app, description=__doc__)
