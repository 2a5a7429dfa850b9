"""Topics over the store (``millstream.log.Topics``), on every store kind: the mapping to
streams, configs, and crash safety (a crash after any store call of create, delete or
add-partitions leaves the old or the new topic, never one with an older topic's data)."""

from __future__ import annotations

from typing import Any

import pytest

from millstream.log import (
    AppendRequest,
    InvalidConfig,
    InvalidPartitions,
    InvalidTopic,
    Store,
    StreamConfig,
    TopicExists,
    TopicNotFound,
    Topics,
)

from .helpers import JSON, append, create, kafka_batch, read_all


async def test_create_describe_list_delete(store: Store) -> None:
    topics = Topics(store)
    info = await topics.create("orders", 3, {"retention.ms": "60000"})
    assert (info.name, info.partitions) == ("orders", 3)
    assert info.paths() == ["orders", "orders:1", "orders:2"]
    assert info.configs["retention.ms"] == "60000"
    assert info.content_type == "application/octet-stream"
    assert sorted(await store.list_paths()) == ["orders", "orders:1", "orders:2"]
    assert await topics.describe("orders") == info
    with pytest.raises(TopicExists):
        await topics.create("orders", 1)
    await topics.delete("orders")
    with pytest.raises(TopicNotFound):
        await topics.describe("orders")
    assert await store.list_paths() == []
    with pytest.raises(TopicNotFound):
        await topics.delete("orders")


async def test_plain_streams_are_one_partition_topics(store: Store) -> None:
    topics = Topics(store)
    await create(store, "chat", b"hi", config=JSON)
    await create(store, "rooms/1")  # not a legal topic name: not a topic
    await create(store, "__ds/state")  # internal
    await topics.create("events", 2)
    listed = await topics.list()
    assert [(t.name, t.partitions) for t in listed] == [("chat", 1), ("events", 2)]
    assert listed[0].content_type == "application/json"
    with pytest.raises(TopicExists):
        await topics.create("chat", 2)
    grown = await topics.add_partitions("chat", 3)
    assert grown.partitions == 3
    assert grown.content_type == "application/json"
    assert (await store.head("chat:2")).config == JSON
    assert await read_all(store, "chat") == [b"hi"]  # partition 0 keeps its data
    await topics.delete("chat")
    assert await store.list_paths() == ["events", "events:1", "rooms/1"]


async def test_json_topics_read_over_http_as_json(store: Store) -> None:
    topics = Topics(store)
    info = await topics.create("j", 2, {"millstream.content.type": "application/json"})
    await store.produce(info.paths()[1], kafka_batch([b'{"a":1}', b"text"]))
    assert await read_all(store, "j:1") == [b'{"a":1}', b'"text"']


async def test_configs(store: Store) -> None:
    topics = Topics(store)
    info = await topics.create("t", 1, {"message.max.bytes": "1000"})
    assert info.max_message_bytes == 1000  # Kafka's broker-level name as an alias
    assert not info.log_append_time
    altered = await topics.alter_configs(
        "t", {"message.timestamp.type": "LogAppendTime", "max.message.bytes": None}
    )
    assert altered.log_append_time
    assert altered.configs["max.message.bytes"] == "1048588"  # reset to the default
    assert await topics.describe_configs("t") == altered.configs
    for bad in [
        {"cleanup.policy": "compact"},
        {"message.timestamp.type": "Never"},
        {"max.message.bytes": "-1"},
        {"retention.ms": "soon"},
        {"no.such.config": "1"},
    ]:
        with pytest.raises(InvalidConfig):
            await topics.create("u", 1, bad)
        with pytest.raises(InvalidConfig):
            await topics.alter_configs("t", bad)
    with pytest.raises(InvalidConfig):
        await topics.alter_configs("t", {"millstream.content.type": "application/json"})
    await create(store, "plain")
    plain = await topics.alter_configs("plain", {"retention.ms": "5"})
    assert (plain.partitions, plain.configs["retention.ms"]) == (1, "5")
    assert (await topics.describe("plain")).content_type == "text/plain"


async def test_invalid_names_and_partition_counts(store: Store) -> None:
    topics = Topics(store)
    for name in ["", ".", "..", "a/b", "a:1", "__consumer_offsets", "x" * 250, "é"]:
        with pytest.raises(InvalidTopic):
            await topics.create(name, 1)
    with pytest.raises(InvalidPartitions):
        await topics.create("t", 0)
    await topics.create("t", 2)
    with pytest.raises(InvalidPartitions):
        await topics.add_partitions("t", 2)
    with pytest.raises(TopicNotFound):
        await topics.add_partitions("missing", 3)


