"""What ``SqliteStore`` promises about its batch files (``_sqlite_files``): large Kafka batches
live there and read back byte for byte across restarts, their bytes are fsynced before the
commit that names them, a failed fsync fails the store closed, files go once their last batch
does, and opening the store cuts off what a crash left half-written."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from millstream.log import KafkaBatch, SqliteStore, StorageError

from .helpers import BYTES, create, decode_batches, kafka_batch, read_all

Open = Callable[..., SqliteStore]


def big_batch(tag: str, records: int = 8, size: int = 1000, **options: object) -> KafkaBatch:
    """A batch well over the batch-file threshold, its values naming ``tag``."""
    values = [f"{tag}:{i}:".encode().ljust(size, b".") for i in range(records)]
    return kafka_batch(values, **options)  # type: ignore[arg-type]


def rows(data: Path) -> list[tuple[int, int, int | None, int, int | None]]:
    """``(stream_id, seq, file, len(data), size)`` of every row, in key order."""
    db = sqlite3.connect(data / "millstream.db")
    try:
        return db.execute(
            "SELECT stream_id, seq, file, length(data), size FROM messages ORDER BY stream_id, seq"
        ).fetchall()
    finally:
        db.close()


def files(data: Path) -> list[str]:
    return sorted(os.listdir(data / "batches"))


async def records(store: SqliteStore, path: str) -> list[bytes | None]:
    """Every record value of ``path`` through ``read_batches``, as a Kafka consumer sees it."""
    out: list[bytes | None] = []
    position = (await store.head(path)).log_start
    while True:
        result = await store.read_batches(path, position)
        if not result.batches:
            return out
        out += [
            value for offset, _, _, value in decode_batches(result.batches) if offset >= position
        ]
        position = result.next


@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
async def test_large_batches_live_in_batch_files_and_survive_a_restart(
    sqlite_stores: Open, tmp_path: Path, fsync: str
) -> None:
    data = tmp_path / "data"
    store = sqlite_stores(fsync=fsync)
    await create(store, "t", config=BYTES)
    pid, _ = await store.init_producer_id()
    big = [big_batch(f"b{n}", producer=(pid, 0, 8 * n)) for n in range(3)]
    small = kafka_batch([b"tiny"])
    for batch in (big[0], small, big[1], big[2]):
        await store.produce("t", batch)
    expected = [f"b0:{i}:".encode().ljust(1000, b".") for i in range(8)] + [b"tiny"]
    expected += [f"b{n}:{i}:".encode().ljust(1000, b".") for n in (1, 2) for i in range(8)]
    assert await records(store, "t") == expected
    assert await read_all(store, "t") == expected  # HTTP readers decode them alike
    await store.aclose()

    layout = rows(data)
    assert [(seq, file is not None, length) for _, seq, file, length, _ in layout] == [
        (0, True, 0),
        (8, False, len(small.data)),
        (9, True, 0),
        (17, True, 0),
    ]
    assert [size for *_, size in layout if size is not None] == [len(b.data) for b in big]
    assert files(data) == ["000000000001.batches"]

    store = sqlite_stores(fsync=fsync)
    assert await records(store, "t") == expected
    retry = await store.produce("t", big[2])  # producer state came back with the rows
    assert (retry.duplicate, retry.base_offset) == (True, 17)
    assert (await store.offset_for_time("t", 1_700_000_000_003)) == (3, 1_700_000_000_003)


async def test_files_roll_and_go_once_their_last_batch_is_gone(
    sqlite_stores: Open, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    store = sqlite_stores()
    store._files.max_bytes = 20_000  # a file holds two 8 KB batches
    await create(store, "keep", config=BYTES)
    await create(store, "drop", config=BYTES)
    for n in range(6):
        await store.produce("keep", big_batch(f"k{n}"))
        await store.produce("drop", big_batch(f"d{n}"))
    assert len(files(data)) == 6
    await store.delete("drop")
    assert len(files(data)) == 6  # every file still holds a batch of "keep"
    await store.delete_records("keep", 8 * 4)  # batches k0..k3 go, and with them files 1-4
    assert files(data) == [f"{n:012d}.batches" for n in (5, 6)]
    expected = [f"k{n}:{i}:".encode().ljust(1000, b".") for n in (4, 5) for i in range(8)]
    assert await records(store, "keep") == expected
    await store.aclose()
    store = sqlite_stores()
    assert await records(store, "keep") == expected
    await store.produce("keep", big_batch("k6"))
    assert len(await records(store, "keep")) == 24


async def test_opening_cuts_what_a_crash_left_in_the_files(
    sqlite_stores: Open, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    store = sqlite_stores()
    await create(store, "t", config=BYTES)
    await store.produce("t", big_batch("a"))
    await store.aclose()
    active = data / "batches" / "000000000001.batches"
    committed = active.stat().st_size
    with active.open("ab") as f:  # bytes written for a commit that never happened
        f.write(b"\xff" * 5000)
    (data / "batches" / "000000000007.batches").write_bytes(b"a file no row names")
    (data / "batches" / "stray.tmp").write_bytes(b"?")

    store = sqlite_stores()
    await store.produce("t", big_batch("b"))
    assert files(data) == ["000000000001.batches"]
    assert active.stat().st_size == 2 * committed  # the new batch went where the garbage was
    expected = [f"{tag}:{i}:".encode().ljust(1000, b".") for tag in "ab" for i in range(8)]
    assert await records(store, "t") == expected


async def test_batch_bytes_are_on_disk_before_the_commit_that_names_them(
    sqlite_stores: Open, tmp_path: Path
) -> None:
    store = sqlite_stores()
    await create(store, "t", config=BYTES)
    seen: list[int] = []

    def check_then_sync(fd: int) -> None:
        db = sqlite3.connect(tmp_path / "data" / "millstream.db")
        try:  # another connection sees only committed rows: none for this batch yet
            seen.append(db.execute("SELECT count(*) FROM messages").fetchone()[0])
        finally:
            db.close()
        os.fdatasync(fd)

    store._files.sync_file = check_then_sync
    await store.produce("t", big_batch("a"))
    await store.produce("t", big_batch("b"))
    assert seen == [0, 1]
    assert len(await records(store, "t")) == 16


async def test_a_failed_batch_file_fsync_fails_the_store_closed(sqlite_stores: Open) -> None:
    store = sqlite_stores()
    await create(store, "t", config=BYTES)
    await store.produce("t", big_batch("a"))

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    store._files.sync_file = broken
    with pytest.raises(StorageError, match="fsync of a batch file failed"):
        await store.produce("t", big_batch("b"))
    with pytest.raises(StorageError):
        await store.produce("t", kafka_batch([b"small"]))  # nothing is written any more
    assert len(await records(store, "t")) == 8  # what was acknowledged still reads


async def test_a_failed_commit_leaves_the_batch_file_consistent(
    sqlite_stores: Open, tmp_path: Path
) -> None:
    store = sqlite_stores()
    await create(store, "t", config=BYTES)
    await store.produce("t", big_batch("a"))
    db = sqlite3.connect(tmp_path / "data" / "millstream.db")
    db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.seq = 8"
        " BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
    )
    db.commit()
    db.close()
    with pytest.raises(StorageError):
        await store.produce("t", big_batch("lost"))
    db = sqlite3.connect(tmp_path / "data" / "millstream.db")
    db.execute("DROP TRIGGER poison")
    db.commit()
    db.close()
    await asyncio.gather(*(store.produce("t", big_batch(tag)) for tag in "bc"))
    expected = [f"{tag}:{i}:".encode().ljust(1000, b".") for tag in "abc" for i in range(8)]
    assert await records(store, "t") == expected
    await store.aclose()
    assert await records(sqlite_stores(), "t") == expected
