"""What only ``SqliteStore`` promises: restarts keep everything, the file's layout, lazy loading,
the tail cache, and failed commits."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from millstream.log import (
    ForkSpec,
    ProducerSequenceGap,
    SqliteStore,
    StaleProducerEpoch,
    StorageError,
    StreamClosed,
    StreamConfig,
    StreamConflict,
    StreamGone,
    StreamSeqConflict,
)
from millstream.log._sqlite_schema import SCHEMA_VERSION

from .helpers import BYTES, append, create, kafka_batch, numbered, read_all

Open = Callable[..., SqliteStore]


async def test_description_and_options(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path, fsync="interval")
    assert store.description == f"sqlite:{tmp_path / 'millstream.db'} (fsync=interval)"
    with pytest.raises(ValueError, match="fsync"):
        SqliteStore(tmp_path, fsync="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
async def test_every_fsync_mode_keeps_data_across_a_clean_restart(
    sqlite_stores: Open, fsync: str
) -> None:
    store = sqlite_stores(fsync=fsync)
    await create(store, "a", b"x")
    await append(store, "a", b"y")
    await asyncio.sleep(0.15)  # let "interval" run its periodic fsync once
    await store.aclose()
    again = sqlite_stores(fsync=fsync)
    assert await read_all(again, "a") == [b"x", b"y"]


async def test_restart_keeps_everything(sqlite_stores: Open) -> None:
    store = sqlite_stores()
    await create(store, "plain", *numbered("m", 3))
    await append(store, "plain", b"s", stream_seq="0007")
    await create(store, "prod")
    for seq in range(3):
        await append(store, "prod", f"p{seq}".encode(), producer=("p", 2, seq))
    await create(store, "closed")
    await append(store, "closed", b"bye", producer=("c", 0, 0), close=True)
    await create(store, "src", b"hello", b"world", config=BYTES)
    await create(store, "fork", config=StreamConfig(""), fork=ForkSpec("src", 1, 3))
    await append(store, "fork", b"!")
    await create(store, "doomed", b"d0")
    await create(store, "child", config=StreamConfig(""), fork=ForkSpec("doomed"))
    await store.delete("doomed")  # soft-deleted: the child still reads it
    at = datetime.now(UTC) + timedelta(days=1)
    await create(store, "ttl", config=StreamConfig("text/plain", ttl_seconds=3600))
    await create(store, "at", config=StreamConfig("text/plain", expires_at=at))
    await create(store, "gone")
    last_id = (await store.head("gone")).stream_id
    await store.delete("gone")
    before = {p: await store.head(p) for p in await store.list_paths()}
    contents = {p: await read_all(store, p) for p in before}
    await store.aclose()

    store = sqlite_stores()
    assert await store.list_paths() == sorted(before)
    for path, info in before.items():
        assert await store.head(path) == info
        assert await read_all(store, path) == contents[path]
    assert contents["fork"] == [b"hello", b"wor", b"!"]
    assert contents["child"] == [b"d0"]
    # Producer state, Stream-Seq and closure came back with the data.
    duplicate = await append(store, "prod", b"p2", producer=("p", 2, 2))
    assert (duplicate.outcome, duplicate.producer_seq) == ("duplicate", 2)
    with pytest.raises(ProducerSequenceGap):
        await append(store, "prod", b"p9", producer=("p", 2, 9))
    with pytest.raises(StaleProducerEpoch):
        await append(store, "prod", b"old", producer=("p", 1, 0))
    assert (await append(store, "prod", b"p3", producer=("p", 2, 3))).tail == 4
    with pytest.raises(StreamSeqConflict):
        await append(store, "plain", b"old", stream_seq="0007")
    retry_close = await append(store, "closed", b"bye", producer=("c", 0, 0), close=True)
    assert (retry_close.outcome, retry_close.closed) == ("duplicate", True)
    with pytest.raises(StreamClosed):
        await append(store, "closed", b"more")
    with pytest.raises(StreamGone):
        await store.head("doomed")
    with pytest.raises(StreamConflict):
        await create(store, "doomed")
    assert (await create(store, "gone")).info.stream_id > last_id  # ids are never reused
    await store.delete("child")  # the cascade still works after a restart
    assert (await create(store, "doomed")).created
    assert (await store.head("at")).config.expires_at == at


async def test_file_layout(sqlite_stores: Open, tmp_path: Path) -> None:
    store = sqlite_stores()
    await create(store, "src", *numbered("s", 10))
    await create(store, "fork", config=StreamConfig(""), fork=ForkSpec("src", 8))
    await append(store, "fork", b"own")
    await append(store, "src", b"p", producer=("p", 4, 0))
    before = time.time() * 1000
    await store.aclose()
    db = sqlite3.connect(tmp_path / "data" / "millstream.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = [row[1] for row in db.execute("PRAGMA table_info(messages)")]
        assert columns == [
            *("stream_id", "seq", "data", "key", "headers", "timestamp_ms", "span"),
            *("file", "pos", "size"),
        ]
        ids = dict(db.execute("SELECT path, id FROM streams"))
        fork_rows = db.execute(
            "SELECT seq, data FROM messages WHERE stream_id = ?", (ids["fork"],)
        ).fetchall()
        assert fork_rows == [(8, b"own")]  # the fork references the source's rows, no copy
        stamp = db.execute(
            "SELECT timestamp_ms FROM messages WHERE stream_id = ? AND seq = 10", (ids["src"],)
        ).fetchone()[0]
        assert before - 5000 < stamp <= before + 1000
        assert db.execute("SELECT epoch, last_seq FROM producers").fetchall() == [(4, 0)]
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'messages'").fetchone()[0]
        assert "WITHOUT ROWID" in sql
    finally:
        db.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "millstream.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    store = SqliteStore(tmp_path)
    with pytest.raises(StorageError, match="schema version"):
        await store.start()
    await store.aclose()


async def test_streams_load_lazily(sqlite_stores: Open) -> None:
    store = sqlite_stores()
    for i in range(50):
        await create(store, f"s/{i:02d}", b"x")
    await store.aclose()
    store = sqlite_stores()
    await store.start()
    assert store.statistics()["streams_in_memory"] == 0
    assert len(await store.list_paths("s/")) == 50
    assert store.statistics()["streams_in_memory"] == 0  # answered from SQL
    await store.head("s/07")
    assert store.statistics()["streams_in_memory"] == 1


async def test_reads_agree_whether_cached_or_not(sqlite_stores: Open) -> None:
    store = sqlite_stores()
    await store.start()
    store._caches.per_stream_items = 40  # small, so trimming happens
    await create(store, "a")
    expected: list[bytes] = []
    for i in range(100):
        payloads = [f"{i}-{j}".encode() for j in range(i % 3 + 1)]
        await append(store, "a", *payloads)
        expected.extend(payloads)
        start = max(0, len(expected) - 5)
        assert await read_all(store, "a", start) == expected[start:]
    cache = store._caches.get((await store.head("a")).stream_id)
    assert cache is not None
    assert 0 < len(cache.items) <= 40
    for start in (0, 17, len(expected) - len(cache.items) - 1, len(expected) - 1):
        assert await read_all(store, "a", start, max_bytes=7) == expected[start:]


async def test_sliding_ttl_renewals_are_persisted_lazily(sqlite_stores: Open) -> None:
    store = sqlite_stores()
    await create(store, "a", config=StreamConfig("text/plain", ttl_seconds=3600))
    await store.aclose()
    store = sqlite_stores()
    await store.read("a", 0)
    renewed = time.time()
    await store.aclose()  # flushes renewals
    store = sqlite_stores()
    assert await store.reclaim_expired(renewed + 3590) == 0
    assert await store.reclaim_expired(renewed + 3610) == 1


async def test_reclaim_removes_rows(sqlite_stores: Open, tmp_path: Path) -> None:
    store = sqlite_stores()
    await create(store, "a", *numbered("x", 20), config=StreamConfig("text/plain", ttl_seconds=1))
    assert await store.reclaim_expired(time.time() + 10) == 1
    await store.aclose()
    db = sqlite3.connect(tmp_path / "data" / "millstream.db")
    try:
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM streams").fetchone()[0] == 0
    finally:
        db.close()


async def test_a_failed_commit_fails_its_batch_and_state_is_reloaded(
    sqlite_stores: Open, tmp_path: Path
) -> None:
    store = sqlite_stores()
    await create(store, "a", b"first")
    await append(store, "a", b"p0", producer=("p", 0, 0))
    # Make the file refuse one payload, as a full disk or I/O error would refuse a commit.
    db = sqlite3.connect(tmp_path / "data" / "millstream.db")
    db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.data = x'504f49534f4e'"
        " BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
    )
    db.commit()
    db.close()
    attempts = [append(store, "a", f"ok{i}".encode()) for i in range(20)]
    attempts.insert(10, append(store, "a", b"POISON"))
    attempts.insert(5, append(store, "a", b"p1", producer=("p", 0, 1)))
    results = await asyncio.gather(*attempts, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert failed
    assert all(isinstance(r, StorageError) and r.retryable for r in failed)
    assert isinstance(results[11], StorageError)  # the poisoned one
    stored = await read_all(store, "a")
    succeeded = [r for r in results if not isinstance(r, BaseException)]
    assert len(stored) == 2 + len(succeeded)
    assert b"POISON" not in stored
    # The in-memory state matches the file: the retried producer seq lands exactly once.
    retry = await append(store, "a", b"p1", producer=("p", 0, 1))
    assert retry.outcome == ("duplicate" if b"p1" in stored else "appended")
    tail = (await store.head("a")).tail
    assert (await append(store, "a", b"after")).tail == tail + 1
    await store.aclose()
    store = sqlite_stores()
    assert (await read_all(store, "a")).count(b"p1") == 1


async def test_appends_submitted_in_the_closing_iteration_are_committed(
    sqlite_stores: Open,
) -> None:
    """Jobs wait in the writer's outbox until the end of their loop iteration; ``aclose`` in
    that same iteration must still hand them over, commit and answer them."""
    store = sqlite_stores()
    await create(store, "a")
    tasks = [asyncio.ensure_future(append(store, "a", f"m{i}".encode())) for i in range(5)]
    await asyncio.sleep(0)  # each task runs up to its await: its job waits in the outbox
    assert store._writer is not None
    assert len(store._writer._outbox) == 5
    await store.aclose()
    results = await asyncio.wait_for(asyncio.gather(*tasks), 5)  # lost jobs: never answered
    assert sorted(result.tail for result in results) == [1, 2, 3, 4, 5]
    again = sqlite_stores()
    assert await read_all(again, "a") == numbered("m", 5)


async def test_memory_follows_active_streams(sqlite_stores: Open) -> None:
    store = sqlite_stores(max_cached_streams=20, idle_seconds=3600)
    await store.start()
    for i in range(200):
        await create(store, f"s/{i:03d}")
        await append(store, f"s/{i:03d}", f"m{i}".encode(), producer=("p", 0, 0))
    await store.produce("s/000", kafka_batch([b"k"], producer=(9, 0, 0)))
    for _ in range(300):  # the writer trims between batches and about once a second when idle
        stats = store.statistics()
        if stats["streams_in_memory"] <= 20:
            break
        await asyncio.sleep(0.01)
    assert stats["streams_in_memory"] <= 20
    assert stats["evictions"] >= 180
    assert stats["tail_cache"]["streams"] <= 4096
    # Evicted states reload with everything they guard.
    for i in (0, 57, 199):
        path = f"s/{i:03d}"
        assert await read_all(store, path) == ([f"m{i}".encode()] + ([b"k"] if i == 0 else []))
        retry = await append(store, path, f"m{i}".encode(), producer=("p", 0, 0))
        assert retry.outcome == "duplicate"
    dup = await store.produce("s/000", kafka_batch([b"k"], producer=(9, 0, 0)))
    assert (dup.duplicate, dup.base_offset) == (True, 1)


async def test_idle_streams_are_forgotten_and_reloaded(sqlite_stores: Open) -> None:
    store = sqlite_stores(idle_seconds=0.2)
    await create(store, "idle", b"x", config=StreamConfig("text/plain", ttl_seconds=3600))
    await create(store, "busy")
    assert store._writer is not None
    await asyncio.sleep(0.3)
    store._table.trim(time.time(), every=0)
    assert "idle" not in store._table.states
    assert (await store.head("idle")).tail == 1
    assert await read_all(store, "idle") == [b"x"]


def test_trim_never_forgets_staged_or_renewed_states() -> None:
    from millstream.log._rules import StreamState
    from millstream.log._sqlite_state import StateTable

    table = StateTable(max_states=1, idle_seconds=1)
    for path in ("staged", "renewed", "plain", "plain2"):
        table.states[path] = StreamState(path=path, stream_id=1, config=BYTES, last_access=0)
    table.stage(7, {"staged": table.states["staged"]})
    table.access_dirty.add("renewed")
    assert table.trim(100.0, every=0) == 2
    assert set(table.states) == {"staged", "renewed"}
