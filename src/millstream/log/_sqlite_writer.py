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
from collections.abc import Callable
from dataclasses import dataclass

from millstream._stats import SIZE_BUCKETS, Histogram

from ._batch import BatchRules, Counters, Job, answer_jobs
from ._errors import LogError, StorageError
from ._model import KvItem
from ._rules import StreamState
from ._sqlite_files import BatchFiles, Buffer
from ._sqlite_schema import (
    INSERT_STREAM,
    UPDATE_STREAM,
    FsyncMode,
    insert_flat,
    insert_many,
    kafka_producer_row,
    stream_row,
)
from ._sqlite_state import StateTable, TailCaches
from ._sqlite_sync import WalFile, WalSyncer

__all__ = ["Writer"]

MAX_BATCH = 4096  # jobs per transaction (plus one loop iteration's); more wait for the next one
INTERVAL_FSYNC_SECONDS = 0.1  # fsync="interval": the most acknowledged writes a crash can lose
ACCESS_FLUSH_SECONDS = 5.0  # how often sliding-TTL renewals from reads reach the file
#: fsync="always": checkpoint once about this many pages were written to the WAL (~4 MiB, where
#: SQLite's automatic checkpoint would run). Small on purpose: once the WAL has been reset, new
#: frames overwrite blocks the file already has, and an fdatasync with no size change to record
#: measured ~40 % cheaper here (210 µs against 370 µs) than one on a growing 16 MiB WAL.
CHECKPOINT_FRAMES = 1000


class _Batch(BatchRules):
    """One transaction's worth of jobs on the writer thread: the rules of ``BatchRules``, its
    storage hooks answered with SQL on the writer's connection."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        table: StateTable,
        now: float,
        counters: Counters,
        files: BatchFiles,
    ) -> None:
        super().__init__(now, counters)
        self.conn = conn
        self.table = table
        self.files = files
        self.external_values: list[object] = []  # batch rows plus file, pos, size (batch files)

    def _load(self, path: str) -> StreamState | None:
        return self.table.latest(self.conn, path)

    def _insert_stream(self, values: tuple[object, ...]) -> int:
        cursor = self.conn.execute(INSERT_STREAM, values)
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _delete_stream_rows(self, state: StreamState) -> None:
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

    def _add_batch(
        self, stream_id: int, base: int, parts: tuple[Buffer, ...], stamp: int, records: int
    ) -> None:
        size = sum(len(part) for part in parts)
        if size < self.files.min_size:
            super()._add_batch(stream_id, base, parts, stamp, records)
            return
        file, position = self.files.stage(parts, size)
        self.external_values += (stream_id, base, b"", stamp, records, file, position, size)

    def _truncate_rows(self, state: StreamState, before: int) -> None:
        self.flush_rows()
        sid = state.stream_id
        below = "AND seq < ? AND seq + coalesce(span, 1) <= ?"
        if state.kafka_entries:
            self._release_files(sid, below, before, before)
        self.conn.execute(
            f"DELETE FROM messages WHERE stream_id = ? {below}", (sid, before, before)
        )
        self.conn.execute("DELETE FROM time_index WHERE stream_id = ? AND seq < ?", (sid, before))

    def _entry_at(self, stream_id: int, position: int) -> tuple[int, Buffer, int | None] | None:
        self.flush_rows()
        row = self.conn.execute(
            "SELECT seq, data, span, file, pos, size FROM messages WHERE stream_id = ?"
            " AND seq <= ? ORDER BY seq DESC LIMIT 1",
            (stream_id, position),
        ).fetchone()
        if row is None:
            return None
        seq, data, span, file, at, size = row
        if file is not None:
            data = self.files.read(file, at, size)
        return seq, data, span

    def _kv_row(self, namespace: str, key: str) -> KvItem | None:
        row = self.conn.execute(
            "SELECT value, version FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
        ).fetchone()
        return None if row is None else KvItem(bytes(row[0]), row[1])

    def _expired_candidates(self, moment: float) -> list[str]:
        # The file's last_access may lag memory (renewals are persisted lazily), never lead it,
        # so this finds a superset of the expired streams; each is re-checked against memory.
        rows = self.conn.execute(
            "SELECT path FROM streams WHERE soft_deleted = 0 AND ("
            " (expires_unix IS NOT NULL AND expires_unix <= ?) OR (expires_unix IS NULL"
            " AND ttl_seconds IS NOT NULL AND last_access + ttl_seconds <= ?))",
            (moment, moment),
        ).fetchall()
        return [path for (path,) in rows]

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
        answer_jobs(jobs)
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
