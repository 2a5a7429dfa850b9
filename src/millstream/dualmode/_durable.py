"""Durable mode: the generator runs once per idempotency key, into a log, and every request
reads the log.

``Generations`` owns the generators of one endpoint. The first request for a key claims the
generation's stream (``GenerationLog.claim``) and starts the generator in a task of its own,
tied to no connection; that task moves events from a bounded buffer into the log, all that is
buffered in one append. Every response, the first included, is a reader: it streams the log
from the start, or from after ``Last-Event-ID`` on a reconnect (answering 204 when nothing will
follow, which tells a browser's ``EventSource`` to stop reconnecting), or waits for the stream
to close and answers the whole of it as JSON. A client that goes away stops only its reader; the
generation runs to the end. The log is the buffer here, so a slow reader costs one read chunk
of memory and never slows the generator.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ._backpressure import EventBuffer, StreamStatistics
from ._batch import BatchBuilder, BatchCollector, GeneratorFailed, answer_batch, json_response
from ._errors import (
    DualModeError,
    GenerationConflictError,
    GenerationLogError,
    GenerationNotFoundError,
)
from ._events import (
    error_data,
    error_frame,
    logger,
    produce,
    raw_headers,
    run_until_disconnect,
    start_event_stream,
)
from ._log import GenerationLog, GenerationWriter, event_tail
from ._modes import ResponseMode
from ._settings import StreamSettings
from ._sse import HEARTBEAT, SSEEvent, data_text, encode_frame, to_json

__all__ = ["DurableResponse", "Generations", "record_frame", "record_tail"]


def record_tail(item: Any) -> bytes:
    """A yielded item as a log record without its offset (``SSEEvent`` ids are not kept: the
    offset is the id)."""
    if isinstance(item, SSEEvent):
        return event_tail(item.event, to_json(item.data))
    return event_tail(None, to_json(item))


def _failure_tail(data: dict[str, Any]) -> bytes:
    return event_tail("error", to_json(data), failed=True)


def record_frame(record: dict[str, Any]) -> bytes:
    """A log record as one SSE event whose id is the record's offset."""
    offset, event = record["offset"], record.get("event")
    for value in (offset, event):
        if value is not None and (
            not isinstance(value, str) or "\n" in value or "\r" in value or "\0" in value
        ):
            raise GenerationLogError(f"the log holds a record SSE cannot carry: {value!r}")
    return encode_frame(data_text(record.get("data")), event, offset).encode()


