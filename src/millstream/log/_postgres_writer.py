"""Group commit for ``PostgresStore``: writer connections that each commit batches of jobs.

Every write (create, append, produce, delete, truncation, key-value write, producer id,
reclaim) becomes a ``Job``. A writer takes every job waiting for it and runs them in one
transaction, so concurrent writes of this node share one COMMIT (one WAL flush in
PostgreSQL). A node has a few writers (``writers=``); a path always goes to the same one, so
one client's requests on one stream keep their order; writers commit in parallel and
PostgreSQL's own group commit joins their WAL flushes.

One transaction:

1. **Lock and load.** ``SELECT ... FOR UPDATE`` the ``streams`` rows of every path the jobs
   name (and fork sources), ordered by id so two nodes lock in the same order; then the
   producer states the jobs claim; with key-value writes, the ``meta`` row holding the
   version counter (``FOR UPDATE``: key-value writers of all nodes take turns, which makes
   compare-and-set and absent-key checks exact) and the keys. Another node's conflicting
   append waits here until this transaction ends, then sees its result: two nodes never
   both apply appends decided on the same old state.
2. **Decide.** ``BatchRules`` (shared with SQLite) runs the rules on those rows. If it needs a
   row that was not loaded (a fork chain when a delete cascades, a message inside a byte
   sub-offset fork, more ids), it raises ``NeedMore``: the rows are loaded (locked) in the same
   transaction and the rules run again from scratch.
3. **Write and commit.** Rows are written with one ``unnest`` statement per table and the
   transaction commits. ``synchronous_commit`` is ``on``: the answer goes out after PostgreSQL
   flushed the commit to its WAL. Then ``pg_notify`` tells the other nodes which paths changed
   (``_announce`` says why not inside the transaction).

A deadlock or a concurrent create of the same path (unique violation) aborts the transaction;
the batch is retried from the start. Losing the connection fails the batch's jobs with
``StorageError`` (retryable: the commit may or may not have happened, as after any timeout)
and the writer reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._batch import BatchRules, Counters, Job, answer_jobs
from ._errors import LogError, StorageError
from ._model import AppendRequest, CreateRequest, KafkaBatch, KvItem, KvWrite, ProducerState
from ._postgres_schema import (
    LOAD_COLUMNS,
    RECLAIM_LOCK,
    kafka_producer_state,
    state_from_row,
)
from ._rules import StreamState
from ._sqlite_state import TailCaches

__all__ = ["NeedMore", "PgWriter", "encode_paths", "notify_channel"]

log = logging.getLogger("millstream.postgres")

MAX_BATCH = 4096
RETRIES = 8  # deadlocks and concurrent creates of one path abort a transaction: run it again


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of one millstream schema (channels are per database)."""
    return f"{schema}_changes"


_NOTIFY_MAX = 7000  # bytes per pg_notify payload (PostgreSQL's limit is 8000)


def encode_paths(paths: Iterable[str]) -> list[str]:
    """Payloads for ``pg_notify``: JSON lists of paths, each under the size limit."""
    out: list[str] = []
    chunk: list[str] = []
    size = 2
    for path in sorted(paths):
        cost = len(path.encode()) * 2 + 3  # escapes may double it
        if chunk and size + cost > _NOTIFY_MAX:
            out.append(json.dumps(chunk))
            chunk, size = [], 2
        chunk.append(path)
        size += cost
    if chunk:
        out.append(json.dumps(chunk))
    return out


def notify_sql(channel: str, payloads: Sequence[str]) -> str:
    """One simple-protocol query that sends ``payloads`` on ``channel`` in a transaction that
    commits asynchronously (it holds no data; the data's own COMMIT was flushed already).
    ``payloads`` are JSON (ASCII: ``json.dumps`` escapes the rest), quoted as literals."""
    sends = [
        f"SELECT pg_notify('{channel}', '{p.replace(chr(39), chr(39) * 2)}')" for p in payloads
    ]
    return "; ".join(["BEGIN", "SET LOCAL synchronous_commit = off", *sends, "COMMIT"])


