"""``SqliteStore``: the embedded default store, one SQLite file in WAL mode.

Writes go through one writer thread that group-commits (``_sqlite_writer``); a call returns
once its batch is committed under the fsync policy. Reads run on the event loop against
committed in-memory states (``_sqlite_state``): live readers are served from a bounded tail
cache of recent payloads without SQL, small reads query SQLite directly on the loop, and large
catch-up reads run in a worker thread so the loop is not blocked for their duration.

fsync policies (``fsync=``), all surviving ``kill -9`` of the process:

- ``"always"`` (default): a returned append is on disk; survives power loss. The fsync runs on
  a second thread while the writer commits the next batch (``_sqlite_sync``).
- ``"interval"``: the WAL is fsynced at most every ~100 ms; an OS crash or power loss can lose
  the last ~100 ms of acknowledged writes.
- ``"never"``: the OS decides; an OS crash or power loss can lose acknowledged writes and,
  rarely, corrupt the file.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate
from operator import itemgetter
from pathlib import Path
from typing import Any

from millstream._stats import Histogram

from ._batch import Counters, Job, JobKind
from ._errors import InvalidRequest, OffsetOutOfRange, StorageError, StreamGone, StreamNotFound
from ._model import (
    AppendRequest,
    AppendResult,
    BatchReadResult,
    CreateRequest,
    CreateResult,
    KafkaBatch,
    KvItem,
    KvWrite,
    ProduceResult,
    ReadResult,
    StreamInfo,
    is_json_content_type,
)
from ._paths import is_internal
from ._rules import StreamState, deadline, is_expired
from ._sqlite_files import EXTERNAL_MIN, FILES_DIR, BatchFiles
from ._sqlite_schema import (
    DB_FILENAME,
    SELECT_ENTRIES,
    SELECT_ENTRY_START,
    SELECT_RANGE,
    FsyncMode,
    connect,
    prepare_schema,
    read_counters,
)
from ._sqlite_state import StateTable, TailCaches
from ._sqlite_writer import Writer
from ._store import DEFAULT_MAX_READ_BYTES, Store
from ._views import (
    BatchCache,
    Entry,
    ValueCache,
    assemble_batches,
    clip_entry,
    time_in_batch,
)

__all__ = ["SqliteStore"]

_FSYNC_MODES = ("always", "interval", "never")

#: Reads of at most this many messages from SQL run on the event loop; larger ones in a thread.
#: Measured (docs/storage.md): a small read costs ~20 µs on the loop, while a thread hop alone
#: costs ~100 µs; a 20k-message read blocks ~5 ms, which would stall every other connection.
LOOP_READ_MAX_MESSAGES = 256

_first = itemgetter(0)


def take_within(payloads: list[bytes], budget: int) -> tuple[list[bytes], bool]:
    """Payloads up to ``budget`` bytes (the one crossing it included, and always at least one).

    Returns ``(taken, exhausted)``; ``exhausted`` means the budget ran out inside ``payloads``.
    """
    if not payloads:
        return payloads, False
    sums = list(accumulate(map(len, payloads)))
    if sums[-1] < budget:
        return payloads, False
    count = bisect_left(sums, budget) + 1
    return payloads[:count], True


def read_segments(
    conn: sqlite3.Connection, segments: Sequence[tuple[int, int, int]], budget: int
) -> list[bytes]:
    """Read ``(stream_id, lo, hi)`` ranges in order until ``budget`` bytes (see ``take_within``)."""
    out: list[bytes] = []
    for stream_id, lo, hi in segments:
        cursor = conn.execute(SELECT_RANGE, (stream_id, lo, hi))
        size, got = 64, 0
        while True:
            rows = cursor.fetchmany(size)
            if not rows:
                break
            got += len(rows)
            chunk, exhausted = take_within(list(map(_first, rows)), budget)
            out.extend(chunk)
            if exhausted:
                cursor.close()
                return out
            budget -= sum(map(len, chunk))
            size = min(size * 4, 4096)
        if got < hi - lo:  # rows vanished (deleted meanwhile): stop at the gap
            break
    return out


def _entry_rows(
    conn: sqlite3.Connection,
    files: BatchFiles,
    sid: int,
    lo: int,
    hi: int,
    extra: str = "",
    *args: object,
) -> Iterator[tuple[int, bytes, int | None, int]]:
    """``(seq, data, span, timestamp_ms)`` of the entries holding positions [lo, hi), from the
    one holding ``lo`` on; a batch kept in a batch file is read from it as it is reached.
    Messages written before version 2 have no timestamp: 0."""
    row = conn.execute(SELECT_ENTRY_START, (sid, lo)).fetchone()
    first = lo if row is None else row[0]
    sql = SELECT_ENTRIES if not extra else SELECT_ENTRIES.replace(" ORDER BY", f" {extra} ORDER BY")
    for seq, data, span, stamp, file, position, size in conn.execute(sql, (sid, first, hi, *args)):
        if file is not None:
            data = files.read(file, position, size)
        yield seq, data, span, stamp if stamp is not None else 0


def read_entries(
    conn: sqlite3.Connection,
    files: BatchFiles,
    segments: Sequence[tuple[int, int, int]],
    budget: int,
    values: ValueCache,
    json_mode: bool,
) -> list[bytes]:
    """``read_segments`` for streams holding Kafka batches: one payload per position, a batch's
    records decoded (``_views.http_payloads``), starting inside a batch when ``lo`` does."""
    out: list[bytes] = []
    used = 0
    for sid, lo, hi in segments:
        position = lo
        for seq, data, span, _ in _entry_rows(conn, files, sid, lo, hi):
            end = seq + (1 if span is None else span)
            if end <= position:
                continue
            if seq > position:
                break  # rows vanished (deleted meanwhile): stop at the gap
            if span is None:
                out.append(data)
                used += len(data)
                position += 1
            else:
                payloads = values.payloads(sid, seq, data, json_mode)
                for payload in payloads[position - seq : hi - seq]:
                    out.append(payload)
                    used += len(payload)
                    position += 1
                    if used >= budget:
                        break
            if used >= budget:
                return out
        if position < hi:
            break
    return out


def iter_entries(
    conn: sqlite3.Connection, files: BatchFiles, segments: Sequence[tuple[int, int, int]]
) -> Iterator[Entry]:
    """The entries holding the positions of ``segments``, for ``assemble_batches``; a fork
    source's batch that crosses the fork point is cut there (``clip_entry``)."""
    for sid, lo, hi in segments:
        for seq, data, span, stamp in _entry_rows(conn, files, sid, lo, hi):
            if span is None:
                if seq >= lo:
                    yield Entry(seq, 1, data, stamp, False)
                continue
            if seq + span <= lo:
                continue
            clipped = clip_entry(Entry(seq, span, data, stamp, True), hi)
            if clipped is not None:
                yield clipped


