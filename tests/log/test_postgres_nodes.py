"""Two ``PostgresStore`` nodes on one schema: a reader parked on one is woken by an append
through the other, by the notification (well before the re-check), and by the re-check when
the notification is lost (the listening connection was dropped)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from millstream.log import AppendRequest, CreateRequest, PostgresStore, StreamConfig

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