# -- crash safety -------------------------------------------------------------------------------


class Crash(Exception):
    """Stands for kill -9: the store calls made so far are durable, nothing else happens."""


class CrashingStore:
    """Forwards to a store; the ``after``-th mutating call and everything later raise."""

    MUTATING = {"create", "delete", "kv_write", "append", "produce"}

    def __init__(self, store: Store, after: int) -> None:
        self._store = store
        self._left = after

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name not in self.MUTATING:
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self._left <= 0:
                raise Crash(name)
            self._left -= 1
            return await attribute(*args, **kwargs)

        return call


async def check_consistent(store: Store, name: str, generation: bytes | None) -> int:
    """The topic is whole: its partitions exist, nothing beyond them, and every message in it
    is ``generation``'s. Returns its partition count (0: no topic)."""
    topics = Topics(store)
    await topics.recover()
    paths = set(await store.list_paths())
    try:
        info = await topics.describe(name)
    except TopicNotFound:
        assert name not in paths  # leftover T:k streams may remain: no topic shows them
        return 0
    assert {p for p in paths if p == name or p.startswith(f"{name}:")} == set(info.paths())
    for path in info.paths():
        for payload in await read_all(store, path):
            assert payload == generation, (path, payload)
    return info.partitions


async def seed(store: Store, name: str, partitions: int, generation: bytes) -> None:
    info = await Topics(store).create(name, partitions)
    for path in info.paths():
        await append(store, path, generation)


async def test_a_crash_during_create_never_shows_stale_partitions(store: Store) -> None:
    points = 0
    for attempt in range(60):
        name = f"t{attempt}"
        # leftovers of an older topic of the same name (a pre-topics data file, say)
        for k in (1, 2, 5):
            await create(
                store, f"{name}:{k}", b"stale", config=StreamConfig("application/octet-stream")
            )
        crashing = Topics(CrashingStore(store, attempt))  # type: ignore[arg-type]
        try:
            await crashing.create(name, 3)
            finished = True
        except Crash:
            finished = False
        count = await check_consistent(store, name, None)
        assert count in (0, 3)
        if finished:
            points = attempt
            break
    assert points > 3


async def test_a_crash_during_delete_then_recreate(store: Store) -> None:
    finished = False
    attempt = 0
    while not finished:
        name = f"d{attempt}"
        await seed(store, name, 3, b"old")

        async def replace(topics: Topics, name: str = name) -> None:
            await topics.delete(name)
            info = await topics.create(name, 4)
            for path in info.paths():
                await topics.store.append(path, AppendRequest([b"new"]))

        try:
            await replace(Topics(CrashingStore(store, attempt)))  # type: ignore[arg-type]
            finished = True
        except Crash:
            pass
        topics = Topics(store)
        await topics.recover()
        try:
            info = await topics.describe(name)
        except TopicNotFound:
            info = None
        if info is not None and info.partitions == 3:
            assert await check_consistent(store, name, b"old") == 3
        elif info is not None:
            # the new topic: only new data, partitions possibly not yet appended to
            for path in info.paths():
                assert set(await read_all(store, path)) <= {b"new"}
        else:
            assert await check_consistent(store, name, None) == 0
        attempt += 1
        assert attempt < 60
    assert attempt > 5


async def test_a_crash_during_add_partitions(store: Store) -> None:
    for attempt in range(40):
        name = f"a{attempt}"
        await seed(store, name, 2, b"g")
        await create(store, f"{name}:3", b"stale")  # an older topic's leftover
        try:
            await Topics(CrashingStore(store, attempt)).add_partitions(name, 4)  # type: ignore[arg-type]
            finished = True
        except Crash:
            finished = False
        topics = Topics(store)
        await topics.recover()
        info = await topics.describe(name)
        assert info.partitions in (2, 4)
        for path in info.paths():
            assert set(await read_all(store, path)) <= {b"g"}
        if info.partitions == 4:
            assert await read_all(store, f"{name}:3") == []
        if finished:
            assert info.partitions == 4
            return
    raise AssertionError("add_partitions never completed")
