"""``fsync="always"``'s pipelined commit: a batch is acknowledged and shown to readers only
after an fsync of the WAL that began after its COMMIT; a failed fsync fails the store closed;
checkpoints taken over from SQLite keep every acknowledged append."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from millstream.log import SqliteStore, StorageError, StreamNotFound, _sqlite_writer

from .helpers import append, create, read_all

Open = Callable[..., SqliteStore]


def wal_of(store: SqliteStore) -> _sqlite_writer.WalFile:
    writer = store._writer
    assert writer is not None
    return writer.wal


def count_rows(db_path: Path) -> int:
    db = sqlite3.connect(db_path)
    try:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
    finally:
        db.close()


async def test_a_batch_is_acknowledged_and_visible_only_after_a_later_fsync(
    sqlite_stores: Open, tmp_path: Path
) -> None:
    store = sqlite_stores()
    await create(store, "a", b"first")
    entered, release = threading.Event(), threading.Event()
    rows_at_fsync: list[int] = []
    real_sync = wal_of(store).sync_file

    def gated_sync(fd: int) -> None:
        # The batch is committed (visible to a fresh connection) before its fsync starts.
        rows_at_fsync.append(count_rows(tmp_path / "data" / "millstream.db"))
        entered.set()
        assert release.wait(10)
        real_sync(fd)

    wal_of(store).sync_file = gated_sync
    pending = asyncio.ensure_future(append(store, "a", b"second"))
    creating = asyncio.ensure_future(create(store, "b", b"x"))
    assert await asyncio.to_thread(entered.wait, 10)
    await asyncio.sleep(0.05)
    try:
        assert not pending.done()
        assert not creating.done()
        assert rows_at_fsync[0] >= 2  # "second" was committed before the fsync began
        # Readers see neither the append nor the new stream before the fsync completes.
        assert (await store.head("a")).tail == 1
        assert await read_all(store, "a") == [b"first"]
        with pytest.raises(StreamNotFound):
            await store.head("b")
    finally:
        release.set()
    assert (await pending).tail == 2
    await creating
    assert await read_all(store, "a") == [b"first", b"second"]
    assert (await store.head("b")).tail == 1
    assert store.statistics()["wal_syncs"] >= 2


async def test_a_failed_fsync_fails_its_writes_and_every_later_one(
    sqlite_stores: Open,
) -> None:
    store = sqlite_stores()
    await create(store, "a", b"kept")

    def broken_sync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    wal_of(store).sync_file = broken_sync
    results = await asyncio.gather(
        *(append(store, "a", f"m{i}".encode()) for i in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, StorageError) for r in results), results
    assert "fsync" in str(results[0])
    assert "stopped accepting writes" in str(results[0])
    wal_of(store).sync_file = lambda fd: None  # the disk "recovers": the store stays closed
    with pytest.raises(StorageError, match="stopped accepting writes"):
        await append(store, "a", b"later")
    with pytest.raises(StorageError):
        await create(store, "c")
    # Reads keep serving what was acknowledged, and nothing else.
    assert (await store.head("a")).tail == 1
    assert await read_all(store, "a") == [b"kept"]
    assert store.statistics()["failed"] is True
    await store.aclose()
    again = sqlite_stores()  # a restart recovers from the file and writes again
    assert (await read_all(again, "a"))[0] == b"kept"
    tail = (await again.head("a")).tail
    assert (await append(again, "a", b"after")).tail == tail + 1


async def test_frequent_checkpoints_keep_every_acknowledged_append(
    sqlite_stores: Open, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite_writer, "CHECKPOINT_FRAMES", 4)
    store = sqlite_stores()
    await create(store, "a")
    expected: list[bytes] = []
    for round_ in range(30):
        batch = [f"{round_}-{i}-".encode() * 50 for i in range(8)]
        expected.extend(batch)
        await asyncio.gather(*(append(store, "a", m) for m in batch))
    stats = store.statistics()
    assert stats["checkpoints"] >= 10
    assert not stats["failed"]
    assert sorted(await read_all(store, "a")) == sorted(expected)
    # The WAL was reset and reused: never reset, it would hold at least 30 commits of at
    # least two 4 KiB pages (messages and streams) each.
    assert store.statistics()["batches"] >= 30
    assert (tmp_path / "data" / "millstream.db-wal").stat().st_size < 30 * 2 * 4096 // 2
    await store.aclose()
    again = sqlite_stores()
    assert sorted(await read_all(again, "a")) == sorted(expected)


@pytest.mark.parametrize("fsync", ["interval", "never"])
async def test_other_modes_publish_at_commit_without_the_fsync_thread(
    sqlite_stores: Open, fsync: str
) -> None:
    store = sqlite_stores(fsync=fsync)
    await create(store, "a", b"x")
    assert (await append(store, "a", b"y")).tail == 2
    assert store.statistics()["wal_syncs"] == 0
