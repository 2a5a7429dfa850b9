"""Kafka topics over the store: one module for the Kafka door and the HTTP admin API.

A topic ``T`` with ``N`` partitions is the streams ``partition_path(T, k)``, ``k < N``: ``T``
itself for partition 0, ``T:k`` for the others (``_paths``). Its metadata is a JSON record in
the key-value table, namespace ``kafka.topics``, key ``T``::

    {"partitions": N, "configs": {...set explicitly...}, "state": "ready", "target": M}

A plain stream whose path is a legal topic name and that has no record is a 1-partition topic
with default configs (its content type as ``millstream.content.type``). Internal paths
(``__...``) and partition paths never appear as topics.

**Crash safety.** Creating, deleting and adding partitions touch several streams and the
record, which no single store call can do atomically. Each operation first writes its intent
into the record (``state`` ``creating``, ``deleting`` or ``adding`` with ``target``), then
changes the streams (each change idempotent), then marks the record ``ready`` (or removes it).
Anyone who finds a pending state finishes it (``recover`` at start-up, and every operation on
that name first): creates and additions roll forward, deletes finish. Stale partition streams
(``T:k`` with no record covering them, left by an older topic) are deleted *before* an intent
is written, so a re-created topic never shows an earlier topic's data. Between those steps a
reader sees the old topic (pending ``adding``: the old partition count) or none (pending
``creating``/``deleting``). Every record change is a compare-and-set on its version.

**Configs.** ``millstream.content.type`` (fixed at creation; ``application/json`` makes a JSON
topic whose records read over HTTP as JSON values), ``max.message.bytes`` (Kafka's topic name;
``message.max.bytes`` is accepted as an alias), ``message.timestamp.type`` (``CreateTime`` or
``LogAppendTime``), ``cleanup.policy`` (only ``delete``), ``retention.ms`` (stored and reported,
**not enforced**: nothing is deleted by age; use DeleteRecords).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ._errors import (
    InvalidConfig,
    InvalidPartitions,
    InvalidTopic,
    KvConflict,
    StreamGone,
    StreamNotFound,
    TopicExists,
    TopicNotFound,
)
from ._model import CreateRequest, KvItem, KvWrite, StreamConfig, StreamInfo, normalize_content_type
from ._paths import is_internal, is_topic_name, partition_path, split_partition_path
from ._store import Store

__all__ = ["DEFAULT_TOPIC_CONFIGS", "TOPICS_NAMESPACE", "TopicInfo", "Topics"]

TOPICS_NAMESPACE = "kafka.topics"
MAX_PARTITIONS = 10_000
DEFAULT_TOPIC_CONFIGS: dict[str, str] = {
    "millstream.content.type": "application/octet-stream",
    "max.message.bytes": "1048588",  # Kafka's default
    "message.timestamp.type": "CreateTime",
    "cleanup.policy": "delete",
    "retention.ms": "-1",  # nothing expires by age (not enforced; see the module docstring)
}
_ALIASES = {"message.max.bytes": "max.message.bytes"}


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic: its partition count and every config (defaults filled in)."""

    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return self.configs["millstream.content.type"]

    @property
    def max_message_bytes(self) -> int:
        return int(self.configs["max.message.bytes"])

    @property
    def log_append_time(self) -> bool:
        return self.configs["message.timestamp.type"] == "LogAppendTime"

    def paths(self) -> list[str]:
        """The stream of each partition, in partition order."""
        return [partition_path(self.name, k) for k in range(self.partitions)]


def _check_name(name: str) -> None:
    if not is_topic_name(name) or is_internal(name):
        raise InvalidTopic(
            f"{name!r} is not a legal topic name ([A-Za-z0-9._-], 1-249 characters, not"
            " starting with '__')"
        )


def _check_value(name: str, value: str) -> str:
    if name == "millstream.content.type":
        if "/" not in value:
            raise InvalidConfig(f"{name} must be a media type such as application/json")
        return normalize_content_type(value)
    if name == "max.message.bytes":
        if not value.isdigit() or not 0 < int(value) <= 2**31 - 1:
            raise InvalidConfig(f"{name} must be a positive integer")
        return str(int(value))
    if name == "message.timestamp.type":
        if value not in ("CreateTime", "LogAppendTime"):
            raise InvalidConfig(f"{name} must be CreateTime or LogAppendTime")
        return value
    if name == "cleanup.policy":
        if value != "delete":
            raise InvalidConfig("cleanup.policy: only 'delete' is supported (no compaction)")
        return value
    if name == "retention.ms":
        try:
            number = int(value)
        except ValueError:
            number = -2
        if number < -1:
            raise InvalidConfig(f"{name} must be an integer >= -1")
        return str(number)
    raise InvalidConfig(f"unknown topic config {name!r}")