class NeedMore(Exception):
    """The rules asked for rows the batch did not load; load them and decide again."""

    def __init__(
        self,
        *,
        paths: Iterable[str] = (),
        entries: Iterable[tuple[int, int]] = (),
        kv: Iterable[tuple[str, str]] = (),
        stream_ids: int = 0,
        producer_ids: int = 0,
    ) -> None:
        super().__init__("batch needs more rows")
        self.paths = set(paths)
        self.entries = set(entries)
        self.kv = set(kv)
        self.stream_ids = stream_ids
        self.producer_ids = producer_ids


@dataclass
class Loaded:
    """What one transaction loaded (and locked) for its batch."""

    rows: dict[str, Any] = field(default_factory=dict)  # path -> streams row or None
    producers: dict[int, list[tuple[str, int, int]]] = field(default_factory=dict)
    kafka: dict[int, list[tuple[int, int, int, str]]] = field(default_factory=dict)
    kv: dict[tuple[str, str], KvItem | None] = field(default_factory=dict)
    kv_version: int | None = None
    entries: dict[tuple[int, int], tuple[int, bytes, int | None] | None] = field(
        default_factory=dict
    )
    stream_ids: list[int] = field(default_factory=list)
    producer_ids: list[int] = field(default_factory=list)
    candidates: list[str] | None = None  # reclaim: expired paths (None: not asked)
    reclaim_lock: bool = False


class PgBatch(BatchRules):
    """The rules on loaded rows; deletes and inserts are recorded as ops, run at flush."""

    def __init__(self, now: float, loaded: Loaded, access: dict[int, float]) -> None:
        super().__init__(now, Counters(loaded.kv_version or 0, 0))
        self.loaded = loaded
        self.access = access
        self.ops: list[tuple[Any, ...]] = []
        self._states: dict[str, StreamState | None] = {}
        self._next_stream = 0
        self._next_producer = 0

    def _load(self, path: str) -> StreamState | None:
        if path in self._states:
            return self._states[path]
        rows = self.loaded.rows
        if path not in rows:
            raise NeedMore(paths=[path])
        row = rows[path]
        state = None if row is None else state_from_row(row)
        if state is not None:
            sid = state.stream_id
            state.last_access = max(state.last_access, self.access.get(sid, 0.0))
            state.producers = {
                pid: ProducerState(epoch, seq)
                for pid, epoch, seq in self.loaded.producers.get(sid, ())
            }
            state.kafka_producers = {
                pid: kafka_producer_state(epoch, seq, batches)
                for pid, epoch, seq, batches in self.loaded.kafka.get(sid, ())
            }
        self._states[path] = state
        return state

    def _cut(self) -> None:
        """Rows recorded so far are written before the op that follows (a delete or a
        truncation must see them, as in SQLite where they are flushed first)."""
        if self.values or self.batch_values:
            self.ops.append(("rows", self.values, self.batch_values))
            self.values, self.batch_values = [], []

    def _insert_stream(self, values: tuple[object, ...]) -> int:
        ids = self.loaded.stream_ids
        if self._next_stream >= len(ids):
            raise NeedMore(stream_ids=self._next_stream + 1 - len(ids))
        sid = ids[self._next_stream]
        self._next_stream += 1
        self.ops.append(("insert", (sid, *values)))
        return sid

    def _delete_stream_rows(self, state: StreamState) -> None:
        self._cut()
        self.ops.append(("delete", state.stream_id))

    def _truncate_rows(self, state: StreamState, before: int) -> None:
        self._cut()
        self.ops.append(("truncate", state.stream_id, before))

    def _entry_at(self, stream_id: int, position: int) -> tuple[int, bytes, int | None] | None:
        values = self.values  # written earlier in this batch (not in the database yet)
        for i in range(len(values) - 4, -1, -4):
            if values[i] == stream_id and values[i + 1] == position:
                return position, values[i + 2], None  # type: ignore[return-value]
        key = (stream_id, position)
        if key not in self.loaded.entries:
            raise NeedMore(entries=[key])
        return self.loaded.entries[key]

    def _kv_row(self, namespace: str, key: str) -> KvItem | None:
        where = (namespace, key)
        if where not in self.loaded.kv or self.loaded.kv_version is None:
            raise NeedMore(kv=[where])
        return self.loaded.kv[where]

    def _expired_candidates(self, moment: float) -> list[str]:
        if self.loaded.candidates is None:
            raise NeedMore()
        return [p for p in self.loaded.candidates if p in self.loaded.rows]

    def _next_producer_id(self) -> int:
        ids = self.loaded.producer_ids
        if self._next_producer >= len(ids):
            raise NeedMore(producer_ids=self._next_producer + 1 - len(ids))
        pid = ids[self._next_producer]
        self._next_producer += 1
        return pid


