"""Two ``PostgresStore`` nodes on one schema: a reader parked on one is woken by an append
through the other, by the notification (well before the re-check), and by the re-check when
the notification is lost (the listening connection was dropped); idempotent producers of both
doors are fenced across the nodes (retries through either node land once, an epoch bumped on
one refuses the old epoch on the other, producer ids are unique across nodes), and TTL
reclaim run by both nodes at once reclaims each stream once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from millstream.log import (
    AppendRequest,
    CreateRequest,
    PostgresStore,
    StaleProducerEpoch,
    StreamConfig,
    StreamNotFound,
)

from .helpers import BYTES, append, create, kafka_batch, read_all

TEXT = StreamConfig(content_type="text/plain")


@pytest.fixture
async def two_nodes(
    postgres_dsn: str, postgres_schema: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    recheck = getattr(request, "param", 60.0)
    a = PostgresStore(postgres_dsn, schema=postgres_schema, recheck_seconds=recheck)
    b = PostgresStore(postgres_dsn, schema=postgres_schema, recheck_seconds=recheck)
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_notification_wakes_the_other_node_at_once(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two_nodes
    path = "it's/a \\ path"  # quotes and backslashes travel in the notification's literal
    await a.create(path, CreateRequest(TEXT))
    waiting = asyncio.ensure_future(b.wait(path, 0, timeout=30))
    await asyncio.sleep(0.2)  # parked on b
    assert not waiting.done()
    started = time.monotonic()
    await a.append(path, AppendRequest([b"hello"]))
    assert await asyncio.wait_for(waiting, 10)
    assert time.monotonic() - started < 5  # the re-check is a minute away: notified
    assert (await b.read(path, 0)).payloads == [b"hello"]


@pytest.mark.parametrize("two_nodes", [0.3], indirect=True)
async def test_a_lost_notification_is_made_up_by_the_recheck(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two_nodes
    await a.create("lost", CreateRequest(TEXT))
    listener = b._listener
    assert listener is not None
    listener._channel = "nobody_listens_here"  # b's listener no longer hears a's notifications
    await listener.stop()
    await listener.start()
    waiting = asyncio.ensure_future(b.wait("lost", 0, timeout=30))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    await a.append("lost", AppendRequest([b"late"]))
    assert await asyncio.wait_for(waiting, 10)
    assert listener.rechecks > 0


async def test_producers_of_both_doors_are_fenced_across_nodes(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two_nodes
    await create(a, "http")
    for seq in range(5):  # a client retrying through both nodes at once: stored once
        results = await asyncio.gather(
            append(a, "http", b"m%d" % seq, producer=("p", 0, seq)),
            append(b, "http", b"m%d" % seq, producer=("p", 0, seq)),
        )
        assert sorted(r.outcome for r in results) == ["appended", "duplicate"]
    assert (await append(b, "http", b"new", producer=("p", 1, 0))).outcome == "appended"
    with pytest.raises(StaleProducerEpoch):
        await append(a, "http", b"zombie", producer=("p", 0, 5))
    assert await read_all(a, "http") == [b"m0", b"m1", b"m2", b"m3", b"m4", b"new"]

    ids = await asyncio.gather(*(node.init_producer_id() for node in (a, b) for _ in range(10)))
    assert len({pid for pid, _ in ids}) == 20
    pid = ids[0][0]
    await create(b, "topic", config=BYTES)
    seq = 0
    for n in range(5):
        batch = kafka_batch([b"%d-%d" % (n, i) for i in range(n + 1)], producer=(pid, 0, seq))
        produced = await asyncio.gather(a.produce("topic", batch), b.produce("topic", batch))
        assert sorted(r.duplicate for r in produced) == [False, True]
        assert produced[0].base_offset == produced[1].base_offset == seq
        seq += batch.record_count
    stored = await read_all(b, "topic")
    assert stored == [b"%d-%d" % (n, i) for n in range(5) for i in range(n + 1)]


async def test_reclaim_on_both_nodes_at_once_reclaims_each_stream_once(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two_nodes
    soon = StreamConfig("text/plain", expires_at=datetime.now(UTC) + timedelta(seconds=30))
    for k in range(20):
        await create(a if k % 2 else b, f"old/{k}", b"x", config=soon)
    await create(a, "kept", b"x")
    later = time.time() + 60
    counts = await asyncio.gather(*(node.reclaim_expired(later) for node in (a, b, a, b)))
    assert sum(counts) == 20, counts
    assert await a.list_paths() == await b.list_paths() == ["kept"]
    with pytest.raises(StreamNotFound):
        await b.head("old/3")
