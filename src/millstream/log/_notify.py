"""In-process wake-ups for live readers: waiters park on a future of their own, never poll.

Each waiter registers one future under its stream path; a change of that path resolves all of
them in one pass (``True``), and each waiter's own timer resolves only its future (``False``).
No future is shared, so a timeout or a cancelled reader never touches another reader's wait,
and waking 1,000 SSE readers costs 1,000 ``set_result`` calls: no ``shield``/``wait_for``
layers, each of which would add a callback hop per reader. Call everything from the event loop
thread; stores that commit on another thread hop back with
``loop.call_soon_threadsafe(notifier.notify, path)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Notifier", "wait_for_change"]


class Notifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future[bool]]] = {}
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

    def subscribe(self, path: str) -> asyncio.Future[bool]:
        """A future of the caller's own that resolves ``True`` at the next change of ``path``.

        Subscribe *before* checking the stream's state, then ``wait_for_change``: no change can
        slip between. Always ``unsubscribe`` afterwards (a no-op once the future was woken).
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._closing:
            future.set_result(True)
            return future
        waiters = self._waiters.get(path)
        if waiters is None:
            self._waiters[path] = {future}
        else:
            waiters.add(future)
        return future

    def unsubscribe(self, path: str, future: asyncio.Future[bool]) -> None:
        """Forget ``future`` (timed out, cancelled, or no longer needed); O(1)."""
        waiters = self._waiters.get(path)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                del self._waiters[path]

    def notify(self, path: str) -> None:
        """Wake every waiter on ``path`` (after an append, close or delete is durable)."""
        waiters = self._waiters.pop(path, None)
        if waiters is not None:
            for future in waiters:
                if not future.done():
                    future.set_result(True)
        for callback in self._listeners:
            callback(path)

    def close(self) -> None:
        """Wake every waiter for shutdown; later subscriptions resolve at once."""
        self._closing = True
        for waiters in self._waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_result(True)
        self._waiters.clear()

    def waiting_paths(self) -> list[str]:
        """Paths at least one reader waits on right now (stores re-check them when they may
        have missed a change made elsewhere)."""
        return list(self._waiters)

    def waiter_count(self) -> int:
        """Readers parked right now, over all paths."""
        return sum(len(waiters) for waiters in self._waiters.values())


def _expire(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)


async def wait_for_change(future: asyncio.Future[bool], timeout: float) -> bool:
    """Await a future from ``Notifier.subscribe`` for at most ``timeout`` seconds; True if its
    path changed. One timer per waiter, cancelled on wake; the caller unsubscribes after."""
    if future.done():
        return future.result()
    timer = asyncio.get_running_loop().call_later(timeout, _expire, future)
    try:
        return await future
    finally:
        timer.cancel()
