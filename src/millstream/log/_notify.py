"""In-process wake-ups for live readers: waiters park on a future per stream, never poll.

One future per stream path is shared by every waiter on it, so an append to a stream with 1,000
SSE readers resolves one future. Call everything from the event loop thread; stores that commit
on another thread hop back with ``loop.call_soon_threadsafe(notifier.notify, path)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Notifier", "wait_for_change"]


class Notifier:
    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[None]] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._closing = False

    def add_listener(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(path)`` after every create, append, close or delete of any stream
        (subscriptions use this to discover and wake)."""
        self._listeners.append(callback)

    @property
    def closing(self) -> bool:
        """True once the server is shutting down: live readers should finish their response."""
        return self._closing

    def subscribe(self, path: str) -> asyncio.Future[None]:
        """Return the future that resolves at the next change of ``path``.

        Subscribe *before* checking the stream's state, then await: no change can slip between.
        """
        future = self._futures.get(path)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            if self._closing:
                future.set_result(None)
            else:
                self._futures[path] = future
        return future

    def notify(self, path: str) -> None:
        """Wake every waiter on ``path`` (after an append, close or delete is durable)."""
        future = self._futures.pop(path, None)
        if future is not None and not future.done():
            future.set_result(None)
        for callback in self._listeners:
            callback(path)

    def close(self) -> None:
        """Wake every waiter for shutdown; later subscriptions resolve at once."""
        self._closing = True
        for future in self._futures.values():
            if not future.done():
                future.set_result(None)
        self._futures.clear()

    def waiter_count(self) -> int:
        return len(self._futures)


async def wait_for_change(future: asyncio.Future[None], timeout: float) -> bool:
    """Await ``future`` for at most ``timeout`` seconds; True if it resolved. Never cancels it,
    because other waiters share it."""
    try:
        await asyncio.wait_for(asyncio.shield(future), timeout)
    except TimeoutError:
        return False
    return True