# -- SQL ------------------------------------------------------------------------------------

_LOCK = f"""
SELECT {LOAD_COLUMNS}
FROM streams AS s LEFT JOIN streams AS src ON src.id = s.fork_source_id
WHERE s.path = ANY($1::text[]) ORDER BY s.id FOR UPDATE OF s
"""
_PRODUCERS = """
SELECT stream_id, producer_id, epoch, last_seq FROM producers
WHERE stream_id = ANY($1::bigint[]) AND producer_id = ANY($2::text[])
"""
_KAFKA_PRODUCERS = """
SELECT stream_id, producer_id, epoch, last_seq, batches FROM kafka_producers
WHERE stream_id = ANY($1::bigint[]) AND producer_id = ANY($2::bigint[])
"""
_KV = """
SELECT k.namespace, k.key, k.value, k.version
FROM kv AS k JOIN unnest($1::text[], $2::text[]) AS w(namespace, key)
  ON k.namespace = w.namespace AND k.key = w.key
"""
_ENTRY_AT = """
SELECT seq, data, span FROM messages WHERE stream_id = $1 AND seq <= $2
ORDER BY seq DESC LIMIT 1
"""
_CANDIDATES = """
SELECT path FROM streams WHERE NOT soft_deleted AND (
    (expires_unix IS NOT NULL AND expires_unix <= $1)
    OR (expires_unix IS NULL AND ttl_seconds IS NOT NULL AND last_access + ttl_seconds <= $1))
"""
_INSERT_STREAM = """
INSERT INTO streams (id, path, content_type, ttl_seconds, expires_at, expires_unix, tail,
    closed, fork_source_id, fork_offset, fork_sub_offset, fork_base, last_access, log_start,
    max_timestamp)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (path) DO NOTHING
RETURNING id
"""
_INSERT_MESSAGES = """
INSERT INTO messages (stream_id, seq, data, timestamp_ms)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bigint[])
"""
_INSERT_BATCHES = """
INSERT INTO messages (stream_id, seq, data, timestamp_ms, span)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bigint[], $5::int[])
"""
_INSERT_TIME_INDEX = """
INSERT INTO time_index (stream_id, ts, seq)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
ON CONFLICT (stream_id, ts) DO UPDATE SET seq = excluded.seq
"""
_UPSERT_PRODUCERS = """
INSERT INTO producers (stream_id, producer_id, epoch, last_seq)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])
ON CONFLICT (stream_id, producer_id) DO UPDATE
SET epoch = excluded.epoch, last_seq = excluded.last_seq
"""
_UPSERT_KAFKA_PRODUCERS = """
INSERT INTO kafka_producers (stream_id, producer_id, epoch, last_seq, batches)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::bigint[], $5::text[])
ON CONFLICT (stream_id, producer_id) DO UPDATE
SET epoch = excluded.epoch, last_seq = excluded.last_seq, batches = excluded.batches
"""
_UPDATE_STREAMS = """
UPDATE streams AS s SET tail = u.tail, closed = u.closed, closed_by_producer = u.cb_id,
    closed_by_epoch = u.cb_epoch, closed_by_seq = u.cb_seq, last_stream_seq = u.last_stream_seq,
    refcount = u.refcount, soft_deleted = u.soft_deleted,
    last_access = greatest(s.last_access, u.last_access), log_start = u.log_start,
    max_timestamp = u.max_timestamp, kafka_entries = u.kafka_entries
FROM unnest($1::bigint[], $2::bigint[], $3::bool[], $4::text[], $5::bigint[], $6::bigint[],
    $7::text[], $8::int[], $9::bool[], $10::float8[], $11::bigint[], $12::bigint[], $13::bool[])
    AS u(id, tail, closed, cb_id, cb_epoch, cb_seq, last_stream_seq, refcount, soft_deleted,
         last_access, log_start, max_timestamp, kafka_entries)
WHERE s.id = u.id
"""
_UPDATE_ACCESS = """
UPDATE streams AS s SET last_access = greatest(s.last_access, u.t)
FROM unnest($1::bigint[], $2::float8[]) AS u(id, t) WHERE s.id = u.id
"""
_UPSERT_KV = """
INSERT INTO kv (namespace, key, value, version)
SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[])
ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, version = excluded.version
"""
_DELETE_KV = """
DELETE FROM kv AS k USING unnest($1::text[], $2::text[]) AS w(namespace, key)
WHERE k.namespace = w.namespace AND k.key = w.key
"""
_DELETE_STREAM = [
    "DELETE FROM messages WHERE stream_id = $1",
    "DELETE FROM producers WHERE stream_id = $1",
    "DELETE FROM kafka_producers WHERE stream_id = $1",
    "DELETE FROM time_index WHERE stream_id = $1",
    "DELETE FROM streams WHERE id = $1",
]
_TRUNCATE = [
    "DELETE FROM messages WHERE stream_id = $1 AND seq < $2 AND seq + coalesce(span, 1) <= $2",
    "DELETE FROM time_index WHERE stream_id = $1 AND seq < $2",
]


