"""``Membership``: node ids claimed once, live views that agree, expiry, leaving, owners.

Several ``Membership`` objects on one store stand for several nodes; on PostgreSQL the last
test uses one ``PostgresStore`` per node, as a cluster does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson

from millstream.log import MEMBERS_NAMESPACE, KvWrite, Membership, PostgresStore, Store


async def started(store: Store, *names: str, ttl: float = 30) -> list[Membership]:
    members = []
    for name in names:
        member = Membership(store, name, ttl=ttl)
        await member.start()
        members.append(member)
    return members


async def test_nodes_claim_the_smallest_free_ids_and_see_each_other(store: Store) -> None:
    a, b, c = await started(store, "a", "b", "c")
    assert [m.node_id for m in (a, b, c)] == [0, 1, 2]
    a.publish({"kafka": "10.0.0.1:9092"})
    for member in (a, b, c):
        await member.beat()
    for member in (a, b, c):
        assert [(n.node_id, n.name) for n in member.live()] == [(0, "a"), (1, "b"), (2, "c")]
    seen_a = b.record(0)
    assert seen_a is not None
    assert seen_a.addresses == {"kafka": "10.0.0.1:9092"}
    await b.aclose()  # leaving deletes the row: the others drop it at their next read
    await a.beat()
    assert [n.name for n in a.live()] == ["a", "c"]
    d = Membership(store, "d", ttl=30)
    await d.start()
    assert d.node_id == 1  # the freed id is reused
    for member in (a, c, d):
        await member.aclose()


async def test_a_node_that_stops_beating_expires_and_its_id_is_taken_over(store: Store) -> None:
    (a,) = await started(store, "a", ttl=30)
    # A node that died long ago left its row: expired, so its id is free again.
    stale = orjson.dumps({"name": "dead", "until": time.time() - 1, "addresses": {}})
    await store.kv_write([KvWrite(MEMBERS_NAMESPACE, "1", stale)])
    (b,) = await started(store, "b", ttl=30)
    assert b.node_id == 1
    await a.beat()
    assert [n.name for n in a.live()] == ["a", "b"]
    # a's own row is overwritten while a is paused: a notices at its next beat and rejoins.
    taken = orjson.dumps({"name": "x", "until": time.time() + 30, "addresses": {}})
    await store.kv_write([KvWrite(MEMBERS_NAMESPACE, "0", taken)])
    await a.beat()
    assert a.node_id == 2
    assert [(n.node_id, n.name) for n in a.live()] == [(0, "x"), (1, "b"), (2, "a")]
    await a.aclose()
    await b.aclose()


async def test_owners_agree_between_views_and_only_the_leaver_s_keys_move(store: Store) -> None:
    nodes = await started(store, "a", "b", "c")
    for i, member in enumerate(nodes):
        member.publish({"kafka": f"host-{i}:9092"})
    for member in nodes * 2:  # the second round reads what every node wrote in the first
        await member.beat()
    keys = [f"group-{i}" for i in range(300)]
    owners = [{k: m.owner(k, "kafka").node_id for k in keys} for m in nodes]
    assert owners[0] == owners[1] == owners[2]
    spread = sorted(list(owners[0].values()).count(i) for i in range(3))
    assert spread[0] > 50, spread  # roughly a third each
    changed: list[str] = []
    nodes[0].add_listener(lambda: changed.append("view"))
    await nodes[2].aclose()
    await nodes[0].beat()
    assert changed == ["view"]
    after = {k: nodes[0].owner(k, "kafka").node_id for k in keys}
    assert {k for k in keys if after[k] != owners[0][k]} == {
        k for k in keys if owners[0][k] == 2
    }  # rendezvous hashing: keys of the survivors stay put
    # A node that has not published the door owns nothing of it.
    assert nodes[0].owner("group-1", "http").node_id == nodes[0].node_id
    for member in nodes[:2]:
        await member.aclose()


async def test_two_postgres_nodes_see_a_third_die(postgres_dsn: str, postgres_schema: str) -> None:
    stores = [PostgresStore(postgres_dsn, schema=postgres_schema) for _ in range(3)]
    for store in stores:
        await store.start()
    try:
        nodes = [Membership(store, f"n{i}", ttl=0.9) for i, store in enumerate(stores)]
        changed = asyncio.Event()
        for member in nodes:
            member.add_listener(changed.set)
            await member.start()
        assert sorted(m.node_id for m in nodes) == [0, 1, 2]

        async def until(done: Callable[[], bool]) -> None:
            while not done():
                changed.clear()
                await changed.wait()

        await asyncio.wait_for(until(lambda: all(len(m.live()) == 3 for m in nodes)), 10)
        dead = nodes.pop()
        assert dead._task is not None
        dead._task.cancel()  # it dies: no more heartbeats, its row stays until it expires
        await asyncio.wait_for(until(lambda: all(len(m.live()) == 2 for m in nodes)), 10)
        for member in nodes:
            await member.aclose()
    finally:
        for store in stores:
            await store.aclose()
