"""``DualModeResponse``: one async iterator answered as a JSON body or as Server-Sent Events.

Stream mode, default policy (``wait``): the generator runs in a task that sends each event
itself, so a slow client holds it (the server's ``send`` waits while the socket is full); a
second task sends a comment every ``heartbeat`` seconds while nothing comes and waits for
``http.disconnect``. Other policies put ``EventBuffer`` between a producer task and the
response, which sends everything buffered at once. A disconnect cancels the generator at once
and its ``except``/``finally`` blocks run before the response returns; an exception from the
generator becomes an ``event: error`` with ``{"error", "type"}`` and ends the stream.

Batch mode collects the items into a JSON array, or into whatever ``batch(items)`` builds
(``_batch``), and stops the generator too if the client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ._backpressure import EventBuffer, StreamStatistics
from ._batch import BatchBuilder, BatchCollector, answer_batch
from ._events import (
    SSE_HEADERS,
    close_generator,
    encode_event,
    error_data,
    error_frame,
    logger,
    produce,
    raw_headers,
    start_event_stream,
    watch_disconnect,
)
from ._modes import ResponseMode
from ._settings import StreamSettings
from ._sse import HEARTBEAT

__all__ = ["DualModeResponse"]


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
        answered = await answer_batch(
            scope,
            receive,
            send,
            collector.run(self.source),
            collector,
            self.batch,
            self.raw_headers,
            self.statistics,
        )
        self.disconnected = not answered

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
