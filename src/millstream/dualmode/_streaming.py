"""The seed's streaming utilities, for endpoints written by hand rather than with ``@dual_mode``.

They work on async iterators of SSE text (what ``format_sse_event`` returns) or of plain items,
and compose: ``create_streaming_response(resilient_stream(transform_stream(source, fn)))``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from starlette.responses import StreamingResponse

from ._events import SSE_HEADERS, error_data
from ._sse import format_sse_event

__all__ = [
    "StreamBuffer",
    "batch_to_stream",
    "create_streaming_response",
    "resilient_stream",
    "transform_stream",
]

T = TypeVar("T")
U = TypeVar("U")


def create_streaming_response(
    generator: AsyncIterator[str] | AsyncIterator[bytes], headers: Mapping[str, str] | None = None
) -> StreamingResponse:
    """A ``text/event-stream`` response with ``Cache-Control: no-cache``, ``Connection:
    keep-alive`` and ``X-Accel-Buffering: no`` (``headers`` add to or override them)."""
    merged = {k: v for k, v in SSE_HEADERS.items() if k != "content-type"}
    merged.update(headers or {})
    return StreamingResponse(generator, media_type="text/event-stream", headers=merged)


async def transform_stream(
    source: AsyncIterator[T], fn: Callable[[T], U] | Callable[[T], Awaitable[U]]
) -> AsyncIterator[U]:
    """Each item of ``source`` through ``fn`` (sync or async), in order."""
    async for item in source:
        result = fn(item)
        if inspect.isawaitable(result):
            result = await result
        yield result


async def batch_to_stream(
    items: Iterable[Any], formatter: Callable[[Any], str] | None = None, delay: float = 0.0
) -> AsyncIterator[str]:
    """Replay a finished batch as SSE text (``format_sse_event`` unless ``formatter``), with
    ``delay`` seconds between items."""
    format_item = formatter or format_sse_event
    for index, item in enumerate(items):
        if delay and index:
            await asyncio.sleep(delay)
        yield format_item(item)


class StreamBuffer:
    """Collects a stream for batch mode: ``await buffer.collect(source)``, then ``items``."""

    def __init__(self, max_items: int | None = None) -> None:
        self.max_items = max_items
        self.items: list[Any] = []

    async def collect(self, source: AsyncIterator[Any]) -> list[Any]:
        """Append every item of ``source`` (``ValueError`` past ``max_items``); return them."""
        async for item in source:
            if self.max_items is not None and len(self.items) >= self.max_items:
                raise ValueError(f"the stream has more than {self.max_items} items")
            self.items.append(item)
        return self.items

    def __len__(self) -> int:
        return len(self.items)


async def resilient_stream(
    source: AsyncIterator[str],
    on_error: Callable[[Exception], Any] | None = None,
    on_complete: Callable[[], Any] | None = None,
) -> AsyncIterator[str]:
    """Pass SSE text through; an exception becomes ``event: error`` with ``{error, type}`` and
    ends the stream. ``on_error(exc)`` and ``on_complete()`` (sync or async) are told."""
    try:
        async for chunk in source:
            yield chunk
    except Exception as exc:
        yield format_sse_event(error_data(exc), event="error")
        if on_error is not None:
            await _maybe_await(on_error(exc))
    finally:
        if on_complete is not None:
            await _maybe_await(on_complete())


async def _maybe_await(result: Any) -> None:
    if inspect.isawaitable(result):
        await result