class Generations:
    """The durable generations of one endpoint: which run in this process, and their log."""

    def __init__(
        self, log: GenerationLog, settings: StreamSettings, statistics: StreamStatistics
    ) -> None:
        self.log = log
        # The log is the buffer, so the generator only ever waits for the log, never drops.
        self.settings = replace(
            settings, backpressure=replace(settings.backpressure, policy="wait")
        )
        self.statistics = statistics
        self._running: dict[str, tuple[str, asyncio.Task[None]]] = {}

    @property
    def running(self) -> list[str]:
        """Keys of the generations running in this process."""
        return list(self._running)

    async def join(
        self, key: str, fingerprint: str, start: Callable[[], AsyncIterator[Any]]
    ) -> None:
        """Start the generation ``key`` unless it exists; refuse it with other arguments."""
        running = self._running.get(key)
        if running is not None:
            _same(key, running[0], fingerprint)
            return
        writer = await self.log.claim(key, fingerprint)
        if writer is None:
            existing = await self.fingerprint(key)
            if existing is not None:
                _same(key, existing, fingerprint)
            return
        task = asyncio.create_task(self._run(writer, start()), name=f"dualmode generation {key}")
        self._running[key] = (fingerprint, task)
        task.add_done_callback(lambda done: self._forget(key, done))

    async def fingerprint(self, key: str) -> str | None:
        running = self._running.get(key)
        if running is not None:
            return running[0]
        return await self.log.fingerprint(key)

    def _forget(self, key: str, task: asyncio.Task[None]) -> None:
        running = self._running.get(key)
        if running is not None and running[1] is task:
            del self._running[key]

    async def _run(self, writer: GenerationWriter, source: AsyncIterator[Any]) -> None:
        buffer = EventBuffer(self.settings.backpressure, self.statistics)
        producer = asyncio.create_task(
            produce(source, buffer, record_tail, self.statistics, _failure_tail)
        )
        final: bytes | None = None
        try:
            while await buffer.wait(None):
                tails = buffer.take()
                if not tails:
                    break
                await writer.append(tails)
                self.statistics.logged += len(tails)
        except asyncio.CancelledError:
            final = _failure_tail({"error": "the generation was cancelled", "type": "Cancelled"})
            raise
        except GenerationLogError as exc:
            logger.error("durable generation lost its log", exc_info=exc)
            final = _failure_tail(error_data(exc))
        finally:
            if not producer.done():
                producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            try:
                await writer.finish(final)
            except Exception as exc:
                logger.error("could not close a durable generation's log", exc_info=exc)

    async def aclose(self) -> None:
        """Cancel the generations running here; each ends its log with a failed event."""
        tasks = [task for _, task in self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.log.aclose()


def _same(key: str, existing: str, fingerprint: str) -> None:
    if existing != fingerprint:
        raise GenerationConflictError(f"idempotency key {key!r} was used with other arguments")


class DurableResponse(Response):
    """The answer to one request of a durable endpoint (see the module docstring)."""

    def __init__(
        self,
        generations: Generations,
        key: str,
        fingerprint: str,
        start: Callable[[], AsyncIterator[Any]],
        mode: ResponseMode,
        *,
        last_event_id: str | None = None,
        batch: BatchBuilder | None = None,
        settings: StreamSettings | None = None,
        statistics: StreamStatistics | None = None,
    ) -> None:
        self.generations = generations
        self.key = key
        self.fingerprint = fingerprint
        self.start = start
        self.mode = mode
        self.last_event_id = last_event_id
        self.batch = batch
        self.settings = settings or StreamSettings()
        self.statistics = statistics if statistics is not None else StreamStatistics()
        self.status_code = 200
        self.background = None
        self.raw_headers = raw_headers({"idempotency-key": key})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        log = self.generations.log
        try:
            if self.last_event_id is None:
                await self.generations.join(self.key, self.fingerprint, self.start)
            else:
                log.check_offset(self.last_event_id)
                existing = await self.generations.fingerprint(self.key)
                if existing is None:
                    raise GenerationNotFoundError(f"no generation {self.key!r}")
                _same(self.key, existing, self.fingerprint)
        except DualModeError as exc:
            await json_response(send, exc.status, to_json(exc.as_json()))
            return
        if self.mode is ResponseMode.STREAM:
            await self._stream(receive, send)
        else:
            await self._batch(scope, receive, send)
        if self.background is not None:
            await self.background()

    async def _batch(self, scope: Scope, receive: Receive, send: Send) -> None:
        collector = BatchCollector(self.settings)

        async def collect() -> None:
            async for records in self.generations.log.read(self.key, None, None):
                for record in records:
                    if record.get("failed"):
                        raise GeneratorFailed(record.get("data") or {})
                    collector.add(record.get("data"))

        await answer_batch(
            scope,
            receive,
            send,
            collect(),
            collector,
            self.batch,
            self.raw_headers,
            self.statistics,
        )

    async def _stream(self, receive: Receive, send: Send) -> None:
        stats = self.statistics
        reader = self.generations.log.read(self.key, self.last_event_id, self.settings.heartbeat)
        try:
            first: list[dict[str, Any]] | None = None
            if self.last_event_id is not None:
                # A reconnect that will get nothing more: 204 stops EventSource reconnecting.
                try:
                    first = await anext(reader, None)
                except DualModeError as exc:
                    await json_response(send, exc.status, to_json(exc.as_json()))
                    return
                if first is None:
                    await send({"type": "http.response.start", "status": 204, "headers": []})
                    await send({"type": "http.response.body", "body": b""})
                    return
            stats.streams += 1
            stats.active += 1
            try:
                await start_event_stream(send, self.raw_headers, self.settings.retry)
                work = await run_until_disconnect(receive, self._pump(reader, first, send))
                if work is None:
                    stats.client_disconnects += 1
                    return
                work.result()
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                stats.active -= 1
        finally:
            await reader.aclose()

    async def _pump(
        self,
        reader: AsyncIterator[list[dict[str, Any]]],
        first: list[dict[str, Any]] | None,
        send: Send,
    ) -> None:
        stats = self.statistics
        try:
            if first:
                await self._send_records(first, send)
            async for records in reader:
                if records:
                    await self._send_records(records, send)
                else:
                    await send({"type": "http.response.body", "body": HEARTBEAT, "more_body": True})
        except DualModeError as exc:
            stats.errors += 1
            frame = error_frame({"error": exc.message, "type": type(exc).__name__})
            await send({"type": "http.response.body", "body": frame, "more_body": True})

    async def _send_records(self, records: list[dict[str, Any]], send: Send) -> None:
        chunk = b"".join([record_frame(r) for r in records])
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        self.statistics.sent += len(records)
