"""What happens when a client reads slower than its generator produces.

- ``wait`` (default): the generator waits. It needs no buffer: the generator's task sends each
  event itself, and the server's ``send`` waits while the socket's buffers are full, so a
  client that never reads holds its generator paused (and its connection open) indefinitely.
  Nothing is lost and memory stays bounded.
- ``drop_oldest``: the generator never waits; the oldest events in a bounded buffer are
  dropped (``dropped`` counts them). For live feeds where only recent events matter.
- ``disconnect``: the generator waits for room in the buffer, and a client that has read
  nothing for ``timeout`` seconds is disconnected (``disconnects``) and its generator cancelled.

The buffer of the last two (and of durable mode's writer) is ``EventBuffer``: the generator's
task puts encoded events in, the response takes everything buffered at once and sends it as one
chunk. It holds ``max_events`` events and ``max_bytes`` bytes; an empty buffer always takes one
event, however large, so the bound is ``max_bytes`` plus one event.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Literal

__all__ = ["Backpressure", "BackpressurePolicy", "EventBuffer", "StreamStatistics"]

BackpressurePolicy = Literal["wait", "drop_oldest", "disconnect"]
_POLICIES = ("wait", "drop_oldest", "disconnect")


@dataclass(frozen=True, slots=True)
class Backpressure:
    """Limits of the buffer between one generator and its client, and the policy when full."""

    max_events: int = 1024
    max_bytes: int = 1024 * 1024
    policy: BackpressurePolicy = "wait"
    #: ``disconnect`` only: seconds a client may go without reading before it is dropped.
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.policy not in _POLICIES:
            raise ValueError(f"policy must be one of {', '.join(_POLICIES)}, not {self.policy!r}")
        if self.max_events < 1 or self.max_bytes < 1:
            raise ValueError("max_events and max_bytes must be at least 1")
        if not self.timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")


@dataclass(slots=True)
class StreamStatistics:
    """Counters of one endpoint's streams since it was created (``endpoint.statistics()``)."""

    active: int = 0  # streams being sent now
    streams: int = 0  # streams started
    events: int = 0  # events the generators produced into buffers
    sent: int = 0  # events handed to the server for sending
    logged: int = 0  # durable mode: events appended to the log
    dropped: int = 0  # events dropped by ``drop_oldest``
    waits: int = 0  # times a generator waited for room in a buffer
    disconnects: int = 0  # clients dropped by ``disconnect`` for not reading
    client_disconnects: int = 0  # clients that went away by themselves mid-stream
    errors: int = 0  # generators that raised
    max_buffered_events: int = 0  # high-water marks of any one buffer
    max_buffered_bytes: int = 0


class EventBuffer:
    """A bounded FIFO of encoded events: one producer task ``put``s, one consumer ``take``s."""

    __slots__ = ("_closed", "_items", "_limits", "_reader", "_size", "_stats", "_writer")

    def __init__(self, limits: Backpressure, stats: StreamStatistics) -> None:
        self._limits = limits
        self._stats = stats
        self._items: deque[bytes] = deque()
        self._size = 0
        self._closed = False
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def _full(self) -> bool:
        return len(self._items) >= self._limits.max_events or self._size >= self._limits.max_bytes

    async def put(self, item: bytes) -> None:
        """Add ``item``, first making room by the policy; raises ``RuntimeError`` once closed."""
        if self._closed:
            raise RuntimeError("the buffer is closed")
        if self._items and self._full():
            await self._make_room()
        self.force(item)

    def force(self, item: bytes) -> None:
        """Add ``item`` past the limits (the last event of a stream, e.g. its error)."""
        items = self._items
        items.append(item)
        self._size += len(item)
        stats = self._stats
        stats.events += 1
        if len(items) > stats.max_buffered_events:
            stats.max_buffered_events = len(items)
        if self._size > stats.max_buffered_bytes:
            stats.max_buffered_bytes = self._size
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    async def _make_room(self) -> None:
        if self._limits.policy == "drop_oldest":
            items = self._items
            while items and self._full():
                self._size -= len(items.popleft())
                self._stats.dropped += 1
            return
        self._stats.waits += 1
        loop = asyncio.get_running_loop()
        while self._items and self._full():
            if self._closed:
                raise RuntimeError("the buffer is closed")
            self._writer = loop.create_future()
            try:
                await self._writer
            finally:
                self._writer = None

    def take(self) -> list[bytes]:
        """Everything buffered, oldest first; wakes a producer waiting for room."""
        items = list(self._items)
        self._items.clear()
        self._size = 0
        writer = self._writer
        if writer is not None and not writer.done():
            writer.set_result(None)
        return items

    async def wait(self, timeout: float | None) -> bool:
        """Wait until an event is buffered or the buffer closes; False after ``timeout``."""
        if self._items or self._closed:
            return True
        self._reader = asyncio.get_running_loop().create_future()
        try:
            if timeout is None:
                await self._reader
            else:
                async with asyncio.timeout(timeout):
                    await self._reader
        except TimeoutError:
            return False
        finally:
            self._reader = None
        return True

    def close(self) -> None:
        """No more events; wake both sides (a producer waiting for room gets ``RuntimeError``)."""
        self._closed = True
        for waiter in (self._reader, self._writer):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
