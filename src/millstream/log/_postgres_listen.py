"""How a node hears of appends made through other nodes: LISTEN/NOTIFY, and a re-check.

Every writer transaction ends with ``pg_notify('<schema>_changes', <JSON list of paths>)``;
PostgreSQL delivers it to every listening connection only if, and once, the transaction
commits. The ``Listener`` holds one connection that LISTENs and wakes this node's live readers
of those paths (its own writers' notifications are skipped: the writer woke them already).

Notifications can be missed: the listening connection drops (PostgreSQL restarts, a network
blip) and nothing is queued for a connection that is gone. So, besides, every
``recheck_seconds`` the listener reads the tails of the paths readers wait on, in one query,
and wakes those that changed since it last looked (or that it had not looked at yet); after a
reconnect it re-checks at once. A missed notification therefore delays a wake-up by at most
about ``recheck_seconds``, and never loses it. A wake-up that finds nothing new costs the
reader one re-read (``PostgresStore.wait`` then waits again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ._errors import StorageError
from ._notify import Notifier

__all__ = ["Listener"]

log = logging.getLogger("millstream.postgres")

Tails = Callable[[list[str]], Awaitable[dict[str, tuple[int, int, bool, bool]]]]


class Listener:
    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        channel: str,
        notifier: Notifier,
        tails: Tails,
        *,
        own_pids: Callable[[], set[int | None]],
        recheck_seconds: float,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._notifier = notifier
        self._tails = tails
        self._own_pids = own_pids
        self._recheck_seconds = recheck_seconds
        self._conn: Any = None
        self._seen: dict[str, tuple[int, int, bool, bool] | None] = {}
        self._lost = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = False
        self.received = 0
        self.rechecks = 0

    async def start(self) -> None:
        await self._listen()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._keep_connected(), name="pg-listener"),
            loop.create_task(self._recheck_loop(), name="pg-recheck"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _listen(self) -> None:
        conn = await self._connect()
        conn.add_termination_listener(self._terminated)
        await conn.add_listener(self._channel, self._on_notify)
        self._conn = conn
        self.connected = True
        self._lost.clear()

    def _terminated(self, _conn: Any) -> None:
        self.connected = False
        self._lost.set()

    def _on_notify(self, _conn: Any, pid: int, _channel: str, payload: str) -> None:
        self.received += 1
        if pid in self._own_pids():
            return
        try:
            paths = json.loads(payload)
        except ValueError:
            return
        notify = self._notifier.notify
        for path in paths:
            if isinstance(path, str):
                notify(path)

    async def _keep_connected(self) -> None:
        delay = 0.05
        while True:
            await self._lost.wait()
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.terminate()
            try:
                await self._listen()
            except Exception as exc:  # the database is still away: try again, slower
                log.debug("LISTEN connection failed: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                self._lost.set()
                continue
            delay = 0.05
            self._seen.clear()  # anything may have changed while we were away
            await self.recheck()

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self._recheck_seconds)
            conn = self._conn
            if conn is not None and conn.is_closed():
                self._terminated(conn)
            await self.recheck()

    async def recheck(self) -> None:
        """Wake readers of every waited-on path whose stream changed since the last look."""
        paths = self._notifier.waiting_paths()
        seen = self._seen
        for path in [p for p in seen if p not in set(paths)]:
            del seen[path]
        if not paths:
            return
        self.rechecks += 1
        try:
            tails = await self._tails(paths)
        except StorageError:
            return
        for path in paths:
            current = tails.get(path)
            if path not in seen or seen[path] != current:
                seen[path] = current
                self._notifier.notify(path)
