"""The store contract for the key-value table: versions, compare-and-set, atomic batches, and
writes that commit together with an append. Runs against every store kind."""

from __future__ import annotations

import asyncio

import pytest

from millstream.log import (
    AppendRequest,
    KvConflict,
    KvItem,
    KvWrite,
    ProducerClaim,
    Store,
    StreamClosed,
    StreamConfig,
)

from .helpers import append, create, read_all


async def test_get_write_and_versions(store: Store) -> None:
    assert await store.kv_get("ns", "a") is None
    [v1] = await store.kv_write([KvWrite("ns", "a", b"1")])
    [v2] = await store.kv_write([KvWrite("ns", "b", b"2")])
    [v3] = await store.kv_write([KvWrite("ns", "a", b"3")])
    assert 0 < v1 < v2 < v3  # store-wide and increasing
    assert await store.kv_get("ns", "a") == KvItem(b"3", v3)
    assert await store.kv_get("ns", "b") == KvItem(b"2", v2)
    assert await store.kv_get("other", "a") is None


async def test_compare_and_set(store: Store) -> None:
    [v1] = await store.kv_write([KvWrite("ns", "k", b"a", expect_version=0)])
    with pytest.raises(KvConflict) as exists:
        await store.kv_write([KvWrite("ns", "k", b"b", expect_version=0)])
    assert (exists.value.namespace, exists.value.key) == ("ns", "k")
    [v2] = await store.kv_write([KvWrite("ns", "k", b"b", expect_version=v1)])
    with pytest.raises(KvConflict):
        await store.kv_write([KvWrite("ns", "k", b"c", expect_version=v1)])  # stale
    with pytest.raises(KvConflict):
        await store.kv_write([KvWrite("ns", "missing", b"c", expect_version=v2)])
    assert await store.kv_get("ns", "k") == KvItem(b"b", v2)


async def test_a_deleted_and_rewritten_key_never_matches_an_old_version(store: Store) -> None:
    [v1] = await store.kv_write([KvWrite("ns", "k", b"a")])
    assert await store.kv_write([KvWrite("ns", "k", None, expect_version=v1)]) == [0]
    assert await store.kv_get("ns", "k") is None
    [v2] = await store.kv_write([KvWrite("ns", "k", b"a", expect_version=0)])
    assert v2 > v1
    with pytest.raises(KvConflict):
        await store.kv_write([KvWrite("ns", "k", b"b", expect_version=v1)])  # no ABA


async def test_a_batch_applies_all_or_nothing(store: Store) -> None:
    [v] = await store.kv_write([KvWrite("ns", "x", b"x0")])
    with pytest.raises(KvConflict):
        await store.kv_write(
            [
                KvWrite("ns", "y", b"y1"),
                KvWrite("ns", "x", None),
                KvWrite("ns", "z", b"z1", expect_version=v),  # fails: z does not exist
            ]
        )
    assert await store.kv_get("ns", "y") is None
    assert await store.kv_get("ns", "x") == KvItem(b"x0", v)
    # each expectation sees the earlier writes of the same call
    with pytest.raises(KvConflict):
        await store.kv_write(
            [
                KvWrite("ns", "y", b"y1", expect_version=0),
                KvWrite("ns", "y", b"y2", expect_version=0),
            ]
        )
    assert await store.kv_get("ns", "y") is None


async def test_check_only_fences_without_writing(store: Store) -> None:
    [gen] = await store.kv_write([KvWrite("groups", "g1", b"generation 4")])
    versions = await store.kv_write(
        [
            KvWrite("groups", "g1", None, expect_version=gen, check_only=True),
            KvWrite("offsets", "g1/t/0", b"42"),
        ]
    )
    assert versions[0] == 0
    assert versions[1] > gen
    assert await store.kv_get("groups", "g1") == KvItem(b"generation 4", gen)
    await store.kv_write([KvWrite("groups", "g1", b"generation 5")])
    with pytest.raises(KvConflict):
        await store.kv_write(
            [
                KvWrite("groups", "g1", None, expect_version=gen, check_only=True),
                KvWrite("offsets", "g1/t/0", b"43"),
            ]
        )
    item = await store.kv_get("offsets", "g1/t/0")
    assert item is not None
    assert item.value == b"42"


async def test_scan_by_prefix_sorted(store: Store) -> None:
    await store.kv_write([KvWrite("ns", k, k.encode()) for k in ["b/2", "a", "b/1", "c", "b/3"]])
    await store.kv_write([KvWrite("other", "b/9", b"no"), KvWrite("ns", "b/3", None)])
    assert [k for k, _ in await store.kv_scan("ns")] == ["a", "b/1", "b/2", "c"]
    scanned = await store.kv_scan("ns", "b/")
    assert [(k, item.value) for k, item in scanned] == [("b/1", b"b/1"), ("b/2", b"b/2")]
    assert await store.kv_scan("ns", "zzz") == []


async def test_an_append_commits_its_kv_writes_with_it(store: Store) -> None:
    await create(store, "s")
    result = await store.append(
        "s", AppendRequest([b"event"], kv=[KvWrite("svc", "pos", b"1", expect_version=0)])
    )
    assert result.tail == 1
    item = await store.kv_get("svc", "pos")
    assert item is not None
    assert item.value == b"1"
    with pytest.raises(KvConflict):  # a failed expectation appends nothing
        await store.append(
            "s", AppendRequest([b"lost"], kv=[KvWrite("svc", "pos", b"2", expect_version=0)])
        )
    assert await read_all(store, "s") == [b"event"]
    assert await store.kv_get("svc", "pos") == item
    ok = await store.append(
        "s", AppendRequest([b"next"], kv=[KvWrite("svc", "pos", b"2", expect_version=item.version)])
    )
    assert ok.tail == 2
    moved = await store.kv_get("svc", "pos")
    assert moved is not None
    assert moved.value == b"2"


async def test_a_refused_append_writes_no_kv(store: Store) -> None:
    await create(store, "c", closed=True)
    with pytest.raises(StreamClosed):
        await store.append("c", AppendRequest([b"x"], kv=[KvWrite("svc", "k", b"v")]))
    assert await store.kv_get("svc", "k") is None
    await create(store, "s", config=StreamConfig("text/plain"))
    await append(store, "s", b"x", producer=("p", 0, 0))
    duplicate = await store.append(
        "s",
        AppendRequest(
            [b"x"],
            producer=ProducerClaim("p", 0, 0),
            kv=[KvWrite("svc", "k", b"v")],
        ),
    )
    assert duplicate.outcome == "duplicate"
    assert await store.kv_get("svc", "k") is None  # a retry writes nothing, its kv included


async def test_concurrent_compare_and_set_loses_no_increment(store: Store) -> None:
    async def increment() -> None:
        while True:
            item = await store.kv_get("ns", "counter")
            value = int(item.value) if item else 0
            try:
                await store.kv_write(
                    [KvWrite("ns", "counter", str(value + 1).encode(), item.version if item else 0)]
                )
                return
            except KvConflict:
                await asyncio.sleep(0)

    await asyncio.gather(*(increment() for _ in range(40)))
    final = await store.kv_get("ns", "counter")
    assert final is not None
    assert final.value == b"40"
