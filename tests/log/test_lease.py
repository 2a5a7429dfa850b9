"""``Lease``: one holder at a time over the key-value table, take-over after expiry, fencing.

Runs on every store kind; the PostgreSQL case also runs two stores on one schema, i.e. two
nodes of a cluster electing through the database.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from millstream.log import KvConflict, KvWrite, Lease, PostgresStore, Store


async def test_one_holder_then_take_over_after_expiry(store: Store) -> None:
    a = Lease(store, "svc", "node-a", ttl=5)
    b = Lease(store, "svc", "node-b", ttl=5)
    now = time.time()
    assert await a.try_acquire(now)
    assert not await b.try_acquire(now + 1)
    assert a.held
    assert not b.held
    assert await a.try_acquire(now + 2)  # renewal: still a's, until now + 7
    assert not await b.try_acquire(now + 6)
    assert await b.try_acquire(now + 8)  # a stopped renewing: b takes over
    holder, until, _ = await b.current() or ("", 0.0, None)
    assert (holder, until) == ("node-b", now + 13)


async def test_a_deposed_holder_is_fenced(store: Store) -> None:
    a = Lease(store, "svc", "node-a", ttl=1)
    b = Lease(store, "svc", "node-b", ttl=1)
    now = time.time()
    assert await a.try_acquire(now)
    await store.kv_write([a.fence(), KvWrite("svc", "state", b"from a")])
    assert await b.try_acquire(now + 2)
    with pytest.raises(KvConflict):  # a has not noticed yet: its write is refused anyway
        await store.kv_write([a.fence(), KvWrite("svc", "state", b"stale a")])
    await store.kv_write([b.fence(), KvWrite("svc", "state", b"from b")])
    assert (await store.kv_get("svc", "state")).value == b"from b"  # type: ignore[union-attr]
    with pytest.raises(KvConflict):  # never held: fenced too
        await store.kv_write([Lease(store, "svc", "node-c").fence()])


async def test_release_lets_another_node_take_it_at_once(store: Store) -> None:
    a = Lease(store, "svc", "node-a", ttl=60)
    b = Lease(store, "svc", "node-b", ttl=60)
    assert await a.try_acquire()
    assert not await b.try_acquire()
    await a.release()
    assert not a.held
    assert await b.try_acquire()


async def test_two_postgres_nodes_elect_one_leader_and_fail_over(
    postgres_dsn: str, postgres_schema: str
) -> None:
    nodes = [PostgresStore(postgres_dsn, schema=postgres_schema) for _ in range(2)]
    for node in nodes:
        await node.start()
    try:
        leases = [Lease(node, "sweeper", f"node-{i}", ttl=0.6) for i, node in enumerate(nodes)]
        campaigns = [asyncio.ensure_future(lease.campaign()) for lease in leases]
        try:
            await asyncio.wait_for(
                asyncio.wait(
                    [asyncio.ensure_future(lease.wait_held()) for lease in leases],
                    return_when=asyncio.FIRST_COMPLETED,
                ),
                10,
            )
            await asyncio.sleep(1.0)  # several renewals: still exactly one leader
            assert sorted(lease.held for lease in leases) == [False, True]
            leader = next(i for i, lease in enumerate(leases) if lease.held)
            campaigns[leader].cancel()  # the leader's node dies (stops renewing)
            await asyncio.wait_for(leases[1 - leader].wait_held(), 10)
            assert (await leases[1 - leader].current() or ("",))[0] == f"node-{1 - leader}"
        finally:
            for task in campaigns:
                task.cancel()
    finally:
        for node in nodes:
            await node.aclose()
