"""The one writer thread of ``SqliteStore``: group commit.

Every create, append, produce, delete, truncation, key-value write, producer-id allocation and
reclaim is a ``Job`` put on a queue. The writer thread takes
all the jobs waiting, applies them in arrival order inside one transaction and commits once.
While it commits, new jobs queue up and form the next batch, so the more concurrent writers
there are, the more appends share each commit.

Only once a batch is as durable as the fsync mode promises are its new states published to
readers and its callers answered. Under ``fsync="always"`` that is after an fsync of the WAL
run by a second thread (``_sqlite_sync``), so the writer already commits the next batch while
the previous one is being synced (pipelined group commit); the other modes publish right after
the COMMIT.

Each job is decided by the shared rules (``_rules.plan_append``, ``_create.plan_create``)
against a working copy of its stream's newest committed state, already including the earlier
jobs of the same batch. A refused job carries its own error and leaves the others alone; if the
commit itself fails, every job of the batch gets ``StorageError`` and the touched states are
reloaded from the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from millstream._stats import SIZE_BUCKETS, Histogram

from ._batches import stamp_batch
from ._create import plan_create
from ._errors import (
    LogError,
    StorageError,
    StreamGone,
    StreamNotFound,
)
from ._model import (
    AppendRequest,
    AppendResult,
    CreateRequest,
    CreateResult,
    KafkaBatch,
    KvItem,
    KvWrite,
    ProduceResult,
    is_json_content_type,
)
from ._rules import (
    KafkaProducerState,
    StreamState,
    apply_append,
    apply_produce,
    is_expired,
    plan_append,
    plan_kv,
    plan_produce,
    plan_truncate,
)
from ._sqlite_files import BatchFiles, Buffer
from ._sqlite_schema import (
    INSERT_STREAM,
    TIME_INDEX_STEP_MS,
    UPDATE_STREAM,
    FsyncMode,
    insert_flat,
    insert_many,
    kafka_producer_row,
    stream_row,
)
from ._sqlite_state import StateTable, TailCaches, copy_state
from ._sqlite_sync import WalFile, WalSyncer
from ._views import http_payloads

__all__ = ["Counters", "Job", "Writer"]

JobKind = Literal[
    "create", "append", "produce", "delete", "truncate", "kv", "producer_id", "reclaim"
]

MAX_BATCH = 4096  # jobs per transaction (plus one loop iteration's); more wait for the next one
INTERVAL_FSYNC_SECONDS = 0.1  # fsync="interval": the most acknowledged writes a crash can lose
ACCESS_FLUSH_SECONDS = 5.0  # how often sliding-TTL renewals from reads reach the file
#: fsync="always": checkpoint once about this many pages were written to the WAL (~4 MiB, where
#: SQLite's automatic checkpoint would run). Small on purpose: once the WAL has been reset, new
#: frames overwrite blocks the file already has, and an fdatasync with no size change to record
#: measured ~40 % cheaper here (210 µs against 370 µs) than one on a growing 16 MiB WAL.
CHECKPOINT_FRAMES = 1000


@dataclass(slots=True, eq=False)
class Job:
    kind: JobKind
    path: str
    request: Any
    future: asyncio.Future[Any] | None
    result: Any = None
    error: BaseException | None = None


@dataclass(slots=True)
class Counters:
    """The store-wide counters the writer hands out (persisted in ``meta`` with each use)."""

    kv_version: int
    producer_id: int


class _Batch:
    """One transaction's worth of jobs: working copies of states and the rows to write."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        table: StateTable,
        now: float,
        counters: Counters,
        files: BatchFiles,
    ) -> None:
        self.conn = conn
        self.table = table
        self.files = files
        self.now = now
        self.timestamp_ms = int(now * 1000)
        self.work: dict[str, StreamState | None] = {}  # None: removed in this batch
        self.values: list[object] = []  # messages rows end to end: stream_id, seq, data, ts
        self.batch_values: list[object] = []  # Kafka batch rows: stream_id, seq, data, ts, span
        self.external_values: list[object] = []  # the same plus file, pos, size (batch files)
        self.index_values: list[object] = []  # time_index rows: stream_id, ts, seq
        self.dirty: set[str] = set()  # paths whose streams row needs an UPDATE
        self.producers: dict[tuple[int, str], tuple[int, int]] = {}
        self.kafka_producers: dict[tuple[int, int], KafkaProducerState] = {}
        self.dropped: set[int] = set()
        self.changed: set[str] = set()  # paths whose live readers to wake
        self.cached: dict[int, tuple[int, list[bytes]]] = {}  # stream_id -> (start, payloads)
        self.uncache: set[int] = set()  # streams whose tail cache a batch entry interrupts
        self.truncated: set[int] = set()  # streams whose log start moved
        self.nbytes = 0  # payload bytes written (to estimate WAL growth)
        self.counters = Counters(counters.kv_version, counters.producer_id)
        self.kv_changes: dict[tuple[str, str], KvItem | None] = {}  # this batch's kv writes
        self.kv_before: dict[tuple[str, str], KvItem | None] = {}  # committed values replaced

    def get(self, path: str) -> StreamState | None:
        if path in self.work:
            return self.work[path]
        state = self.table.latest(self.conn, path)
        if state is None:
            return None
        working = self.work[path] = copy_state(state)
        return working

    def _add_messages(self, state: StreamState, start: int, payloads: Sequence[bytes]) -> None:
        sid, ts = state.stream_id, self.timestamp_ms
        if len(payloads) == 1:  # the common case, once per request: no loop, no copies
            data = payloads[0]
            self.values += (sid, start, data, ts)
            self.nbytes += len(data)
        else:
            values = self.values
            for i, data in enumerate(payloads):
                values += (sid, start + i, data, ts)
            self.nbytes += sum(map(len, payloads))
        entry = self.cached.get(sid)
        if entry is None:
            self.cached[sid] = (start, list(payloads))
        else:
            entry[1].extend(payloads)

    def _stamp(self, state: StreamState, seq: int, stamp: int) -> None:
        """Keep the stream's highest timestamp, and index it sparsely (see ``time_index``)."""
        if stamp > state.max_timestamp:
            # The first entry needs no index row: a lookup starts at the log start anyway.
            if state.max_timestamp >= 0 and stamp >= state.time_indexed + TIME_INDEX_STEP_MS:
                self.index_values += (state.stream_id, stamp, seq)
                state.time_indexed = stamp
            elif state.max_timestamp < 0:
                state.time_indexed = stamp
            state.max_timestamp = stamp

    # -- jobs ---------------------------------------------------------------------------

    def append(self, path: str, request: AppendRequest) -> AppendResult:
        state = self._live(path)
        plan = plan_append(state, request)
        if request.kv and plan.outcome != "duplicate":
            self._kv_apply(request.kv)  # raises KvConflict before anything is written
        start = state.tail
        result = apply_append(state, request, plan, self.now)
        if plan.outcome == "duplicate":
            return result
        if plan.outcome == "appended":
            self._stamp(state, start, self.timestamp_ms)
            self._add_messages(state, start, request.messages)
        if plan.producer is not None:
            claim = plan.producer
            self.producers[(state.stream_id, claim.producer_id)] = (claim.epoch, claim.seq)
        self.dirty.add(path)
        self.changed.add(path)
        return result

    def produce(self, path: str, batch: KafkaBatch) -> ProduceResult:
        state = self._live(path)
        plan = plan_produce(state, batch)
        base = state.tail
        stamp = self.timestamp_ms if batch.log_append_time else batch.max_timestamp_ms
        known = state.max_timestamp
        result = apply_produce(state, batch, plan, self.timestamp_ms, self.now)
        if plan.duplicate is not None:
            return result
        state.max_timestamp = known
        self._stamp(state, base, stamp)
        parts: tuple[Buffer, ...]
        if batch.log_append_time:
            parts = (stamp_batch(batch.data, base, self.timestamp_ms),)
        else:  # the base offset is not covered by the CRC: written apart, the rest uncopied
            parts = (base.to_bytes(8, "big", signed=True), memoryview(batch.data)[8:])
        sid, size = state.stream_id, len(batch.data)
        if size >= self.files.min_size:
            file, position = self.files.stage(parts, size)
            self.external_values += (
                sid,
                base,
                b"",
                stamp,
                batch.record_count,
                file,
                position,
                size,
            )
        else:
            self.batch_values += (sid, base, b"".join(parts), stamp, batch.record_count)
            self.nbytes += size
        self.cached.pop(sid, None)
        self.uncache.add(sid)
        if plan.check_producer:
            pid = batch.producer_id
            self.kafka_producers[(sid, pid)] = state.kafka_producers[pid]
        self.dirty.add(path)
        self.changed.add(path)
        return result

    def truncate(self, path: str, before: int) -> int:
        state = self._live(path)
        target = plan_truncate(state, before)
        if target is None:
            return state.log_start
        self.flush_rows()
        sid = state.stream_id
        below = "AND seq < ? AND seq + coalesce(span, 1) <= ?"
        if state.kafka_entries:
            self._release_files(sid, below, target, target)
        self.conn.execute(
            f"DELETE FROM messages WHERE stream_id = ? {below}", (sid, target, target)
        )
        self.conn.execute("DELETE FROM time_index WHERE stream_id = ? AND seq < ?", (sid, target))
        state.log_start = target
        self.truncated.add(sid)
        self.dirty.add(path)
        self.changed.add(path)
        return target

    def producer_id(self, _path: str, _request: None) -> tuple[int, int]:
        pid = self.counters.producer_id
        self.counters.producer_id += 1
        return pid, 0

    def kv(self, _path: str, writes: list[KvWrite]) -> list[int]:
        return self._kv_apply(writes)

    def _kv_apply(self, writes: Sequence[KvWrite]) -> list[int]:
        plan = plan_kv(writes, self._kv_current, self.counters.kv_version)
        for where, item in plan.changes.items():
            self.kv_changes[where] = item
        self.counters.kv_version = plan.next_version
        return plan.versions

    def _kv_current(self, namespace: str, key: str) -> KvItem | None:
        where = (namespace, key)
        if where in self.kv_changes:
            return self.kv_changes[where]
        row = self.conn.execute(
            "SELECT value, version FROM kv WHERE namespace = ? AND key = ?", where
        ).fetchone()
        item = None if row is None else KvItem(bytes(row[0]), row[1])
        self.kv_before[where] = item
        return item

    def create(self, path: str, request: CreateRequest) -> CreateResult:
        plan = plan_create(
            path,
            request,
            self.now,
            get=self.get,
            live=self._live,
            payload_at=self._payload_at,
            drop=self.drop,
        )
        if plan.existing is not None:
            return CreateResult(created=False, info=plan.existing.info())
        config, source, resolved, base = plan.config, plan.source, plan.fork, plan.fork_base
        partial = plan.partial
        own = [partial] if partial is not None else []
        own.extend(request.messages)
        expires = config.expires_at
        cursor = self.conn.execute(
            INSERT_STREAM,
            (
                path,
                config.content_type,
                config.ttl_seconds,
                expires.isoformat() if expires is not None else None,
                expires.timestamp() if expires is not None else None,
                base + len(own),
                int(request.closed),
                source.stream_id if source is not None else None,
                resolved.offset if resolved is not None else None,
                resolved.sub_offset if resolved is not None else 0,
                base,
                self.now,
                source.log_start if source is not None else 0,
                self.timestamp_ms if own else -1,
            ),
        )
        assert cursor.lastrowid is not None
        state = StreamState(path=path, stream_id=cursor.lastrowid, config=config)
        state.last_access = self.now
        state.fork, state.fork_base = resolved, base
        state.log_start = source.log_start if source is not None else 0
        state.tail = base
        state.closed = request.closed
        if own:
            self._stamp(state, base, self.timestamp_ms)
            self._add_messages(state, base, own)
            state.tail = base + len(own)
        if source is not None:
            source.refcount += 1
            self.dirty.add(source.path)
        self.work[path] = state
        self.changed.add(path)  # subscriptions discover new streams (PROTOCOL.md §6.2)
        return CreateResult(created=True, info=state.info())

    def delete(self, path: str, _request: None) -> None:
        state = self._live(path)
        self.drop(state)
        self.changed.add(path)

    def reclaim(self, _path: str, now: float | None) -> int:
        moment = self.now if now is None else now
        # The file's last_access may lag memory (renewals are persisted lazily), never lead it,
        # so this finds a superset of the expired streams; each is re-checked against memory.
        candidates = self.conn.execute(
            "SELECT path FROM streams WHERE soft_deleted = 0 AND ("
            " (expires_unix IS NOT NULL AND expires_unix <= ?) OR (expires_unix IS NULL"
            " AND ttl_seconds IS NOT NULL AND last_access + ttl_seconds <= ?))",
            (moment, moment),
        ).fetchall()
        count = 0
        for (path,) in candidates:
            state = self.get(path)
            if state is not None and not state.soft_deleted and is_expired(state, moment):
                self.drop(state)
                self.changed.add(path)
                count += 1
        return count

    # -- helpers ------------------------------------------------------------------------

    def _live(self, path: str) -> StreamState:
        state = self.get(path)
        if state is None:
            raise StreamNotFound(f"no stream at {path!r}")
        if state.soft_deleted:
            raise StreamGone(f"stream {path!r} was deleted")
        if is_expired(state, self.now):
            self.drop(state)
            self.changed.add(path)
            raise StreamNotFound(f"no stream at {path!r}")
        return state

    def _payload_at(self, state: StreamState, position: int) -> bytes | None:
        while position < state.fork_base:
            assert state.fork is not None
            source = self.get(state.fork.source)
            assert source is not None, "a fork's source outlives it"
            state = source
        self.flush_rows()
        row = self.conn.execute(
            "SELECT seq, data, span, file, pos, size FROM messages WHERE stream_id = ?"
            " AND seq <= ? ORDER BY seq DESC LIMIT 1",
            (state.stream_id, position),
        ).fetchone()
        if row is None:
            return None
        seq, data, span, file, at, size = row
        if file is not None:
            data = self.files.read(file, at, size)
        if span is None:
            return bytes(data) if seq == position else None
        payloads = http_payloads(bytes(data), is_json_content_type(state.config.content_type))
        return payloads[position - seq] if position - seq < len(payloads) else None

    def drop(self, state: StreamState) -> None:
        """Remove ``state`` now, or soft-delete it while forks reference it; cascade upward."""
        if state.refcount > 0:
            if not state.soft_deleted:
                state.soft_deleted = True
                self.dirty.add(state.path)
            return
        sid = state.stream_id
        self.flush_rows()
        if state.kafka_entries:
            self._release_files(sid)
        self.conn.execute("DELETE FROM messages WHERE stream_id = ?", (sid,))
        self.conn.execute("DELETE FROM producers WHERE stream_id = ?", (sid,))
        if state.kafka_entries:
            self.conn.execute("DELETE FROM kafka_producers WHERE stream_id = ?", (sid,))
        if state.max_timestamp >= 0:
            self.conn.execute("DELETE FROM time_index WHERE stream_id = ?", (sid,))
        self.conn.execute("DELETE FROM streams WHERE id = ?", (sid,))
        self.work[state.path] = None
        self.dirty.discard(state.path)
        self.dropped.add(sid)
        self.cached.pop(sid, None)
        if state.fork is not None:
            source = self.get(state.fork.source)
            if source is not None:
                source.refcount -= 1
                self.dirty.add(source.path)
                if source.soft_deleted and source.refcount == 0:
                    self.drop(source)

    def _release_files(self, sid: int, where: str = "", *args: object) -> None:
        """Count the batch-file rows of ``sid`` (matching ``where``) about to be deleted."""
        rows = self.conn.execute(
            "SELECT file, count(*) FROM messages WHERE stream_id = ? AND file IS NOT NULL"
            f" {where} GROUP BY file",
            (sid, *args),
        )
        for file, count in rows:
            self.files.release(file, count)

    def flush_rows(self) -> None:
        if self.external_values:
            self.files.write()  # the rows' bytes are in the file before the rows are read
            insert_flat(self.conn, "external", self.external_values)
            self.external_values = []
        if self.values:
            insert_flat(self.conn, "messages", self.values)
            self.values = []
        if self.batch_values:
            insert_flat(self.conn, "batches", self.batch_values)
            self.batch_values = []

    def flush(self, counters: Counters) -> None:
        """Write everything the batch decided (entries, stream rows, producer and key-value
        state, counters)."""
        self.flush_rows()
        if self.index_values:
            insert_flat(self.conn, "time_index", self.index_values)
        kafka = [
            kafka_producer_row(sid, pid, producer)
            for (sid, pid), producer in self.kafka_producers.items()
            if sid not in self.dropped
        ]
        if kafka:
            insert_many(self.conn, "kafka_producers", kafka)
        if self.kv_changes:
            self._flush_kv()
        self.files.save(self.conn)
        if self.counters != counters:
            self.conn.executemany(
                "UPDATE meta SET value = ? WHERE name = ?",
                [
                    (self.counters.kv_version, "kv_version"),
                    (self.counters.producer_id, "producer_id"),
                ],
            )
        updates = [stream_row(s) for p in self.dirty if (s := self.work.get(p)) is not None]
        if updates:
            self.conn.executemany(UPDATE_STREAM, updates)
        producers = [
            (sid, pid, epoch, seq)
            for (sid, pid), (epoch, seq) in self.producers.items()
            if sid not in self.dropped
        ]
        if producers:
            insert_many(self.conn, "producers", producers)

    def _flush_kv(self) -> None:
        upserts = [
            (ns, key, item.value, item.version)
            for (ns, key), item in self.kv_changes.items()
            if item is not None
        ]
        deletes = [where for where, item in self.kv_changes.items() if item is None]
        if upserts:
            self.conn.executemany(
                "INSERT INTO kv (namespace, key, value, version) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
                " version = excluded.version",
                upserts,
            )
        if deletes:
            self.conn.executemany("DELETE FROM kv WHERE namespace = ? AND key = ?", deletes)


