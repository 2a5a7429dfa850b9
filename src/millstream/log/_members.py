"""Which nodes share a store right now: a heartbeat row per node in the key-value table.

A node of a cluster (several nodes on one ``PostgresStore``) joins by claiming the smallest
free *node id* (a small integer: the Kafka door's broker id), then rewrites its row every
``ttl / 3`` seconds with a new expiry and the addresses its doors listen on. Every node reads
all rows at the same pace; the *live* nodes are those whose row has not expired. A node that
dies stops renewing and drops out of every view after ``ttl``; one that shuts down deletes its
row, so it drops out at the others' next read.

``owner(key)`` picks one live node for a key (a Kafka partition, a consumer group) by
rendezvous hashing: every node with the same view picks the same owner, and a node joining or
leaving moves only the keys it wins or held. Views of different nodes can differ for up to one
read interval after a change; what depends on ownership must tolerate that (the Kafka door's
group records are written with compare-and-set, so two would-be coordinators cannot both win).

Expiry compares wall clocks of different nodes, as ``Lease`` does: keep them in sync (NTP).

>>> members = Membership(store, "node-a", ttl=6)
>>> await members.start()                       # claims an id, starts the heartbeats
>>> members.publish({"http": "http://10.0.0.1:4437", "kafka": "10.0.0.1:9092"})
>>> members.owner("group:orders", "kafka").addresses["kafka"]
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import orjson

from ._errors import KvConflict, LogError
from ._model import KvWrite
from ._store import Store

__all__ = ["MEMBERS_NAMESPACE", "Membership", "NodeRecord"]

log = logging.getLogger("millstream.cluster")

#: The key-value namespace of node rows: key = the node id in decimal, value = JSON.
MEMBERS_NAMESPACE = "cluster.nodes"


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One node as its row says: ``addresses`` by door (``"http"``, ``"kafka"``)."""

    node_id: int
    name: str
    until: float
    addresses: Mapping[str, str] = field(default_factory=dict)


def _score(node: NodeRecord, key: str) -> bytes:
    return hashlib.blake2b(f"{node.node_id}\0{key}".encode(), digest_size=8).digest()