def normalize_configs(configs: Mapping[str, str | None]) -> dict[str, str | None]:
    """Validate topic configs (aliases resolved); ``None`` values mean "reset to default"."""
    out: dict[str, str | None] = {}
    for raw_name, value in configs.items():
        name = _ALIASES.get(raw_name, raw_name)
        out[name] = None if value is None else _check_value(name, value)
    return out


def _plain_record(content_type: str) -> dict[str, Any]:
    """The record a plain stream would have as a 1-partition topic."""
    return {
        "partitions": 1,
        "configs": {"millstream.content.type": content_type},
        "state": "ready",
    }


def _decode(item: KvItem) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(item.value)
    return record


class Topics:
    """Create, describe, list, grow and delete topics on ``store`` (see the module docstring).

    Usage::

        topics = Topics(store)
        await topics.recover()  # once at start-up: finish operations a crash interrupted
        info = await topics.create("orders", partitions=3, configs={"retention.ms": "60000"})
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    # -- reading ------------------------------------------------------------------------

    async def _record(self, name: str) -> tuple[dict[str, Any], int] | None:
        item = await self.store.kv_get(TOPICS_NAMESPACE, name)
        return None if item is None else (_decode(item), item.version)

    async def _stream(self, name: str) -> StreamInfo | None:
        try:
            return await self.store.head(name)
        except (StreamNotFound, StreamGone):
            return None

    @staticmethod
    def _info(name: str, record: dict[str, Any]) -> TopicInfo:
        configs = dict(DEFAULT_TOPIC_CONFIGS)
        configs.update(record.get("configs", {}))
        return TopicInfo(name, int(record["partitions"]), configs)

    async def describe(self, name: str) -> TopicInfo:
        """The topic ``name``; raises ``TopicNotFound`` (also while it is being created or
        deleted)."""
        found = await self._record(name)
        if found is not None:
            record, _ = found
            if record["state"] in ("ready", "adding"):
                return self._info(name, record)
            raise TopicNotFound(f"no topic {name!r}")
        if is_topic_name(name) and not is_internal(name):
            stream = await self._stream(name)
            if stream is not None:
                return self._info(
                    name,
                    {
                        "partitions": 1,
                        "configs": {"millstream.content.type": stream.config.content_type},
                    },
                )
        raise TopicNotFound(f"no topic {name!r}")

    async def list(self) -> list[TopicInfo]:
        """Every topic, sorted by name: recorded topics and 1-partition plain streams."""
        records = {key: _decode(item) for key, item in await self.store.kv_scan(TOPICS_NAMESPACE)}
        out = {
            name: self._info(name, record)
            for name, record in records.items()
            if record["state"] in ("ready", "adding")
        }
        for path in await self.store.list_paths():
            split = split_partition_path(path)
            if split is None or split[1] != 0 or path in records or is_internal(path):
                continue
            try:
                out[path] = await self.describe(path)
            except TopicNotFound:
                continue  # deleted meanwhile
        return [out[name] for name in sorted(out)]

    async def describe_configs(self, name: str) -> dict[str, str]:
        return dict((await self.describe(name)).configs)

    # -- changing -----------------------------------------------------------------------

    async def create(
        self, name: str, partitions: int = 1, configs: Mapping[str, str] | None = None
    ) -> TopicInfo:
        """Create topic ``name``; raises ``TopicExists`` (a plain stream of that name is a
        topic already), ``InvalidTopic``, ``InvalidPartitions``, ``InvalidConfig``."""
        _check_name(name)
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise InvalidPartitions(f"a topic needs 1 to {MAX_PARTITIONS} partitions")
        given = {k: v for k, v in normalize_configs(configs or {}).items() if v is not None}
        async with self._lock(name):
            await self._settle(name)
            if await self._record(name) is not None or await self._stream(name) is not None:
                raise TopicExists(f"topic {name!r} already exists")
            await self._remove_stale(name, 1)
            record = {"partitions": partitions, "configs": given, "state": "creating"}
            try:
                version = await self._put(name, record, 0)
            except KvConflict as exc:
                raise TopicExists(f"topic {name!r} already exists") from exc
            return await self._finish_create(name, record, version)

    async def add_partitions(self, name: str, total: int) -> TopicInfo:
        """Grow ``name`` to ``total`` partitions; raises ``InvalidPartitions`` unless more."""
        async with self._lock(name):
            await self._settle(name)
            info = await self.describe(name)
            if not info.partitions < total <= MAX_PARTITIONS:
                raise InvalidPartitions(
                    f"topic {name!r} has {info.partitions} partitions; ask for more"
                    f" (at most {MAX_PARTITIONS})"
                )
            await self._remove_stale(name, info.partitions)
            found = await self._record(name)
            configs = {k: v for k, v in info.configs.items() if DEFAULT_TOPIC_CONFIGS.get(k) != v}
            record = {
                "partitions": info.partitions,
                "configs": found[0]["configs"] if found else configs,
                "state": "adding",
                "target": total,
            }
            version = await self._put(name, record, found[1] if found else 0)
            return await self._finish_add(name, record, version)

    async def delete(self, name: str) -> None:
        """Delete topic ``name`` and all its partitions; raises ``TopicNotFound``."""
        async with self._lock(name):
            await self._settle(name)
            found = await self._record(name)
            if found is None:
                if await self._stream(name) is None or not is_topic_name(name):
                    raise TopicNotFound(f"no topic {name!r}")
                await self._delete_stream(name)
                return
            record, version = found
            record = {**record, "state": "deleting"}
            version = await self._put(name, record, version)
            await self._finish_delete(name, record, version)

    async def alter_configs(self, name: str, changes: Mapping[str, str | None]) -> TopicInfo:
        """Set (or, with ``None``, reset) configs; the content type cannot change."""
        normalized = normalize_configs(changes)
        async with self._lock(name):
            await self._settle(name)
            info = await self.describe(name)
            wanted = normalized.get("millstream.content.type", info.content_type)
            if "millstream.content.type" in normalized and wanted != info.content_type:
                raise InvalidConfig("millstream.content.type cannot change after creation")
            found = await self._record(name)
            record = found[0] if found else _plain_record(info.content_type)
            configs = dict(record.get("configs", {}))
            for key, value in normalized.items():
                if key == "millstream.content.type":
                    continue
                if value is None:
                    configs.pop(key, None)
                else:
                    configs[key] = value
            record = {**record, "configs": configs}
            await self._put(name, record, found[1] if found else 0)
            return self._info(name, record)

    async def recover(self) -> int:
        """Finish every operation a crash interrupted; return how many."""
        pending = [
            key
            for key, item in await self.store.kv_scan(TOPICS_NAMESPACE)
            if _decode(item)["state"] != "ready"
        ]
        for name in pending:
            async with self._lock(name):
                await self._settle(name)
        return len(pending)

    # -- the steps ----------------------------------------------------------------------

    async def _put(self, name: str, record: dict[str, Any], expect: int) -> int:
        [version] = await self.store.kv_write(
            [KvWrite(TOPICS_NAMESPACE, name, orjson.dumps(record), expect_version=expect)]
        )
        return version

    async def _settle(self, name: str) -> None:
        found = await self._record(name)
        if found is None:
            return
        record, version = found
        state = record["state"]
        if state == "creating":
            await self._finish_create(name, record, version)
        elif state == "adding":
            await self._finish_add(name, record, version)
        elif state == "deleting":
            await self._finish_delete(name, record, version)

    async def _create_partitions(self, name: str, record: dict[str, Any], lo: int, hi: int) -> None:
        content_type = self._info(name, record).content_type
        for k in range(lo, hi):
            path = partition_path(name, k)
            try:
                await self.store.create(path, CreateRequest(StreamConfig(content_type)))
            except StreamGone:
                # a soft-deleted stream still read by forks holds the path: it cannot be reused
                raise TopicExists(f"a deleted stream still read by forks holds {path!r}") from None

    async def _finish_create(self, name: str, record: dict[str, Any], version: int) -> TopicInfo:
        await self._create_partitions(name, record, 0, int(record["partitions"]))
        ready = {"partitions": record["partitions"], "configs": record["configs"], "state": "ready"}
        await self._put(name, ready, version)
        return self._info(name, ready)

    async def _finish_add(self, name: str, record: dict[str, Any], version: int) -> TopicInfo:
        target = int(record["target"])
        await self._create_partitions(name, record, int(record["partitions"]), target)
        ready = {"partitions": target, "configs": record["configs"], "state": "ready"}
        await self._put(name, ready, version)
        return self._info(name, ready)

    async def _finish_delete(self, name: str, record: dict[str, Any], version: int) -> None:
        count = max(int(record["partitions"]), int(record.get("target", 0)))
        for k in reversed(range(count)):
            await self._delete_stream(partition_path(name, k))
        await self.store.kv_write([KvWrite(TOPICS_NAMESPACE, name, None, expect_version=version)])

    async def _delete_stream(self, path: str) -> None:
        with contextlib.suppress(StreamNotFound, StreamGone):
            await self.store.delete(path)

    async def _remove_stale(self, name: str, first: int) -> None:
        """Delete partition streams ``T:k`` (``k >= first``) no record covers: an older
        topic's leftovers must never show up in a new one."""
        for path in await self.store.list_paths(f"{name}:"):
            split = split_partition_path(path)
            if split is not None and split[0] == name and split[1] >= first:
                await self._delete_stream(path)
