"""``DualModeResponse``: one async iterator answered as a JSON body or as Server-Sent Events.

Stream mode runs the generator in a task of its own that fills an ``EventBuffer``; the response
sends whatever is buffered as one chunk, a comment every ``heartbeat`` seconds while nothing
comes, and a third task waits for ``http.disconnect``. A disconnect cancels the generator at
once: ``CancelledError`` is raised where it awaits (or thrown in at its ``yield``), so its
``except``/``finally`` blocks run before the response returns. An exception from the generator
becomes an ``event: error`` with ``{"error", "type"}`` and ends the stream.

Batch mode collects the items (``SSEEvent`` items give their ``data``) into a JSON array, or
into whatever ``batch(items)`` builds, up to ``max_batch_items``/``max_batch_bytes`` (past them:
406 with a hint to ask for the stream); it too stops the generator if the client goes away.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ._backpressure import Backpressure, EventBuffer, StreamStatistics
from ._errors import BatchTooLargeError, DualModeError
from ._modes import ResponseMode
from ._sse import HEARTBEAT, SSEEvent, data_text, encode_frame, to_json

__all__ = [
    "SSE_HEADERS",
    "BatchBuilder",
    "BatchCollector",
    "DualModeResponse",
    "GeneratorFailed",
    "StreamSettings",
    "answer_batch",
    "close_generator",
    "encode_event",
    "error_data",
    "error_frame",
    "json_response",
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

#: ``batch(items)`` builds the JSON answer (or a ``Response``) from the items; may be async.
BatchBuilder = Callable[[list[Any]], Any]


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """How a dual-mode answer is sent."""

    #: Seconds without an event after which a comment line is sent (None: never).
    heartbeat: float | None = 15.0
    #: Reconnection delay (ms) sent to clients as ``retry:`` (None: the client's default).
    retry: int | None = None
    backpressure: Backpressure = field(default_factory=Backpressure)
    max_batch_items: int = 10_000
    max_batch_bytes: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.heartbeat is not None and not self.heartbeat > 0:
            raise ValueError("heartbeat must be a positive number of seconds, or None")
        if self.retry is not None and (isinstance(self.retry, bool) or self.retry < 0):
            raise ValueError("retry must be a non-negative int of milliseconds")
        if self.max_batch_items < 1 or self.max_batch_bytes < 1:
            raise ValueError("max_batch_items and max_batch_bytes must be at least 1")


def encode_event(item: Any) -> bytes:
    """One yielded item as SSE bytes: an ``SSEEvent`` as it says, anything else as data."""
    if isinstance(item, SSEEvent):
        return item.format().encode()
    return encode_frame(data_text(item)).encode()


def error_data(exc: BaseException) -> dict[str, str]:
    """What an ``event: error`` carries (the seed's shape)."""
    return {"error": str(exc), "type": type(exc).__name__}


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


def raw_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def json_response(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A complete JSON answer."""
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


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


async def start_event_stream(
    send: Send, headers: list[tuple[bytes, bytes]], retry: int | None
) -> None:
    """The SSE answer's head (``SSE_HEADERS`` and ``headers``), and ``retry:`` when set."""
    raw = [*_SSE_RAW, *headers]
    await send({"type": "http.response.start", "status": 200, "headers": raw})
    if retry is not None:
        body = f"retry: {retry}\n\n".encode()
        await send({"type": "http.response.body", "body": body, "more_body": True})


def error_frame(data: dict[str, Any]) -> bytes:
    """The ``event: error`` that ends a stream whose generator raised."""
    return encode_frame(to_json(data).decode(), "error").encode()


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


class GeneratorFailed(Exception):
    """A generator raised; ``data`` is its ``error_data`` (kept in the log in durable mode)."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data.get("error", ""))
        self.data = data


class BatchCollector:
    """Batch mode: the items (data values) and their JSON, within the caps."""

    def __init__(self, settings: StreamSettings) -> None:
        self.settings = settings
        self.items: list[Any] = []
        self.parts: list[bytes] = []
        self.size = 2

    def add(self, value: Any) -> None:
        part = to_json(value)
        self.size += len(part) + 1
        if len(self.items) >= self.settings.max_batch_items:
            raise BatchTooLargeError(f"the answer has more than {len(self.items)} items")
        if self.size > self.settings.max_batch_bytes:
            raise BatchTooLargeError(
                f"the answer is larger than {self.settings.max_batch_bytes} bytes"
            )
        self.items.append(value)
        self.parts.append(part)

    def body(self) -> bytes:
        return b"[" + b",".join(self.parts) + b"]"

    async def run(self, source: AsyncIterator[Any]) -> None:
        cancelled = False
        try:
            async for item in source:
                self.add(item.data if isinstance(item, SSEEvent) else item)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            await close_generator(source, cancelled)


async def answer_batch(
    scope: Scope,
    receive: Receive,
    send: Send,
    work: asyncio.Task[None],
    collector: BatchCollector,
    builder: BatchBuilder | None,
    headers: list[tuple[bytes, bytes]],
    statistics: StreamStatistics,
) -> None:
    """Send the batch answer once ``work`` (which filled ``collector``) has finished."""
    try:
        work.result()
    except DualModeError as exc:
        await json_response(send, exc.status, to_json(exc.as_json()))
        return
    except Exception as exc:
        if isinstance(exc, GeneratorFailed):
            data = exc.data
        else:
            statistics.errors += 1
            logger.error("dual-mode generator failed", exc_info=exc)
            data = error_data(exc)
        await json_response(send, 500, to_json({"error": {"code": "generator_failed", **data}}))
        return
    if builder is None:
        await json_response(send, 200, collector.body(), headers)
        return
    built = await build_batch(builder, collector.items)
    if isinstance(built, Response):
        built.raw_headers.extend(headers)
        await built(scope, receive, send)
    else:
        await json_response(send, 200, built, headers)


async def build_batch(builder: BatchBuilder, items: list[Any]) -> Response | bytes:
    """Run ``builder`` (sync or async): a ``Response`` as it is, anything else as JSON."""
    result = builder(items)
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, Response):
        return result
    return to_json(result)


class DualModeResponse(Response):
    """Answer ``source`` (an async iterator, usually an async generator) in ``mode``.

    >>> @app.get("/numbers")
    ... async def numbers(request: Request):
    ...     return DualModeResponse(count_to(10), detect_mode(request))
    """

    def __init__(
        self,
        source: AsyncIterator[Any],
        mode: ResponseMode | str = ResponseMode.STREAM,
        *,
        batch: BatchBuilder | None = None,
        settings: StreamSettings | None = None,
        headers: Mapping[str, str] | None = None,
        statistics: StreamStatistics | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.source = source
        self.mode = ResponseMode(mode)
        self.batch = batch
        self.settings = settings or StreamSettings()
        self.statistics = statistics if statistics is not None else StreamStatistics()
        self.status_code = 200
        self.background = background
        self.media_type = (
            SSE_HEADERS["content-type"] if self.mode is ResponseMode.STREAM else "application/json"
        )
        # FastAPI adds the headers of a ``response: Response`` parameter to these.
        self.raw_headers = raw_headers(headers or {})
        self.disconnected = False
        self._last_send = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.mode is ResponseMode.STREAM:
            await self._stream(receive, send)
        else:
            await self._batch(scope, receive, send)
        if self.background is not None and not self.disconnected:
            await self.background()

    # -- batch --------------------------------------------------------------------------------

    async def _batch(self, scope: Scope, receive: Receive, send: Send) -> None:
        collector = BatchCollector(self.settings)
        work = await run_until_disconnect(receive, collector.run(self.source))
        if work is None:
            self.disconnected = True
            self.statistics.client_disconnects += 1
            return
        await answer_batch(
            scope, receive, send, work, collector, self.batch, self.raw_headers, self.statistics
        )

    # -- stream -------------------------------------------------------------------------------

    async def _stream(self, receive: Receive, send: Send) -> None:
        stats = self.statistics
        stats.streams += 1
        stats.active += 1
        try:
            await start_event_stream(send, self.raw_headers, self.settings.retry)
            if self.settings.backpressure.policy == "wait":
                complete = await self._stream_direct(receive, send)
            else:
                complete = await self._stream_buffered(receive, send)
            if complete:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            stats.active -= 1

    # The default policy, ``wait``, needs no buffer: the generator runs in one task that sends
    # each event itself, so the client's pace (uvicorn waits for a paused transport in
    # ``send``) holds the generator, and an event costs one task step and one ``send``.

    async def _stream_direct(self, receive: Receive, send: Send) -> bool:
        """The generator sends its own events; a second task sends heartbeats and waits for
        the disconnect. True when the stream ended by itself."""
        loop = asyncio.get_running_loop()
        self._last_send = loop.time()
        pump = asyncio.create_task(self._pump_direct(send))
        control = asyncio.create_task(self._control(receive, send, pump))
        try:
            await asyncio.wait((pump,))
        finally:
            control.cancel()  # it may be waiting to send a heartbeat: never after the end
            if not pump.done():
                pump.cancel()
            await asyncio.gather(pump, control, return_exceptions=True)
        return not self.disconnected

    async def _pump_direct(self, send: Send) -> None:
        source, stats = self.source, self.statistics
        loop = asyncio.get_running_loop()
        cancelled = False
        try:
            async for item in source:
                frame = encode_event(item)
                stats.events += 1
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                self._last_send = loop.time()
                stats.sent += 1
        except asyncio.CancelledError:
            cancelled = True
            raise
        except Exception as exc:
            stats.errors += 1
            logger.error("dual-mode generator failed mid-stream", exc_info=exc)
            frame = error_frame(error_data(exc))
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        finally:
            await close_generator(source, cancelled)

    async def _control(self, receive: Receive, send: Send, pump: asyncio.Task[None]) -> None:
        """Heartbeats while the generator is quiet; on disconnect, cancel it."""
        heartbeat = self.settings.heartbeat
        loop = asyncio.get_running_loop()
        while True:
            if heartbeat is None:
                message = await receive()
            else:
                wait = self._last_send + heartbeat - loop.time()
                try:
                    async with asyncio.timeout(max(wait, 0.0)):
                        message = await receive()
                except TimeoutError:
                    if loop.time() - self._last_send >= heartbeat:
                        body = {"type": "http.response.body", "body": HEARTBEAT, "more_body": True}
                        await send(body)
                        self._last_send = loop.time()
                    continue
            if message["type"] == "http.disconnect":
                break
        self.disconnected = True
        if not pump.done():
            self.statistics.client_disconnects += 1
            pump.cancel()

    # The other policies put a bounded buffer between a producer task and this task, which
    # sends everything buffered at once and applies the policy when the client falls behind.

    async def _stream_buffered(self, receive: Receive, send: Send) -> bool:
        buffer = EventBuffer(self.settings.backpressure, self.statistics)
        producer = asyncio.create_task(self._produce(buffer))
        watcher = asyncio.create_task(self._watch(receive, producer, buffer))
        try:
            return await self._pump(buffer, send)
        finally:
            watcher.cancel()
            if not producer.done():
                producer.cancel()
            await asyncio.gather(producer, watcher, return_exceptions=True)

    async def _watch(
        self, receive: Receive, producer: asyncio.Task[None], buffer: EventBuffer
    ) -> None:
        await watch_disconnect(receive)
        self.disconnected = True
        if not producer.done():
            self.statistics.client_disconnects += 1
            producer.cancel()
        buffer.close()

    async def _produce(self, buffer: EventBuffer) -> None:
        await produce(self.source, buffer, encode_event, self.statistics)

    async def _pump(self, buffer: EventBuffer, send: Send) -> bool:
        """Send until the buffer is drained and closed; False if the client is gone or was
        dropped for not reading."""
        heartbeat = self.settings.heartbeat
        limits = self.settings.backpressure
        timeout = limits.timeout if limits.policy == "disconnect" else None
        stats = self.statistics
        while not self.disconnected:
            count = 0
            if await buffer.wait(heartbeat):
                items = buffer.take()
                if not items:
                    return True
                count = len(items)
                chunk = items[0] if count == 1 else b"".join(items)
            else:
                chunk = HEARTBEAT
            message: Message = {"type": "http.response.body", "body": chunk, "more_body": True}
            if timeout is None:
                await send(message)
            else:
                try:
                    async with asyncio.timeout(timeout):
                        await send(message)
                except TimeoutError:
                    # The client read nothing for ``timeout`` s: leave the response unfinished,
                    # so the server closes the connection, and stop the generator.
                    stats.disconnects += 1
                    self.disconnected = True
                    return False
            stats.sent += count
        return False
