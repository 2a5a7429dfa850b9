"""The parts every streamed answer shares: items as SSE bytes, the answer's head, and the
lifecycle of the generator and the connection (disconnect watch, cancellation, error event).

Cancelling a generator throws ``CancelledError`` in even when it waits at a ``yield`` (where a
task cancellation cannot reach it), so ``except asyncio.CancelledError`` cleanup, as the seed
teaches, runs as surely as ``finally``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from starlette.types import Receive, Send

from ._backpressure import EventBuffer, StreamStatistics
from ._sse import SSEEvent, data_text, encode_frame, to_json

__all__ = [
    "SSE_HEADERS",
    "close_generator",
    "encode_event",
    "error_data",
    "error_frame",
    "produce",
    "raw_headers",
    "run_until_disconnect",
    "start_event_stream",
    "watch_disconnect",
]

T = TypeVar("T")

logger = logging.getLogger("millstream.dualmode")

#: Headers of every SSE answer: no caching, and no buffering by nginx-style proxies.
SSE_HEADERS: Mapping[str, str] = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "connection": "keep-alive",
    "x-accel-buffering": "no",
}

_SSE_RAW = [(k.encode(), v.encode()) for k, v in SSE_HEADERS.items()]


def encode_event(item: Any) -> bytes:
    """One yielded item as SSE bytes: an ``SSEEvent`` as it says, anything else as data."""
    if isinstance(item, SSEEvent):
        return item.format().encode()
    if isinstance(item, str | bytes | bytearray):
        return encode_frame(data_text(item)).encode()
    return b"data: " + to_json(item) + b"\n\n"  # JSON text never holds a raw CR or LF


def error_data(exc: BaseException) -> dict[str, str]:
    """What an ``event: error`` carries (the seed's shape)."""
    return {"error": str(exc), "type": type(exc).__name__}


def error_frame(data: dict[str, Any]) -> bytes:
    """The ``event: error`` that ends a stream whose generator raised."""
    return encode_frame(to_json(data).decode(), "error").encode()


def raw_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def start_event_stream(
    send: Send, headers: list[tuple[bytes, bytes]], retry: int | None
) -> None:
    """The SSE answer's head (``SSE_HEADERS`` and ``headers``), and ``retry:`` when set."""
    raw = [*_SSE_RAW, *headers]
    await send({"type": "http.response.start", "status": 200, "headers": raw})
    if retry is not None:
        body = f"retry: {retry}\n\n".encode()
        await send({"type": "http.response.body", "body": body, "more_body": True})


async def close_generator(source: AsyncIterator[Any], cancelled: bool) -> None:
    """Finish ``source``: throw ``CancelledError`` in when cancelled (so ``except
    CancelledError`` cleanup runs even at a ``yield``), then ``aclose`` it."""
    athrow = getattr(source, "athrow", None)
    if cancelled and athrow is not None:
        try:
            await athrow(asyncio.CancelledError())
        except (asyncio.CancelledError, StopAsyncIteration):
            return
        except Exception:
            logger.exception("async generator raised while being cancelled")
            return
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            logger.exception("async generator raised while being closed")


async def watch_disconnect(receive: Receive) -> None:
    """Return when the client disconnects (request body messages are skipped)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def run_until_disconnect(
    receive: Receive, work: Coroutine[Any, Any, T]
) -> asyncio.Task[T] | None:
    """Run ``work`` while watching for a disconnect; if the client goes first, cancel it and
    return None, else return the finished task (holding its result or exception)."""
    task = asyncio.create_task(work)
    watcher = asyncio.create_task(watch_disconnect(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone = not task.done()
        if gone:
            task.cancel()
        watcher.cancel()
        await asyncio.gather(task, watcher, return_exceptions=True)
    return None if gone else task


async def produce(
    source: AsyncIterator[Any],
    buffer: EventBuffer,
    encode: Callable[[Any], bytes],
    statistics: StreamStatistics,
    error: Callable[[dict[str, Any]], bytes] = error_frame,
) -> None:
    """Run ``source`` into ``buffer`` (each item through ``encode``); an exception becomes
    ``error(error_data(exc))`` as the last item. Closes the buffer and the generator."""
    cancelled = False
    try:
        async for item in source:
            await buffer.put(encode(item))
    except asyncio.CancelledError:
        cancelled = True
        raise
    except Exception as exc:
        if not buffer.closed:
            statistics.errors += 1
            logger.error("dual-mode generator failed", exc_info=exc)
            buffer.force(error(error_data(exc)))
    finally:
        buffer.close()
        await close_generator(source, cancelled)
