"""Leadership among the nodes that share a store: a lease in the key-value table.

A service that must run once across a cluster (subscriptions' deliveries, Sentinel's detectors,
the LLM gateway's budget sweeps) holds a ``Lease`` named after it. Every node runs the same
``Lease``; exactly one holds it at a time. The holder renews it every ``ttl / 3`` seconds; a
node that dies stops renewing, and another takes it over once ``ttl`` has passed. It works on
every store (with one node it is simply always held), with nothing but ``kv_write``'s
compare-and-set, so a PostgreSQL cluster elects through the database.

Fencing: the lease's ``version`` changes with every take-over (a key-value version is never
reused). A holder that commits its state with ``lease.fence()`` among the writes
(``AppendRequest(kv=[lease.fence(), ...])`` or ``store.kv_write([lease.fence(), ...])``) is
refused with ``KvConflict`` once another node has taken the lease, even if it has not noticed
yet (a long pause, a partition): a deposed leader cannot overwrite its successor's work.

Expiry compares wall clocks of different nodes: keep them in sync (NTP) to well under ``ttl``.

>>> lease = Lease(store, "subscriptions", holder="node-a")
>>> async with lease.campaigning():            # renews in the background
...     await lease.wait_held()                # this node leads now
...     await store.kv_write([lease.fence(), KvWrite("svc", "state", b"...")])
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import orjson

from ._errors import KvConflict, LogError
from ._model import KvItem, KvWrite
from ._store import Store

__all__ = ["LEASES_NAMESPACE", "Lease"]

#: The key-value namespace of leases: key = the lease name, value = JSON holder and expiry.
LEASES_NAMESPACE = "cluster.leases"


class Lease:
    """Leadership of ``name`` for ``holder`` (a node id), lasting ``ttl`` seconds unrenewed."""

    def __init__(self, store: Store, name: str, holder: str, *, ttl: float = 10.0) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.version = 0  # of the lease record while held (the fencing token); 0: not held
        #: the holder as of this node's last look (``None``: nobody, or not looked yet)
        self.leader: str | None = None
        self._held = asyncio.Event()
        self._lost = asyncio.Event()
        self._lost.set()

    @property
    def held(self) -> bool:
        """True while this node holds the lease (as of its last renewal)."""
        return self.version != 0

    def fence(self) -> KvWrite:
        """A write that only checks the lease is still ours: commit it with the guarded state."""
        return KvWrite(LEASES_NAMESPACE, self.name, None, expect_version=self.version or -1,
                       check_only=True)  # fmt: skip

    async def current(self) -> tuple[str, float, KvItem] | None:
        """``(holder, expires_at, item)`` of the lease record, or ``None`` if nobody holds it."""
        item = await self.store.kv_get(LEASES_NAMESPACE, self.name)
        if item is None:
            return None
        record = orjson.loads(item.value)
        return str(record["holder"]), float(record["until"]), item

    async def try_acquire(self, now: float | None = None) -> bool:
        """Take the lease if it is free, expired or already ours (renewing it); return whether
        this node holds it now. Never blocks on another node."""
        moment = time.time() if now is None else now
        found = await self.current()
        if found is not None:
            holder, until, item = found
            if holder != self.holder and until > moment:
                self.leader = holder
                self._set(0)
                return False
            expect = item.version
        else:
            expect = 0
        value = orjson.dumps({"holder": self.holder, "until": moment + self.ttl})
        try:
            [version] = await self.store.kv_write(
                [KvWrite(LEASES_NAMESPACE, self.name, value, expect_version=expect)]
            )
        except KvConflict:  # another node wrote it between our read and our write
            self.leader = None  # whoever it was: the next look tells
            self._set(0)
            return False
        self.leader = self.holder
        self._set(version)
        return True

    async def release(self) -> None:
        """Give the lease up (on shutdown), so another node takes over at once."""
        if not self.held:
            return
        with contextlib.suppress(KvConflict):
            await self.store.kv_write(
                [KvWrite(LEASES_NAMESPACE, self.name, None, expect_version=self.version)]
            )
        self.leader = None
        self._set(0)

    def _set(self, version: int) -> None:
        self.version = version
        if version:
            self._lost.clear()
            self._held.set()
        else:
            self._held.clear()
            self._lost.set()

    async def wait_held(self) -> None:
        """Return once this node holds the lease."""
        await self._held.wait()

    async def wait_lost(self) -> None:
        """Return once this node does not hold the lease (any more)."""
        await self._lost.wait()

    async def campaign(self) -> None:
        """Try to take or renew the lease every ``ttl / 3`` seconds, forever (a task).

        A renewal that fails (the store is unreachable) counts as lost once the lease would
        have expired: the node stops leading before another may take over."""
        interval = self.ttl / 3
        renewed = 0.0
        while True:
            try:
                if await self.try_acquire():
                    renewed = time.monotonic()
            except LogError:
                if self.held and time.monotonic() - renewed > self.ttl - interval:
                    self.leader = None
                    self._set(0)
            await asyncio.sleep(interval)

    @contextlib.asynccontextmanager
    async def campaigning(self) -> AsyncIterator[Lease]:
        """Run ``campaign`` in the background; release the lease on exit."""
        task = asyncio.ensure_future(self.campaign())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(LogError):
                await self.release()
