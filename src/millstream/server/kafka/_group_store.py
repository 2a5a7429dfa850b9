"""Consumer groups in the store's key-value table: generations and committed offsets.

This is the durable half of the consumer groups; the HTTP admin API reads it (to list groups
and compute lag), so the layout is a contract:

- namespace ``kafka.groups``, key: the group id as given. Value, JSON, written at each new
  generation and when its assignment is complete::

      {"generation": 7, "state": "Stable", "protocol_type": "consumer", "protocol": "range",
       "leader": "m-1", "members": [{"member_id": "m-1", "group_instance_id": null,
       "client_id": "c", "client_host": "127.0.0.1:50312"}]}

  After a restart the coordinator continues from the stored generation (members rejoin), so a
  generation number is never handed out twice.
- namespace ``kafka.offsets``, key ``<group>/<topic>/<partition>`` where ``<group>`` is the
  group id percent-encoded (``urllib.parse.quote(group_id, safe="")``, so it holds no ``/``;
  topic names never do) and ``<partition>`` is decimal. Value, JSON::

      {"offset": 42, "leader_epoch": -1, "metadata": "", "commit_timestamp_ms": 1733100000000}

  ``offset`` is the next record the group will read (Kafka's committed offset), so a
  partition's lag is its high watermark minus ``offset``. ``kv_scan("kafka.offsets",
  quote(group, safe="") + "/")`` lists one group's offsets.

An OffsetCommit writes all its partitions in one ``kv_write``, together with a ``check_only``
expectation on the ``kafka.groups`` record at the version the committing generation wrote:
if the group moved to another generation meanwhile, nothing is written (fenced, answered
ILLEGAL_GENERATION). Commits of standalone consumers (generation -1, no member) are not fenced.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

import orjson

from millstream.log import KvConflict, KvWrite, LogError, Store

from ._coordinator import Group

__all__ = [
    "GROUPS_NAMESPACE",
    "OFFSETS_NAMESPACE",
    "Committed",
    "GroupStore",
    "offset_key",
]

logger = logging.getLogger("millstream.server.kafka")

GROUPS_NAMESPACE = "kafka.groups"
OFFSETS_NAMESPACE = "kafka.offsets"


def offset_key(group_id: str, topic: str, partition: int) -> str:
    return f"{quote(group_id, safe='')}/{topic}/{partition}"


@dataclass(frozen=True, slots=True)
class Committed:
    offset: int
    leader_epoch: int
    metadata: str


@dataclass(frozen=True, slots=True)
class StoredGroup:
    """A group as the table has it (for groups with no member in memory)."""

    group_id: str
    generation: int
    state: str
    protocol_type: str | None


class GroupStore:
    """Reads and writes ``kafka.groups`` and ``kafka.offsets`` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: per group: the write of its latest record; resolves to that record's version
        self._written: dict[str, asyncio.Future[int]] = {}

    # -- generations -------------------------------------------------------------------------

    async def stored(self, group_id: str) -> StoredGroup | None:
        item = await self.store.kv_get(GROUPS_NAMESPACE, group_id)
        if item is None:
            return None
        record = orjson.loads(item.value)
        return StoredGroup(
            group_id, int(record["generation"]), str(record["state"]), record["protocol_type"]
        )

    async def list_stored(self) -> list[StoredGroup]:
        out: list[StoredGroup] = []
        for key, item in await self.store.kv_scan(GROUPS_NAMESPACE):
            record = orjson.loads(item.value)
            out.append(
                StoredGroup(
                    key, int(record["generation"]), str(record["state"]), record["protocol_type"]
                )
            )
        return out

    def save(self, group: Group) -> None:
        """Write ``group``'s record after the previous write of it (in the background; a commit
        waits for the write it is fenced by)."""
        previous = self._written.get(group.group_id)
        value = orjson.dumps(
            {
                "generation": group.generation,
                "state": group.state,
                "protocol_type": group.protocol_type,
                "protocol": group.protocol_name,
                "leader": group.leader,
                "members": [
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "client_id": m.client_id,
                        "client_host": m.client_host,
                    }
                    for m in group.members.values()
                ],
            }
        )
        self._written[group.group_id] = asyncio.ensure_future(
            self._write(group.group_id, value, previous)
        )

    async def _write(
        self, group_id: str, value: bytes, previous: asyncio.Future[int] | None
    ) -> int:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        try:
            (version,) = await self.store.kv_write([KvWrite(GROUPS_NAMESPACE, group_id, value)])
        except LogError:
            logger.exception("saving consumer group %r failed", group_id)
            return -1
        return version

    def fence(self, group_id: str) -> asyncio.Future[int] | None:
        """The write a commit of the group's current generation is fenced by (``None``: the
        group never had a generation in this process)."""
        return self._written.get(group_id)

    async def drain(self) -> None:
        """Wait for every pending group write (shutdown)."""
        await asyncio.gather(*self._written.values(), return_exceptions=True)

    # -- offsets ---------------------------------------------------------------------------------

    async def commit(
        self,
        group_id: str,
        offsets: Iterable[tuple[str, int, int, int, str]],
        fence: asyncio.Future[int] | None,
    ) -> bool:
        """Write ``(topic, partition, offset, leader_epoch, metadata)`` rows at once; ``False``
        when the fence failed (the group's record moved on) and nothing was written."""
        now = int(time.time() * 1000)
        writes: list[KvWrite] = []
        if fence is not None:
            version = await fence
            if version < 0:
                return False
            writes.append(
                KvWrite(GROUPS_NAMESPACE, group_id, None, expect_version=version, check_only=True)
            )
        for topic, partition, offset, leader_epoch, metadata in offsets:
            value = orjson.dumps(
                {
                    "offset": offset,
                    "leader_epoch": leader_epoch,
                    "metadata": metadata,
                    "commit_timestamp_ms": now,
                }
            )
            writes.append(KvWrite(OFFSETS_NAMESPACE, offset_key(group_id, topic, partition), value))
        try:
            await self.store.kv_write(writes)
        except KvConflict:
            return False
        return True

    async def committed(self, group_id: str) -> dict[tuple[str, int], Committed]:
        """Every committed offset of ``group_id`` by (topic, partition)."""
        prefix = quote(group_id, safe="") + "/"
        out: dict[tuple[str, int], Committed] = {}
        for key, item in await self.store.kv_scan(OFFSETS_NAMESPACE, prefix):
            topic, _, partition = key[len(prefix) :].rpartition("/")
            record = orjson.loads(item.value)
            out[(topic, int(partition))] = Committed(
                int(record["offset"]), int(record["leader_epoch"]), str(record["metadata"])
            )
        return out

    async def groups_with_offsets(self) -> set[str]:
        """Group ids that have committed offsets (for ListGroups)."""
        return {
            unquote(key.partition("/")[0]) for key, _ in await self.store.kv_scan(OFFSETS_NAMESPACE)
        }
