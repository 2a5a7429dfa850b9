"""Consumer groups in the store's key-value table: generations and committed offsets.

This is the durable half of the consumer groups; the HTTP admin API reads it (to list groups
and compute lag), so the layout is a contract:

- namespace ``kafka.groups``, key: the group id as given. Value, JSON, written at each new
  generation and when its assignment is complete::

      {"generation": 7, "state": "Stable", "protocol_type": "consumer", "protocol": "range",
       "leader": "m-1", "members": [{"member_id": "m-1", "group_instance_id": null,
       "client_id": "c", "client_host": "127.0.0.1:50312", "session_timeout_ms": 10000,
       "rebalance_timeout_ms": 300000, "protocols": [["range", "<base64 metadata>"]],
       "assignment": "<base64 assignment>"}]}

  A node that becomes the group's coordinator (after a restart, or when the coordinator of a
  cluster died) continues from the record: a Stable group stays Stable with its members and
  assignments, and their heartbeats go on at the same generation. A generation number is
  never handed out twice: every write of the record is a compare-and-set on the version the
  writing node loaded or last wrote, so a node that lost the group to another cannot
  overwrite it (it drops the group and its members are sent to the new coordinator).
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
import base64
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

import orjson

from millstream.log import KvConflict, KvItem, KvWrite, LogError, Store

from ._coordinator import Group, Member

__all__ = [
    "GROUPS_NAMESPACE",
    "OFFSETS_NAMESPACE",
    "Committed",
    "GroupStore",
    "StoredGroup",
    "StoredMember",
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
class StoredMember:
    """A member as the group record has it: enough for another node to continue the group."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: list[tuple[str, bytes]]
    assignment: bytes


@dataclass(frozen=True, slots=True)
class StoredGroup:
    """A group as the table has it (for groups with no member in memory)."""

    group_id: str
    generation: int
    state: str
    protocol_type: str | None
    protocol: str | None = None
    leader: str = ""
    #: empty when the record predates member details (the group then restarts empty)
    members: tuple[StoredMember, ...] = ()
    version: int = 0  # of the record; 0: no record


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _member_json(member: Member) -> dict[str, object]:
    return {
        "member_id": member.member_id,
        "group_instance_id": member.group_instance_id,
        "client_id": member.client_id,
        "client_host": member.client_host,
        "session_timeout_ms": round(member.session_timeout * 1000),
        "rebalance_timeout_ms": round(member.rebalance_timeout * 1000),
        "protocols": [[name, _b64(metadata)] for name, metadata in member.protocols],
        "assignment": _b64(member.assignment),
    }


def _parse(group_id: str, item: KvItem) -> StoredGroup:
    record = orjson.loads(item.value)
    members: list[StoredMember] = []
    for m in record.get("members") or ():
        if "protocols" not in m:  # written before member details were kept
            members = []
            break
        members.append(
            StoredMember(
                str(m["member_id"]),
                m["group_instance_id"],
                str(m["client_id"]),
                str(m["client_host"]),
                int(m["session_timeout_ms"]),
                int(m["rebalance_timeout_ms"]),
                [(str(name), base64.b64decode(data)) for name, data in m["protocols"]],
                base64.b64decode(m["assignment"]),
            )
        )
    return StoredGroup(
        group_id,
        int(record["generation"]),
        str(record["state"]),
        record["protocol_type"],
        record.get("protocol"),
        str(record.get("leader") or ""),
        tuple(members),
        item.version,
    )


class GroupStore:
    """Reads and writes ``kafka.groups`` and ``kafka.offsets`` (see the module docstring).

    ``on_lost(group_id)`` is called when a write of a group's record finds that it changed
    since this node loaded or last wrote it (another node coordinates the group now) or
    cannot be written: the node must drop the group from memory and reload it to go on.
    """

    def __init__(self, store: Store, on_lost: Callable[[str], None] = lambda _: None) -> None:
        self.store = store
        self.on_lost = on_lost
        #: per group: the write of its latest record; resolves to that record's version (-1:
        #: the write failed, the group must be reloaded); the next write expects that version
        self._written: dict[str, asyncio.Future[int]] = {}

    # -- generations -------------------------------------------------------------------------

    async def stored(self, group_id: str) -> StoredGroup | None:
        item = await self.store.kv_get(GROUPS_NAMESPACE, group_id)
        return None if item is None else _parse(group_id, item)

    async def load(self, group_id: str) -> StoredGroup | None:
        """``stored``, and the next write of the group expects the version read (a group
        coordinated by this node from now on)."""
        stored = await self.stored(group_id)
        loaded: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        loaded.set_result(0 if stored is None else stored.version)
        self._written[group_id] = loaded
        return stored

    async def list_stored(self) -> list[StoredGroup]:
        return [_parse(key, item) for key, item in await self.store.kv_scan(GROUPS_NAMESPACE)]

    def save(self, group: Group) -> None:
        """Write ``group``'s record after the previous write of it (in the background; a commit
        waits for the write it is fenced by), expecting the version that write made."""
        previous = self._written.get(group.group_id)
        value = orjson.dumps(
            {
                "generation": group.generation,
                "state": group.state,
                "protocol_type": group.protocol_type,
                "protocol": group.protocol_name,
                "leader": group.leader,
                "members": [_member_json(m) for m in group.members.values()],
            }
        )
        self._written[group.group_id] = asyncio.ensure_future(
            self._write(group.group_id, value, previous)
        )

    async def _write(
        self, group_id: str, value: bytes, previous: asyncio.Future[int] | None
    ) -> int:
        expect = 0
        if previous is not None:
            [before] = await asyncio.gather(previous, return_exceptions=True)
            if not isinstance(before, int) or before < 0:
                return -1  # the chain broke before us: the group is being reloaded
            expect = before
        try:
            (version,) = await self.store.kv_write(
                [KvWrite(GROUPS_NAMESPACE, group_id, value, expect_version=expect)]
            )
        except KvConflict:
            logger.info("consumer group %r moved to another node", group_id)
            self.on_lost(group_id)
            return -1
        except LogError:
            logger.exception("saving consumer group %r failed", group_id)
            self.on_lost(group_id)
            return -1
        return version

    def fence(self, group_id: str) -> asyncio.Future[int] | None:
        """The write a commit of the group's current generation is fenced by (``None``: the
        group was never loaded or written by this process)."""
        return self._written.get(group_id)

    def forget(self, group_id: str) -> None:
        """The group is no longer coordinated here: its next load starts a new chain."""
        self._written.pop(group_id, None)

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
