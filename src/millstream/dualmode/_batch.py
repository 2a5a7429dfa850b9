"""Batch mode: the items collected within their caps, then one JSON answer (or what
``batch(items)`` builds); shared by ``DualModeResponse`` and durable mode's log reader."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ._backpressure import StreamStatistics
from ._errors import BatchTooLargeError, DualModeError
from ._events import close_generator, error_data, logger, run_until_disconnect
from ._settings import StreamSettings
from ._sse import SSEEvent, to_json

__all__ = [
    "BatchBuilder",
    "BatchCollector",
    "GeneratorFailed",
    "answer_batch",
    "build_batch",
    "json_response",
]

#: ``batch(items)`` builds the JSON answer (or a ``Response``) from the items; may be async.
BatchBuilder = Callable[[list[Any]], Any]


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
    collect: Coroutine[Any, Any, None],
    collector: BatchCollector,
    builder: BatchBuilder | None,
    headers: list[tuple[bytes, bytes]],
    statistics: StreamStatistics,
) -> bool:
    """Run ``collect`` (which fills ``collector``) unless the client leaves first, then send
    the batch answer. False when the client left (nothing is sent)."""
    work = await run_until_disconnect(receive, collect)
    if work is None:
        statistics.client_disconnects += 1
        return False
    try:
        work.result()
    except DualModeError as exc:
        await json_response(send, exc.status, to_json(exc.as_json()))
        return True
    except Exception as exc:
        if isinstance(exc, GeneratorFailed):
            data = exc.data
        else:
            statistics.errors += 1
            logger.error("dual-mode generator failed", exc_info=exc)
            data = error_data(exc)
        await json_response(send, 500, to_json({"error": {"code": "generator_failed", **data}}))
        return True
    if builder is None:
        await json_response(send, 200, collector.body(), headers)
        return True
    built = await build_batch(builder, collector.items)
    if isinstance(built, Response):
        built.raw_headers.extend(headers)
        await built(scope, receive, send)
    else:
        await json_response(send, 200, built, headers)
    return True


async def build_batch(builder: BatchBuilder, items: list[Any]) -> Response | bytes:
    """Run ``builder`` (sync or async): a ``Response`` as it is, anything else as JSON."""
    result = builder(items)
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, Response):
        return result
    return to_json(result)