def _columns(values: list[object], width: int) -> list[list[object]]:
    return [values[i::width] for i in range(width)]


def _fork_sources(jobs: list[Job]) -> set[str]:
    return {
        job.request.fork.source
        for job in jobs
        if job.kind == "create" and isinstance(job.request, CreateRequest) and job.request.fork
    }


class _Transient(Exception):
    """A conflict PostgreSQL resolved by aborting us: run the batch again."""


class PgWriter:
    """One writer connection and the task that commits its batches (see the module doc)."""

    def __init__(
        self,
        number: int,
        connect: Callable[[], Any],
        notify: Callable[[set[str]], None],
        channel: str,
        caches: TailCaches,
        access: dict[int, float],
    ) -> None:
        self.number = number
        self._connect = connect
        self._notify = notify
        self._channel = channel
        self._caches = caches
        self._access = access  # stream id -> last read (sliding TTL), shared by the store
        self._queue: list[Job] = []
        self._wake = asyncio.Event()
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.backend_pid: int | None = None
        self.batches = 0
        self.jobs = 0
        self.retries = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"pg-writer-{self.number}"
        )

    def submit(self, job: Job) -> None:
        self._queue.append(job)
        if len(self._queue) == 1:
            self._wake.set()

    async def stop(self) -> None:
        """Commit everything queued, then close the connection."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                if not self._queue:
                    if self._access and not self._stopping:
                        await self._commit([])  # persist sliding-TTL renewals of reads
                    continue
            jobs, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            await self._commit(jobs)

    async def _ensure(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = await self._connect()
            self.backend_pid = self._conn.get_server_pid()
        return self._conn

    async def _commit(self, jobs: list[Job]) -> None:
        import asyncpg

        access = dict(self._access) if self._access else {}
        batch: PgBatch | None = None
        error: BaseException | None = None
        for attempt in range(RETRIES):
            for job in jobs:
                job.result, job.error = None, None
            try:
                conn = await self._ensure()
                batch = await self._transaction(conn, jobs, access)
                error = None
                break
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError, _Transient) as exc:
                self.retries += 1
                error = exc
                await asyncio.sleep(0.001 * (attempt + 1))
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                error = exc
                await self._drop_connection()
                break
            except Exception as exc:  # a bug: fail these jobs, keep the writer alive
                log.exception("PostgreSQL writer batch failed")
                error = exc
                await self._drop_connection()
                break
        if error is not None or batch is None:
            failure = StorageError(f"the write was not committed: {error}")
            for job in jobs:
                job.result = None
                job.error = failure
            self._resolve(jobs, set())
            if jobs:
                await asyncio.sleep(0.05)  # the database is down or failing: do not spin
            return
        for sid, seen in access.items():
            if self._access.get(sid) == seen:
                del self._access[sid]
        self.batches += 1
        self.jobs += len(jobs)
        for sid in batch.uncache | batch.truncated | batch.dropped:
            self._caches.drop(sid)
        for sid, (start, payloads) in batch.cached.items():
            if sid not in batch.dropped:
                self._caches.extend(sid, start, payloads)
        self._resolve(jobs, batch.changed)
        if batch.changed:
            await self._announce(batch.changed)

    async def _announce(self, changed: set[str]) -> None:
        """Tell the other nodes which paths changed, right after the COMMIT.

        Not inside the data transaction: PostgreSQL serialises the commits of transactions
        that NOTIFY (a database-wide lock held through the WAL flush), which would undo the
        group commit between connections and nodes (measured: 2 nodes fell to a seventh of
        one node's appends). A notification lost to a crash between the COMMIT and this is
        made up by the listeners' periodic re-check (``_postgres_listen``).

        One round trip (``notify_sql``), committed without waiting for the WAL flush: a
        transaction that notifies gets a transaction id, so with ``synchronous_commit = on``
        its COMMIT would wait for a second flush before the others hear of the first."""
        conn = self._conn
        if conn is None:
            return
        try:
            await conn.execute(notify_sql(self._channel, encode_paths(changed)))
        except Exception as exc:  # the re-check covers it; the next batch reconnects
            log.debug("pg_notify failed: %s", exc)

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()

    def _resolve(self, jobs: list[Job], changed: set[str]) -> None:
        answer_jobs(jobs)
        if changed:
            self._notify(changed)

    # -- one transaction ----------------------------------------------------------------

    async def _transaction(self, conn: Any, jobs: list[Job], access: dict[int, float]) -> PgBatch:
        loaded = Loaded()
        paths = {job.path for job in jobs if job.path} | _fork_sources(jobs)
        kv_keys: set[tuple[str, str]] = set()
        for job in jobs:
            writes: list[KvWrite] = []
            if job.kind == "kv":
                writes = job.request
            elif job.kind == "append" and isinstance(job.request, AppendRequest):
                writes = list(job.request.kv)
            kv_keys.update((w.namespace, w.key) for w in writes)
        now = time.time()
        async with conn.transaction():
            if any(job.kind == "reclaim" for job in jobs):
                loaded.reclaim_lock = await conn.fetchval(
                    "SELECT pg_try_advisory_xact_lock($1)", RECLAIM_LOCK
                )
                loaded.candidates = []
                if loaded.reclaim_lock:
                    moment = max(
                        (now if job.request is None else job.request)
                        for job in jobs
                        if job.kind == "reclaim"
                    )
                    loaded.candidates = [r[0] for r in await conn.fetch(_CANDIDATES, moment)]
                    paths.update(loaded.candidates)
            await self._lock(conn, loaded, paths, jobs)
            if kv_keys:
                await self._load_kv(conn, loaded, kv_keys)
            creates = sum(1 for job in jobs if job.kind == "create")
            if creates:
                await self._more_ids(conn, loaded, "stream_ids", creates)
            pids = sum(1 for job in jobs if job.kind == "producer_id")
            if pids:
                await self._more_ids(conn, loaded, "producer_ids", pids)
            while True:
                batch = PgBatch(now, loaded, access)
                try:
                    for job in jobs:
                        try:
                            job.result = getattr(batch, job.kind)(job.path, job.request)
                        except LogError as exc:
                            job.error = exc
                    break
                except NeedMore as more:
                    for job in jobs:
                        job.result, job.error = None, None
                    await self._load_more(conn, loaded, more, jobs)
            await self._flush(conn, batch, access)
        return batch

    async def _lock(self, conn: Any, loaded: Loaded, paths: set[str], jobs: list[Job]) -> None:
        fresh = [p for p in paths if p not in loaded.rows]
        if not fresh:
            return
        for p in fresh:
            loaded.rows[p] = None
        rows = await conn.fetch(_LOCK, fresh)
        sids: list[int] = []
        for row in rows:
            loaded.rows[row["path"]] = row
            sids.append(row["id"])
        if not sids:
            return
        claims = {
            job.request.producer.producer_id
            for job in jobs
            if job.kind == "append"
            and isinstance(job.request, AppendRequest)
            and job.request.producer is not None
        }
        if claims:
            for sid, pid, epoch, seq in await conn.fetch(_PRODUCERS, sids, list(claims)):
                loaded.producers.setdefault(sid, []).append((pid, epoch, seq))
        kafka = {
            job.request.producer_id
            for job in jobs
            if job.kind == "produce"
            and isinstance(job.request, KafkaBatch)
            and job.request.producer_id >= 0
        }
        if kafka:
            for sid, pid, epoch, seq, batches in await conn.fetch(
                _KAFKA_PRODUCERS, sids, list(kafka)
            ):
                loaded.kafka.setdefault(sid, []).append((pid, epoch, seq, batches))

    async def _load_kv(self, conn: Any, loaded: Loaded, keys: set[tuple[str, str]]) -> None:
        if loaded.kv_version is None:
            loaded.kv_version = await conn.fetchval(
                "SELECT value FROM meta WHERE name = 'kv_version' FOR UPDATE"
            )
        fresh = [k for k in keys if k not in loaded.kv]
        for k in fresh:
            loaded.kv[k] = None
        if fresh:
            rows = await conn.fetch(_KV, [k[0] for k in fresh], [k[1] for k in fresh])
            for ns, key, value, version in rows:
                loaded.kv[(ns, key)] = KvItem(bytes(value), version)

    async def _more_ids(self, conn: Any, loaded: Loaded, sequence: str, count: int) -> None:
        ids = await conn.fetch(
            f"SELECT nextval('{sequence}') FROM generate_series(1, $1)", max(count, 1)
        )
        target = loaded.stream_ids if sequence == "stream_ids" else loaded.producer_ids
        target.extend(r[0] for r in ids)

    async def _load_more(self, conn: Any, loaded: Loaded, more: NeedMore, jobs: list[Job]) -> None:
        if more.paths:
            await self._lock(conn, loaded, more.paths, jobs)
        if more.kv or (not more.paths and loaded.kv_version is None and more.kv):
            await self._load_kv(conn, loaded, more.kv)
        for sid, position in more.entries:
            row = await conn.fetchrow(_ENTRY_AT, sid, position)
            loaded.entries[(sid, position)] = (
                None if row is None else (row[0], bytes(row[1]), row[2])
            )
        if more.stream_ids:
            await self._more_ids(conn, loaded, "stream_ids", more.stream_ids)
        if more.producer_ids:
            await self._more_ids(conn, loaded, "producer_ids", more.producer_ids)
        if not (more.paths or more.kv or more.entries or more.stream_ids or more.producer_ids):
            if loaded.candidates is None:
                loaded.candidates = []
            else:  # pragma: no cover - nothing to load means the rules would loop
                raise StorageError("the batch asked for rows it already has")

    async def _flush(self, conn: Any, batch: PgBatch, access: dict[int, float]) -> None:
        batch._cut()
        if not access and not batch.kv_changes and all(op[0] == "rows" for op in batch.ops):
            combined = _one_statement(batch)
            if combined is not None:  # appends and produces: one round trip for every write
                sql, args = combined
                await conn.execute(sql, *args)
                return
        dropped = batch.dropped
        for op in batch.ops:
            kind = op[0]
            if kind == "rows":
                _, values, batch_values = op
                if values:
                    await conn.execute(_INSERT_MESSAGES, *_columns(values, 4))
                if batch_values:
                    await conn.execute(_INSERT_BATCHES, *_columns(batch_values, 5))
            elif kind == "insert":
                if await conn.fetchval(_INSERT_STREAM, *op[1]) is None:
                    raise _Transient("another node created the path meanwhile")
            elif kind == "delete":
                for sql in _DELETE_STREAM:
                    await conn.execute(sql, op[1])
            elif kind == "truncate":
                for sql in _TRUNCATE:
                    await conn.execute(sql, op[1], op[2])
        if batch.index_values:
            await conn.execute(_INSERT_TIME_INDEX, *_columns(batch.index_values, 3))
        kafka = [
            (sid, pid, p.epoch, p.last_seq, json.dumps(p.batches))
            for (sid, pid), p in batch.kafka_producers.items()
            if sid not in dropped
        ]
        if kafka:
            await conn.execute(_UPSERT_KAFKA_PRODUCERS, *map(list, zip(*kafka, strict=True)))
        if batch.kv_changes:
            upserts = [(ns, k, i.value, i.version) for (ns, k), i in batch.kv_changes.items() if i]
            deletes = [where for where, item in batch.kv_changes.items() if item is None]
            if upserts:
                await conn.execute(_UPSERT_KV, *map(list, zip(*upserts, strict=True)))
            if deletes:
                await conn.execute(_DELETE_KV, *map(list, zip(*deletes, strict=True)))
            await conn.execute(
                "UPDATE meta SET value = $1 WHERE name = 'kv_version'", batch.counters.kv_version
            )
        updates = [_update_row(s) for p in batch.dirty if (s := batch.work.get(p)) is not None]
        if updates:
            await conn.execute(_UPDATE_STREAMS, *map(list, zip(*updates, strict=True)))
        producers = [
            (sid, pid, epoch, seq)
            for (sid, pid), (epoch, seq) in batch.producers.items()
            if sid not in dropped
        ]
        if producers:
            await conn.execute(_UPSERT_PRODUCERS, *map(list, zip(*producers, strict=True)))
        if access:
            await conn.execute(_UPDATE_ACCESS, list(access), list(access.values()))


def _one_statement(batch: PgBatch) -> tuple[str, list[object]] | None:
    """The writes of a batch that only adds rows (appends, produces: messages, the time index,
    producer states) and updates stream rows, as one statement: each insert a data-modifying
    ``WITH`` part (they touch different tables), the stream update the main statement. Saves
    the round trips of separate statements; ``None`` when no stream row changes."""
    updates = [_update_row(s) for p in batch.dirty if (s := batch.work.get(p)) is not None]
    if not updates:
        return None
    dropped = batch.dropped
    parts: list[tuple[str, list[list[object]]]] = []
    for op in batch.ops:
        _, values, batch_values = op
        if values:
            parts.append((_INSERT_MESSAGES, _columns(values, 4)))
        if batch_values:
            parts.append((_INSERT_BATCHES, _columns(batch_values, 5)))
    if batch.index_values:
        parts.append((_INSERT_TIME_INDEX, _columns(batch.index_values, 3)))
    kafka = [
        (sid, pid, p.epoch, p.last_seq, json.dumps(p.batches))
        for (sid, pid), p in batch.kafka_producers.items()
        if sid not in dropped
    ]
    if kafka:
        parts.append((_UPSERT_KAFKA_PRODUCERS, list(map(list, zip(*kafka, strict=True)))))
    producers = [
        (sid, pid, epoch, seq)
        for (sid, pid), (epoch, seq) in batch.producers.items()
        if sid not in dropped
    ]
    if producers:
        parts.append((_UPSERT_PRODUCERS, list(map(list, zip(*producers, strict=True)))))
    args: list[object] = []
    ctes: list[str] = []
    for i, (sql, columns) in enumerate(parts):
        ctes.append(f"w{i} AS ({_renumber(sql, len(args))})")
        args.extend(columns)
    main = _renumber(_UPDATE_STREAMS, len(args))
    args.extend(map(list, zip(*updates, strict=True)))
    return (f"WITH {', '.join(ctes)} {main}" if ctes else main), args


def _renumber(sql: str, offset: int) -> str:
    """``sql`` with its parameters ``$n`` shifted to ``$(n + offset)``."""
    return _PARAMETER.sub(lambda m: f"${int(m.group(1)) + offset}", sql) if offset else sql


_PARAMETER = re.compile(r"\$(\d+)")


def _update_row(state: StreamState) -> tuple[object, ...]:
    closed_by = state.closed_by
    return (
        state.stream_id,
        state.tail,
        state.closed,
        closed_by.producer_id if closed_by else None,
        closed_by.epoch if closed_by else None,
        closed_by.seq if closed_by else None,
        state.last_stream_seq,
        state.refcount,
        state.soft_deleted,
        state.last_access,
        state.log_start,
        state.max_timestamp,
        state.kafka_entries,
    )
