"""What only ``SqliteStore`` promises for Kafka entries and the key-value table: they survive
restarts, batches are one row each, a version-1 file migrates in place, key-value writes are
invisible until fsynced, and producer ids and versions never repeat across restarts."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from millstream.log import (
    AppendRequest,
    DuplicateSequence,
    KvItem,
    KvWrite,
    ProducerClaim,
    ProducerSequenceGap,
    SqliteStore,
    StaleProducerEpoch,
    StreamConfig,
)
from millstream.log._sqlite_schema import SCHEMA_VERSION

from .helpers import BYTES, append, create, decode_batches, kafka_batch, read_all

Open = Callable[..., SqliteStore]
V1_FILE = Path(__file__).with_name("data") / "schema-v1.db"


async def test_kafka_state_survives_a_restart(sqlite_stores: Open, tmp_path: Path) -> None:
    store = sqlite_stores()
    await create(store, "t", config=BYTES)
    pid, _ = await store.init_producer_id()
    batches = [kafka_batch([f"{n}".encode()] * 2, producer=(pid, 0, 2 * n)) for n in range(6)]
    for batch in batches:
        await store.produce("t", batch)
    await append(store, "t", b"plain")
    await store.delete_records("t", 3)
    [version] = await store.kv_write([KvWrite("ns", "k", b"v")])
    await store.aclose()

    db = sqlite3.connect(tmp_path / "data" / "millstream.db")
    try:  # one row per batch, the producer's bytes with the base offset rewritten
        rows = db.execute("SELECT seq, span, data FROM messages ORDER BY seq").fetchall()
        assert [(seq, span) for seq, span, _ in rows] == [
            (2, 2),
            (4, 2),
            (6, 2),
            (8, 2),
            (10, 2),
            (12, None),
        ]
        assert rows[0][2] == (2).to_bytes(8, "big") + batches[1].data[8:]
    finally:
        db.close()

    store = sqlite_stores()
    info = await store.head("t")
    assert (info.tail, info.log_start) == (13, 3)
    assert await read_all(store, "t") == [
        b"1",
        b"2",
        b"2",
        b"3",
        b"3",
        b"4",
        b"4",
        b"5",
        b"5",
        b"plain",
    ]
    retry = await store.produce("t", batches[5])
    assert (retry.base_offset, retry.duplicate) == (10, True)
    with pytest.raises(DuplicateSequence):
        await store.produce("t", batches[0])
    with pytest.raises(ProducerSequenceGap):
        await store.produce("t", kafka_batch([b"x"], producer=(pid, 0, 99)))
    assert (await store.produce("t", kafka_batch([b"x"], producer=(pid, 1, 0)))).base_offset == 13
    with pytest.raises(StaleProducerEpoch):
        await store.produce("t", kafka_batch([b"x"], producer=(pid, 0, 12)))
    assert await store.kv_get("ns", "k") == KvItem(b"v", version)
    [after] = await store.kv_write([KvWrite("ns", "k2", b"v")])
    assert after > version  # versions never repeat across restarts
    again, _ = await store.init_producer_id()
    assert again > pid


async def test_producer_ids_and_versions_are_durable_before_they_are_handed_out(
    sqlite_stores: Open,
) -> None:
    store = sqlite_stores()
    ids = [(await store.init_producer_id())[0] for _ in range(3)]
    [v] = await store.kv_write([KvWrite("ns", "k", b"x")])
    await store.kv_write([KvWrite("ns", "k", None)])
    await store.aclose()
    store = sqlite_stores()
    assert (await store.init_producer_id())[0] > max(ids)
    [w] = await store.kv_write([KvWrite("ns", "k", b"x")])
    assert w > v


async def test_a_version_1_file_opens_migrated_with_its_data(tmp_path: Path) -> None:
    """``schema-v1.db`` was written by the main branch's code before version 2
    (``data/make_schema_v1.py``)."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(V1_FILE, data / "millstream.db")
    store = SqliteStore(data)
    try:
        assert await store.list_paths() == ["bytes", "chat", "closed", "fork", "ttl"]
        assert await store.list_paths("__", include_internal=True) == ["__ds/state"]
        assert await read_all(store, "chat") == [
            b'{"n":0}',
            b'{"n":1}',
            b'{"p":0}',
            b'{"p":1}',
            b'{"p":2}',
        ]
        assert await read_all(store, "fork") == [b"hello", b"wor", b"!"]
        assert (await store.head("closed")).closed
        assert (await store.head("chat")).log_start == 0
        duplicate = await store.append(
            "chat", AppendRequest([b'{"p":2}'], producer=ProducerClaim("prod", 2, 2))
        )
        assert duplicate.outcome == "duplicate"
        # New features work on old streams.
        await store.produce("chat", kafka_batch([b'{"k":1}']))
        assert (await read_all(store, "chat"))[-1] == b'{"k":1}'
        found = await store.offset_for_time("chat", 0)
        assert found is not None
        assert found[0] == 0
        records = decode_batches((await store.read_batches("bytes", 0)).batches)
        assert [r[3] for r in records] == [b"hello", b"world"]
        assert await store.kv_write([KvWrite("ns", "k", b"v")]) == [1]
    finally:
        await store.aclose()
    db = sqlite3.connect(data / "millstream.db")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    finally:
        db.close()