def find_time(
    conn: sqlite3.Connection,
    files: BatchFiles,
    segments: Sequence[tuple[int, int, int]],
    target: int,
) -> tuple[int, int] | None:
    """The first record at or after each segment's ``lo`` whose timestamp reaches ``target``,
    starting the scan where the sparse ``time_index`` allows."""
    for sid, lo, hi in segments:
        row = conn.execute(
            "SELECT seq FROM time_index WHERE stream_id = ? AND ts <= ? ORDER BY ts DESC LIMIT 1",
            (sid, target),
        ).fetchone()
        start = lo if row is None else max(lo, row[0])
        for seq, data, span, stamp in _entry_rows(
            conn, files, sid, start, hi, "AND timestamp_ms >= ?", target
        ):
            if span is None:
                if seq >= lo:
                    return seq, stamp
                continue
            if seq + span <= lo:
                continue
            found = time_in_batch(data, max(lo, seq), hi, target, (max(lo, seq), stamp))
            if found is not None:
                return found
    return None


class SqliteStore(Store):
    """The embedded default store: ``SqliteStore("./millstream-data")``.

    The database file is ``<data_dir>/millstream.db`` (plus SQLite's ``-wal``/``-shm``);
    Kafka batches of at least ``batch_file_min`` bytes are kept in append-only files under
    ``<data_dir>/batches/`` (``_sqlite_files``). Stream states stay in memory while used: at
    most ``max_cached_streams`` of them, and none idle for longer than ``idle_seconds`` (they
    reload from the file on the next access).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        fsync: FsyncMode = "always",
        max_cached_streams: int = 10_000,
        idle_seconds: float = 300.0,
        batch_file_min: int = EXTERNAL_MIN,
    ) -> None:
        super().__init__()
        if fsync not in _FSYNC_MODES:
            raise ValueError(f"fsync must be one of {', '.join(_FSYNC_MODES)}, not {fsync!r}")
        self.data_dir = Path(data_dir)
        self.db_path = self.data_dir / DB_FILENAME
        self.fsync: FsyncMode = fsync
        self.description = f"sqlite:{self.db_path} (fsync={fsync})"
        self._table = StateTable(max_states=max_cached_streams, idle_seconds=idle_seconds)
        self._caches = TailCaches()
        self._values = ValueCache()
        self._batch_cache = BatchCache()
        self._files = BatchFiles(self.data_dir / FILES_DIR, min_size=batch_file_min)
        self._writer: Writer | None = None
        self._reader: sqlite3.Connection | None = None
        self._local = threading.local()
        self._thread_conns: list[sqlite3.Connection] = []
        self._start_lock = asyncio.Lock()
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        async with self._start_lock:
            if self._writer is not None:
                return
            if self._closed:
                raise StorageError("the store is closed")
            try:
                self.data_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create {self.data_dir}: {exc}") from exc
            path = str(self.db_path)
            conn = connect(path, self.fsync)
            try:
                prepare_schema(conn)
                counters = read_counters(conn)
                self._files.open(conn)
            except (sqlite3.Error, StorageError) as exc:
                conn.close()
                if isinstance(exc, StorageError):
                    raise
                raise StorageError(f"cannot open {path}: {exc}") from exc
            self._reader = connect(path, self.fsync, readonly=True)
            writer = Writer(
                conn,
                self._table,
                self._caches,
                asyncio.get_running_loop(),
                self.notifier.notify,
                fsync=self.fsync,
                wal_path=path + "-wal",
                counters=Counters(counters["kv_version"], counters["producer_id"]),
                files=self._files,
            )
            writer.start()
            self._writer = writer

    async def aclose(self) -> None:
        """Finish queued writes, persist TTL renewals, wake live readers, close the file."""
        if self._closed:
            return
        self._closed = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.flush()
            await asyncio.to_thread(writer.stop)
            await asyncio.sleep(0)  # let the last batch's answers reach their callers
        self._files.close()
        self.notifier.close()
        for conn in [self._reader, *self._thread_conns]:
            if conn is not None:
                conn.close()
        self._reader = None
        self._thread_conns.clear()

    async def _ready(self) -> None:
        if self._writer is None:
            if self._closed:
                raise StorageError("the store is closed")
            await self.start()

    def histograms(self) -> dict[str, Histogram]:
        writer = self._writer
        if writer is None:
            return {}
        return {"commit_jobs": writer.commit_sizes, "wal_sync_seconds": writer.wal.sync_seconds}

    def statistics(self) -> dict[str, Any]:
        """Counters for benchmarks and the health page."""
        writer = self._writer
        return {
            "streams_in_memory": len(self._table.states),
            "evictions": self._table.evictions,
            "batches": writer.batches if writer else 0,
            "jobs": writer.jobs if writer else 0,
            "wal_syncs": writer.syncs if writer else 0,
            "checkpoints": writer.checkpoints if writer else 0,
            "failed": writer is not None and writer.failure is not None,
            "tail_cache": self._caches.statistics(),
            "batch_files": self._files.statistics(),
        }

    # -- writes: through the writer thread ----------------------------------------------

    def _enqueue(self, kind: JobKind, path: str, request: Any) -> asyncio.Future[Any]:
        """Queue a job for the writer thread (started already); its future answers it.

        Synchronous on purpose: ``append`` awaits the future directly, so an append costs the
        event loop no coroutine frames besides its own (this path runs once per request).
        """
        writer = self._writer
        if writer is None or self._closed:
            raise StorageError("the store is closed")
        failure = writer.failure
        if failure is not None:
            raise failure
        future: asyncio.Future[Any] = writer.loop.create_future()
        writer.submit(Job(kind, path, request, future))
        return future

    async def _submit(self, kind: JobKind, path: str, request: Any) -> Any:
        if self._writer is None:
            await self._ready()
        return await self._enqueue(kind, path, request)

    async def create(self, path: str, request: CreateRequest) -> CreateResult:
        result: CreateResult = await self._submit("create", path, request)
        return result

    async def append(self, path: str, request: AppendRequest) -> AppendResult:
        if self._writer is None:
            await self._ready()
        result: AppendResult = await self._enqueue("append", path, request)
        return result

    async def delete(self, path: str) -> None:
        await self._submit("delete", path, None)

    async def reclaim_expired(self, now: float | None = None) -> int:
        count: int = await self._submit("reclaim", "", now)
        return count

    # -- reads: on the loop, from memory when possible ----------------------------------

    def _lookup(self, path: str) -> StreamState | None:
        conn = self._reader
        if conn is None:
            raise StorageError("the store is closed")
        try:
            return self._table.lookup(conn, path)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read stream {path!r}: {exc}") from exc

    def _live(self, path: str, now: float) -> StreamState:
        state = self._lookup(path)
        if state is None or (not state.soft_deleted and is_expired(state, now)):
            raise StreamNotFound(f"no stream at {path!r}")
        if state.soft_deleted:
            raise StreamGone(f"stream {path!r} was deleted")
        return state

    async def head(self, path: str) -> StreamInfo:
        if self._writer is None:
            await self._ready()
        return self._live(path, time.time()).info()

    async def read(
        self, path: str, start: int, *, max_bytes: int = DEFAULT_MAX_READ_BYTES
    ) -> ReadResult:
        if self._writer is None:
            await self._ready()
        now = time.time()
        state = self._live(path, now)
        tail, closed, sid = state.tail, state.closed, state.stream_id
        if start > tail or start < 0:
            raise InvalidRequest("offset is beyond the stream's tail")
        start = max(start, state.log_start)
        state.last_access = now
        self._table.access_dirty.add(path)
        if start == tail:
            return ReadResult([], start, start, tail, closed, sid)
        cache = self._caches.get(sid)
        if cache is not None and cache.covers(start, tail):
            window = cache.items[start - cache.start : tail - cache.start]
            payloads, _ = take_within(window, max_bytes)
        else:
            segments = self._segments(state, start, tail)
            try:
                if self._general(state):
                    json_mode = is_json_content_type(state.config.content_type)
                    payloads = await asyncio.to_thread(
                        self._entries_in_thread, segments, max_bytes, json_mode
                    )
                elif tail - start <= LOOP_READ_MAX_MESSAGES:
                    assert self._reader is not None
                    payloads = read_segments(self._reader, segments, max_bytes)
                else:
                    payloads = await asyncio.to_thread(self._read_in_thread, segments, max_bytes)
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read stream {path!r}: {exc}") from exc
        return ReadResult(payloads, start, start + len(payloads), tail, closed, sid)

    def _segments(self, state: StreamState, start: int, end: int) -> list[tuple[int, int, int]]:
        """The ``(stream_id, lo, hi)`` row ranges holding positions [start, end), fork-stitched."""
        segments: list[tuple[int, int, int]] = []
        if start < state.fork_base:
            assert state.fork is not None
            source = self._lookup(state.fork.source)
            if source is None:
                raise StorageError(f"the fork source of {state.path!r} is missing")
            segments = self._segments(source, start, min(end, state.fork_base))
        if end > state.fork_base:
            segments.append((state.stream_id, max(start, state.fork_base), end))
        return segments

    def _thread_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(str(self.db_path), self.fsync, readonly=True)
            self._local.conn = conn
            self._thread_conns.append(conn)
        return conn

    def _read_in_thread(self, segments: list[tuple[int, int, int]], budget: int) -> list[bytes]:
        return read_segments(self._thread_conn(), segments, budget)

    def _entries_in_thread(
        self, segments: list[tuple[int, int, int]], budget: int, json_mode: bool
    ) -> list[bytes]:
        return read_entries(
            self._thread_conn(), self._files, segments, budget, self._values, json_mode
        )

    async def list_paths(self, prefix: str = "", *, include_internal: bool = False) -> list[str]:
        await self._ready()
        try:
            paths = await asyncio.to_thread(self._list_in_thread, prefix, time.time())
        except sqlite3.Error as exc:
            raise StorageError(f"cannot list streams: {exc}") from exc
        return paths if include_internal else [p for p in paths if not is_internal(p)]

    # -- Kafka entries ------------------------------------------------------------------

    async def produce(self, path: str, batch: KafkaBatch) -> ProduceResult:
        if self._writer is None:
            await self._ready()
        result: ProduceResult = await self._enqueue("produce", path, batch)
        return result

    async def delete_records(self, path: str, before: int) -> int:
        start: int = await self._submit("truncate", path, before)
        return start

    async def init_producer_id(self) -> tuple[int, int]:
        result: tuple[int, int] = await self._submit("producer_id", "", None)
        return result

    def _general(self, state: StreamState) -> bool:
        """True if ``state`` or a fork source it reads holds Kafka batches."""
        while True:
            if state.kafka_entries:
                return True
            if state.fork is None:
                return False
            source = self._lookup(state.fork.source)
            if source is None:
                return False
            state = source

    async def read_batches(
        self, path: str, start: int, *, max_bytes: int = DEFAULT_MAX_READ_BYTES
    ) -> BatchReadResult:
        if self._writer is None:
            await self._ready()
        now = time.time()
        state = self._live(path, now)
        tail, log_start, sid = state.tail, state.log_start, state.stream_id
        if start < log_start or start > tail:
            raise OffsetOutOfRange(
                f"offset {start} is outside [{log_start}, {tail}]", log_start=log_start, tail=tail
            )
        state.last_access = now
        self._table.access_dirty.add(path)
        if start == tail:
            return BatchReadResult([], start, start, tail, log_start, sid)
        segments = self._segments(state, start, tail)
        try:
            if state.kafka_entries or tail - start <= LOOP_READ_MAX_MESSAGES:
                batches, end = self._batches_from(self._conn(), segments, start, tail, max_bytes)
            else:
                batches, end = await asyncio.to_thread(
                    self._batches_in_thread, segments, start, tail, max_bytes
                )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read stream {path!r}: {exc}") from exc
        return BatchReadResult(batches, start, end, tail, log_start, sid)

    def _batches_from(
        self,
        conn: sqlite3.Connection,
        segments: list[tuple[int, int, int]],
        start: int,
        tail: int,
        max_bytes: int,
    ) -> tuple[list[bytes], int]:
        entries = iter_entries(conn, self._files, segments)
        sid = segments[-1][0]
        return assemble_batches(sid, entries, start, tail, max_bytes, self._batch_cache)

    def _batches_in_thread(
        self, segments: list[tuple[int, int, int]], start: int, tail: int, max_bytes: int
    ) -> tuple[list[bytes], int]:
        return self._batches_from(self._thread_conn(), segments, start, tail, max_bytes)

    async def offset_for_time(self, path: str, timestamp_ms: int) -> tuple[int, int] | None:
        if self._writer is None:
            await self._ready()
        state = self._live(path, time.time())
        if state.log_start >= state.tail:
            return None
        segments = self._segments(state, state.log_start, state.tail)
        try:
            return await asyncio.to_thread(self._time_in_thread, segments, timestamp_ms)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read stream {path!r}: {exc}") from exc

    def _time_in_thread(
        self, segments: list[tuple[int, int, int]], target: int
    ) -> tuple[int, int] | None:
        return find_time(self._thread_conn(), self._files, segments, target)

    # -- the key-value table ----------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = self._reader
        if conn is None:
            raise StorageError("the store is closed")
        return conn

    def _kv_load(self, namespace: str, key: str) -> KvItem | None:
        row = (
            self._conn()
            .execute(
                "SELECT value, version FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            )
            .fetchone()
        )
        return None if row is None else KvItem(bytes(row[0]), row[1])

    def _kv_load_prefix(self, namespace: str, prefix: str) -> list[tuple[str, KvItem]]:
        rows = self._thread_conn().execute(
            "SELECT key, value, version FROM kv WHERE namespace = ? AND key >= ? ORDER BY key",
            (namespace, prefix),
        )
        out: list[tuple[str, KvItem]] = []
        for key, value, version in rows:
            if not key.startswith(prefix):
                break
            out.append((key, KvItem(bytes(value), version)))
        return out

    async def kv_get(self, namespace: str, key: str) -> KvItem | None:
        if self._writer is None:
            await self._ready()
        try:
            return self._table.kv.read(namespace, key, self._kv_load)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read {namespace}/{key}: {exc}") from exc

    async def kv_scan(self, namespace: str, prefix: str = "") -> list[tuple[str, KvItem]]:
        if self._writer is None:
            await self._ready()
        try:
            return await asyncio.to_thread(
                self._table.kv.scan, namespace, prefix, self._kv_load_prefix
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot scan {namespace}: {exc}") from exc

    async def kv_write(self, writes: Sequence[KvWrite]) -> list[int]:
        versions: list[int] = await self._submit("kv", "", list(writes))
        return versions

    def _list_in_thread(self, prefix: str, now: float) -> list[str]:
        paths: list[str] = []
        rows = self._thread_conn().execute(
            "SELECT path, expires_unix, ttl_seconds, last_access FROM streams"
            " WHERE path >= ? AND soft_deleted = 0 ORDER BY path",
            (prefix,),
        )
        for path, expires_unix, ttl, last_access in rows:
            if not path.startswith(prefix):
                break
            state = self._table.states.get(path)
            if state is not None:
                limit = deadline(state)
            elif expires_unix is not None:
                limit = expires_unix
            else:
                limit = None if ttl is None else last_access + ttl
            if limit is None or now < limit:
                paths.append(path)
        return paths