class Membership:
    """This node's row among the nodes of ``store`` and its view of the live ones."""

    def __init__(self, store: Store, name: str, *, ttl: float = 6.0) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.store = store
        self.name = name
        self.ttl = ttl
        self.node_id = -1  # until ``start`` claimed one
        self._version = 0  # of our row
        self._addresses: dict[str, str] = {}
        self._live: list[NodeRecord] = []
        self._owners: dict[tuple[str, str], NodeRecord] = {}
        self._listeners: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._soon = asyncio.Event()  # beat now rather than at the next interval
        self._beating = asyncio.Lock()

    # -- the view ------------------------------------------------------------------------

    def live(self) -> list[NodeRecord]:
        """The live nodes by id (this one always among them), as of the last read."""
        return self._live

    def record(self, node_id: int) -> NodeRecord | None:
        for node in self._live:
            if node.node_id == node_id:
                return node
        return None

    def named(self, name: str) -> NodeRecord | None:
        for node in self._live:
            if node.name == name:
                return node
        return None

    def owner(self, key: str, door: str) -> NodeRecord:
        """The live node with a ``door`` address that owns ``key`` (this node while no other
        has published that door)."""
        cached = self._owners.get((key, door))
        if cached is not None:
            return cached
        candidates = [node for node in self._live if door in node.addresses] or [self._self()]
        chosen = max(candidates, key=lambda node: _score(node, key))
        if len(self._owners) > 100_000:
            self._owners.clear()
        self._owners[(key, door)] = chosen
        return chosen

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever the live view changes (ownership may have moved)."""
        self._listeners.append(callback)

    def _self(self) -> NodeRecord:
        return NodeRecord(self.node_id, self.name, time.time() + self.ttl, dict(self._addresses))

    def _set_view(self, rows: list[NodeRecord]) -> None:
        others = [row for row in rows if row.node_id != self.node_id]
        view = sorted([*others, self._self()], key=lambda node: node.node_id)
        before = [(n.node_id, n.name, dict(n.addresses)) for n in self._live]
        self._live = view
        if before != [(n.node_id, n.name, dict(n.addresses)) for n in view]:
            self._owners.clear()
            for callback in self._listeners:
                callback()

    # -- the row ---------------------------------------------------------------------------

    async def _rows(self, now: float) -> tuple[list[NodeRecord], dict[int, tuple[NodeRecord, int]]]:
        """Live rows, and every row (expired too) with its version, by node id."""
        every: dict[int, tuple[NodeRecord, int]] = {}
        for key, item in await self.store.kv_scan(MEMBERS_NAMESPACE):
            if not key.isdigit():
                continue
            try:
                data = orjson.loads(item.value)
                row = NodeRecord(
                    int(key), str(data["name"]), float(data["until"]), dict(data["addresses"])
                )
            except (ValueError, KeyError, TypeError):
                continue
            every[row.node_id] = (row, item.version)
        return [row for row, _ in every.values() if row.until > now], every

    def _value(self, now: float) -> bytes:
        return orjson.dumps({"name": self.name, "until": now + self.ttl,
                             "addresses": self._addresses})  # fmt: skip

    async def _claim(self) -> None:
        """Take the smallest node id whose row is missing or expired."""
        while True:
            now = time.time()
            live, every = await self._rows(now)
            taken = {row.node_id for row in live}
            node_id = next(i for i in range(len(taken) + 1) if i not in taken)
            expect = every[node_id][1] if node_id in every else 0
            try:
                [version] = await self.store.kv_write(
                    [KvWrite(MEMBERS_NAMESPACE, str(node_id), self._value(now), expect)]
                )
            except KvConflict:  # another node claimed it between our read and write
                continue
            self.node_id, self._version = node_id, version
            self._set_view(live)
            return

    async def beat(self) -> None:
        """Renew this node's row and re-read the others (what the background task repeats)."""
        async with self._beating:  # one at a time: each expects the version the last wrote
            await self._beat()

    async def _beat(self) -> None:
        now = time.time()
        try:
            [self._version] = await self.store.kv_write(
                [KvWrite(MEMBERS_NAMESPACE, str(self.node_id), self._value(now), self._version)]
            )
        except KvConflict:
            # Our row expired and another node took the id (we were away longer than the
            # ttl): join again under a new one.
            log.warning("node id %d was taken over; claiming a new one", self.node_id)
            await self._claim()
            return
        live, _ = await self._rows(now)
        self._set_view(live)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Claim a node id and keep the row alive in the background."""
        await self._claim()
        self._task = asyncio.ensure_future(self._beat_forever())

    def publish(self, addresses: Mapping[str, str]) -> None:
        """Announce the addresses of this node's doors (written by a beat brought forward to
        now)."""
        self._addresses.update(addresses)
        self._set_view([n for n in self._live if n.node_id != self.node_id])
        self._soon.set()

    async def _beat_forever(self) -> None:
        interval = self.ttl / 3
        loop = asyncio.get_running_loop()
        while True:
            # Not asyncio.wait_for: on 3.11 it can swallow a cancel that meets the event.
            timer = loop.call_later(interval, self._soon.set)
            try:
                await self._soon.wait()
            finally:
                timer.cancel()
            self._soon.clear()
            try:
                await self.beat()
            except LogError as exc:  # the store is unreachable: keep the last view
                log.debug("membership heartbeat failed: %s", exc)

    async def aclose(self) -> None:
        """Stop beating and delete this node's row, so the others drop it at their next read."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(LogError):
            await self.store.kv_write(
                [KvWrite(MEMBERS_NAMESPACE, str(self.node_id), None, self._version)]
            )