async def test_a_failed_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(V1_FILE, data / "millstream.db")
    db = sqlite3.connect(data / "millstream.db")
    db.execute("CREATE TABLE kv (x)")  # the migration's CREATE TABLE kv will fail
    db.commit()
    db.close()
    store = SqliteStore(data)
    with pytest.raises(Exception, match="kv"):
        await store.start()
    await store.aclose()
    db = sqlite3.connect(data / "millstream.db")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
        columns = [row[1] for row in db.execute("PRAGMA table_info(streams)")]
        assert "log_start" not in columns
    finally:
        db.close()


async def test_kv_writes_are_invisible_until_fsynced(sqlite_stores: Open) -> None:
    store = sqlite_stores()
    [v1] = await store.kv_write([KvWrite("ns", "k", b"old")])
    await create(store, "s")
    writer = store._writer
    assert writer is not None
    entered, release = threading.Event(), threading.Event()
    real_sync = writer.wal.sync_file

    def gated_sync(fd: int) -> None:
        entered.set()
        assert release.wait(10)
        real_sync(fd)

    writer.wal.sync_file = gated_sync
    pending = asyncio.ensure_future(store.kv_write([KvWrite("ns", "k", b"new")]))
    appending = asyncio.ensure_future(
        store.append("s", AppendRequest([b"x"], kv=[KvWrite("ns", "fresh", b"1")]))
    )
    assert await asyncio.to_thread(entered.wait, 10)
    await asyncio.sleep(0.05)
    try:
        assert not pending.done()
        assert await store.kv_get("ns", "k") == KvItem(b"old", v1)  # committed, not yet durable
        assert await store.kv_get("ns", "fresh") is None
        assert [k for k, _ in await store.kv_scan("ns")] == ["k"]
    finally:
        release.set()
    [v2] = await asyncio.wait_for(pending, 10)
    await asyncio.wait_for(appending, 10)
    writer.wal.sync_file = real_sync
    assert await store.kv_get("ns", "k") == KvItem(b"new", v2)
    assert [k for k, _ in await store.kv_scan("ns")] == ["fresh", "k"]


async def test_a_failed_commit_hands_out_no_version_twice(
    sqlite_stores: Open, tmp_path: Path
) -> None:
    store = sqlite_stores()
    [v1] = await store.kv_write([KvWrite("ns", "a", b"1")])
    db = sqlite3.connect(tmp_path / "data" / "millstream.db")
    db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON kv WHEN NEW.value = x'504f49534f4e'"
        " BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
    )
    db.commit()
    db.close()
    from millstream.log import StorageError

    with pytest.raises(StorageError):
        await store.kv_write([KvWrite("ns", "b", b"POISON")])
    assert await store.kv_get("ns", "b") is None
    [v2] = await store.kv_write([KvWrite("ns", "b", b"fine")])
    assert v2 > v1
    await store.aclose()
    store = sqlite_stores()
    [v3] = await store.kv_write([KvWrite("ns", "c", b"x")])
    assert v3 > v2


async def test_tail_cache_and_batches_agree(sqlite_stores: Open) -> None:
    store = sqlite_stores()
    await create(store, "t", config=StreamConfig("text/plain"))
    expected: list[bytes] = []
    for n in range(30):
        plain = [f"p{n}-{i}".encode() for i in range(n % 3 + 1)]
        values = [f"k{n}-{i}".encode() for i in range(n % 2 + 1)]
        results = await asyncio.gather(
            append(store, "t", *plain), store.produce("t", kafka_batch(values))
        )
        first_plain = results[0].tail - len(plain)
        base = results[1].base_offset
        pieces = sorted([(first_plain, plain), (base, values)])
        for _, values_ in pieces:
            expected.extend(values_)
        start = max(0, len(expected) - 4)
        assert await read_all(store, "t", start) == expected[start:]
    assert await read_all(store, "t") == expected
    await store.aclose()
    store = sqlite_stores()
    assert await read_all(store, "t", 5, max_bytes=7) == expected[5:]