@dataclass(slots=True, eq=False)
class _Committed:
    """A committed batch on its way to being acknowledged."""

    number: int
    batch: _Batch
    jobs: list[Job]
    doomed: list[int]  # batch files with no rows left, deleted once this is durable


class Writer:
    """Owns the write connection and the thread that commits batches of jobs."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        table: StateTable,
        caches: TailCaches,
        loop: asyncio.AbstractEventLoop,
        notify: Callable[[str], None],
        *,
        fsync: FsyncMode,
        wal_path: str,
        counters: Counters,
        files: BatchFiles,
    ) -> None:
        self._conn = conn
        self.files = files
        self.counters = counters
        self._table = table
        self._caches = caches
        self._loop = self.loop = loop
        self._notify = notify
        self._fsync = fsync
        self.wal = WalFile(wal_path)
        self._syncer: WalSyncer[_Committed] | None = None
        if fsync == "always":
            # We checkpoint ourselves (``Writer._checkpoint``): see _sqlite_sync's docstring.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._syncer = WalSyncer(self.wal, self._publish, self._fail_committed)
        self._queue: queue.SimpleQueue[list[Job] | None] = queue.SimpleQueue()
        self._outbox: list[Job] = []  # submitted in this event-loop iteration, not yet queued
        self._unsynced = False
        self._unsynced_doomed: list[int] = []  # fsync="interval": deleted after the next sync
        self._last_sync = time.monotonic()
        self._last_access_flush = time.monotonic()
        self._number = 0
        self._wal_estimate = 0  # frames (pages) written since the last checkpoint, estimated
        self.interval_failure: StorageError | None = None
        self.batches = 0
        self.jobs = 0
        self.checkpoints = 0
        self.commit_sizes = Histogram(SIZE_BUCKETS)  # /metrics: jobs per group commit
        self._thread = threading.Thread(target=self._run, name="millstream-sqlite-writer")
        self._thread.daemon = True

    @property
    def failure(self) -> StorageError | None:
        """Set for good once data the store wrote may not be on disk (a failed fsync)."""
        if self._syncer is not None and self._syncer.failure is not None:
            return self._syncer.failure
        return self.interval_failure

    @property
    def syncs(self) -> int:
        return self._syncer.syncs if self._syncer is not None else 0

    def start(self) -> None:
        if self._syncer is not None:
            self._syncer.start()
        self._thread.start()

    def submit(self, job: Job) -> None:
        """On the event loop: queue ``job``; the writer gets it at the end of this iteration.

        The jobs of one loop iteration reach the writer as one queue item: one wake-up of the
        writer thread, once the loop is about to wait for I/O, instead of one per request
        while the loop still has requests to parse (each costing a futex wake-up and a GIL
        hand-off between the two threads).
        """
        outbox = self._outbox
        outbox.append(job)
        if len(outbox) == 1:
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """On the event loop: hand the jobs submitted so far to the writer thread."""
        jobs, self._outbox = self._outbox, []
        if jobs:
            self._queue.put(jobs)

    def stop(self) -> None:
        """Finish every queued job, persist TTL renewals, close the connection (blocking).

        Call ``flush`` on the event loop first, so jobs submitted just before are included.
        """
        self._queue.put(None)
        self._thread.join()

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=INTERVAL_FSYNC_SECONDS if self._unsynced else 1.0)
            except queue.Empty:
                self._housekeeping()
                continue
            jobs: list[Job] = []
            while item is not None:
                jobs.extend(item)
                if len(jobs) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stopping = item is None
            if jobs:
                self._commit(jobs)
            self._housekeeping()
        if self._syncer is not None:
            self._syncer.stop()
        self._flush_access(force=True)
        if self.failure is None:
            with contextlib.suppress(OSError):
                self.wal.sync()
        self.wal.close()
        self._conn.close()

    def _commit(self, jobs: list[Job]) -> None:
        failure = self.failure
        if failure is not None:
            for job in jobs:
                job.error = failure
            self._deliver(jobs, set())
            return
        batch = _Batch(self._conn, self._table, time.time(), self.counters, self.files)
        number = self._number = self._number + 1
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            for job in jobs:
                try:
                    job.result = getattr(batch, job.kind)(job.path, job.request)
                except LogError as exc:
                    job.error = exc
            batch.flush(self.counters)
            if self._fsync != "never":
                self._sync_files()  # the batch files' bytes are on disk before rows name them
            if self._syncer is not None:
                # Staged before COMMIT: from then on no reader loads these paths from the file.
                self._table.stage(number, batch.work)
                if batch.kv_changes:
                    self._table.kv.stage(number, batch.kv_changes, batch.kv_before)
            self._conn.execute("COMMIT")
        except Exception as exc:
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            self.files.rolled_back()
            if self._syncer is not None:
                # The failed batch's working copies share producer maps with the states of
                # earlier batches: let those be published first, then reload from the file.
                self._table.unstage(number)
                self._table.kv.unstage(number)
                self._syncer.drain()
            self._table.evict(batch.work)
            for job in jobs:
                job.result = None
                job.error = StorageError(f"the write was not committed: {exc}")
            self._deliver(jobs, set())
            return
        self.files.committed()
        self.batches += 1
        self.jobs += len(jobs)
        self.commit_sizes.observe(len(jobs))
        self.counters = batch.counters
        committed = _Committed(number, batch, jobs, self.files.take_doomed())
        if self._syncer is None:
            self._unsynced = self._fsync == "interval"
            self._publish(committed)
            return
        # Nothing else waiting: fsync right here (a thread hand-off would only add latency).
        # Otherwise the fsync thread syncs it while this thread commits what is waiting.
        if not (self._queue.empty() and self._syncer.sync_inline(committed)):
            self._syncer.hand_over(committed)
            self._syncer.wait_taken()
        # A commit rewrites at least the messages, streams and producers pages it touched.
        self._wal_estimate += 3 + batch.nbytes // 4000
        if self._wal_estimate >= CHECKPOINT_FRAMES:
            self._checkpoint()

    def _sync_files(self) -> None:
        """fsync the batch files this commit wrote; a failure fails the store closed, as a
        failed WAL fsync does (what was written may be gone from the page cache)."""
        try:
            self.files.sync()
        except OSError as exc:
            reason = f"fsync of a batch file failed: {exc}"
            if self._syncer is not None:
                raise self._syncer.fail_closed(reason) from exc
            self.interval_failure = StorageError(
                f"{reason}; the store stopped accepting writes (restart the server once the"
                " disk is healthy)"
            )
            raise self.interval_failure from exc

    def _checkpoint(self) -> None:
        """fsync="always": move the WAL into the database file (see _sqlite_sync's docstring)."""
        assert self._syncer is not None
        self._wal_estimate = 0
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            # A checkpoint syncs the WAL and the database file: it failing means I/O trouble.
            self._syncer.fail_closed(f"a checkpoint of the write-ahead log failed: {exc}")
            return
        self.checkpoints += 1

    def _publish(self, committed: _Committed) -> None:
        """The batch is as durable as the mode promises: show it to readers, answer callers.

        Runs on the fsync thread under "always" (the only thread touching the tail caches
        then), on the writer thread otherwise.
        """
        batch = committed.batch
        for sid in batch.uncache:
            self._caches.drop(sid)
        for sid, (start, payloads) in batch.cached.items():
            if sid not in batch.dropped:
                self._caches.extend(sid, start, payloads)
        for sid in batch.dropped:
            self._caches.drop(sid)
        self._table.publish(batch.work, committed.number)
        if batch.kv_changes and self._syncer is not None:
            self._table.kv.publish(committed.number)
        if committed.doomed:
            if self._fsync == "interval":  # durable only after the next fsync of the WAL
                self._unsynced_doomed.extend(committed.doomed)
            else:
                self.files.delete(committed.doomed)
        self._deliver(committed.jobs, batch.changed)

    def _fail_committed(self, committed: _Committed, error: StorageError) -> None:
        for job in committed.jobs:
            job.result = None
            job.error = error
        self._deliver(committed.jobs, set())

    def _deliver(self, jobs: list[Job], changed: set[str]) -> None:
        # RuntimeError: the loop is closed, so nobody is waiting any more
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._resolve, jobs, changed)

    def _resolve(self, jobs: list[Job], changed: set[str]) -> None:
        """On the event loop: answer every caller, then wake live readers."""
        for job in jobs:
            future = job.future
            if future is None or future.done():
                continue
            if job.error is not None:
                future.set_exception(job.error)
            else:
                future.set_result(job.result)
        for path in changed:
            self._notify(path)

    def _housekeeping(self) -> None:
        if self._unsynced and time.monotonic() - self._last_sync >= INTERVAL_FSYNC_SECONDS:
            self._sync_interval()
        self._flush_access()
        self._table.trim(time.time())

    def _sync_interval(self) -> None:
        """fsync="interval": push committed WAL frames to disk (SQLite's NORMAL does not)."""
        try:
            self.wal.sync()
        except OSError as exc:
            if self.interval_failure is None:
                self.interval_failure = StorageError(
                    f"fsync of the write-ahead log failed: {exc}; the store stopped accepting"
                    " writes (restart the server once the disk is healthy)"
                )
        self._unsynced = False
        self._last_sync = time.monotonic()
        if self._unsynced_doomed and self.interval_failure is None:
            doomed, self._unsynced_doomed = self._unsynced_doomed, []
            self.files.delete(doomed)

    def _flush_access(self, *, force: bool = False) -> None:
        """Persist sliding-TTL renewals done by reads, at most every ACCESS_FLUSH_SECONDS."""
        table = self._table
        if not table.access_dirty:
            return
        if not force and time.monotonic() - self._last_access_flush < ACCESS_FLUSH_SECONDS:
            return
        self._last_access_flush = time.monotonic()
        paths, table.access_dirty = table.access_dirty, set()
        rows = [
            (state.last_access, state.stream_id)
            for path in list(paths)
            if (state := table.states.get(path)) is not None
        ]
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("UPDATE streams SET last_access = ? WHERE id = ?", rows)
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            table.access_dirty |= paths  # try again next time
