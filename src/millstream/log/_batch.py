"""One group commit's worth of jobs, decided by the shared rules: the part every persisting
store has in common.

A store that group-commits (``SqliteStore``'s writer thread, ``PostgresStore``'s writer
connections) collects the jobs waiting (create, append, produce, delete, truncation, key-value
write, producer-id allocation, reclaim) and hands them to a ``BatchRules`` in arrival order.
Each job is decided by ``_rules``/``_create`` against a working copy of its stream's newest
committed state, already changed by the earlier jobs of the same batch, and what it decides is
recorded (message rows, dirty stream rows, producer states, key-value changes, streams to wake).
A refused job carries its own error and leaves the others alone.

The storage is behind a few hooks (``_load``, ``_insert_stream``, ``_add_batch``,
``_delete_stream_rows``, ``_truncate_rows``, ``_entry_at``, ``_kv_row``, ``_expired_candidates``,
``_next_producer_id``), all synchronous: SQLite answers them with SQL on its writer thread,
PostgreSQL from rows it loaded (and locked) before running the rules. The store then writes
what the batch recorded and commits once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._batches import stamp_batch
from ._create import plan_create
from ._errors import StreamGone, StreamNotFound
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
from ._sqlite_schema import TIME_INDEX_STEP_MS
from ._sqlite_state import copy_state
from ._views import http_payloads

__all__ = ["BatchRules", "Counters", "Job", "JobKind", "answer_jobs", "stream_insert_values"]

JobKind = Literal[
    "create", "append", "produce", "delete", "truncate", "kv", "producer_id", "reclaim"
]


@dataclass(slots=True, eq=False)
class Job:
    kind: JobKind
    path: str
    request: Any
    future: asyncio.Future[Any] | None
    result: Any = None
    error: BaseException | None = None


def answer_jobs(jobs: list[Job]) -> None:
    """Resolve each job's future with its result or error (on the event loop)."""
    for job in jobs:
        future = job.future
        if future is None or future.done():
            continue
        if job.error is not None:
            future.set_exception(job.error)
        else:
            future.set_result(job.result)


@dataclass(slots=True)
class Counters:
    """The store-wide counters a batch hands out (persisted in ``meta`` with each use)."""

    kv_version: int
    producer_id: int


def stream_insert_values(
    path: str,
    request: CreateRequest,
    plan_config: Any,
    source: StreamState | None,
    resolved: Any,
    base: int,
    own: int,
    now: float,
    timestamp_ms: int,
) -> tuple[object, ...]:
    """The columns of a new ``streams`` row, in ``_sqlite_schema.INSERT_STREAM`` order."""
    expires = plan_config.expires_at
    return (
        path,
        plan_config.content_type,
        plan_config.ttl_seconds,
        expires.isoformat() if expires is not None else None,
        expires.timestamp() if expires is not None else None,
        base + own,
        request.closed,
        source.stream_id if source is not None else None,
        resolved.offset if resolved is not None else None,
        resolved.sub_offset if resolved is not None else 0,
        base,
        now,
        source.log_start if source is not None else 0,
        timestamp_ms if own else -1,
    )


class BatchRules:
    """Working copies of states and the rows one transaction writes (see the module doc)."""

    def __init__(self, now: float, counters: Counters) -> None:
        self.now = now
        self.timestamp_ms = int(now * 1000)
        self.work: dict[str, StreamState | None] = {}  # None: removed in this batch
        self.values: list[object] = []  # messages rows end to end: stream_id, seq, data, ts
        self.batch_values: list[object] = []  # Kafka batch rows: stream_id, seq, data, ts, span
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

    # -- storage hooks ------------------------------------------------------------------

    def _load(self, path: str) -> StreamState | None:
        """The newest committed state of ``path`` (not to be mutated), or ``None``."""
        raise NotImplementedError

    def _insert_stream(self, values: tuple[object, ...]) -> int:
        """Insert a ``streams`` row (``stream_insert_values``); return its new id."""
        raise NotImplementedError

    def _add_batch(
        self,
        stream_id: int,
        base: int,
        parts: tuple[bytes | memoryview, ...],
        stamp: int,
        records: int,
    ) -> None:
        """Record a Kafka batch entry whose bytes are ``parts`` end to end: a row of
        ``batch_values`` here; a store may keep large batches elsewhere (SQLite's files)."""
        data = b"".join(parts)
        self.batch_values += (stream_id, base, data, stamp, records)
        self.nbytes += len(data)

    def _delete_stream_rows(self, state: StreamState) -> None:
        """Delete every row of a stream that is removed for good."""
        raise NotImplementedError

    def _truncate_rows(self, state: StreamState, before: int) -> None:
        """Delete the entries (and time index rows) of ``state`` wholly below ``before``."""
        raise NotImplementedError

    def _entry_at(
        self, stream_id: int, position: int
    ) -> tuple[int, bytes | memoryview, int | None] | None:
        """``(seq, data, span)`` of the entry holding ``position`` (or the last before it)."""
        raise NotImplementedError

    def _kv_row(self, namespace: str, key: str) -> KvItem | None:
        raise NotImplementedError

    def _expired_candidates(self, moment: float) -> list[str]:
        """A superset of the paths expired at ``moment`` (each is re-checked)."""
        raise NotImplementedError

    def _next_producer_id(self) -> int:
        pid = self.counters.producer_id
        self.counters.producer_id += 1
        return pid

    # -- state --------------------------------------------------------------------------

    def get(self, path: str) -> StreamState | None:
        if path in self.work:
            return self.work[path]
        state = self._load(path)
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
        parts: tuple[bytes | memoryview, ...]
        if batch.log_append_time:
            parts = (stamp_batch(batch.data, base, self.timestamp_ms),)
        else:  # the base offset is not covered by the CRC: written apart, the rest uncopied
            parts = (base.to_bytes(8, "big", signed=True), memoryview(batch.data)[8:])
        sid = state.stream_id
        self._add_batch(sid, base, parts, stamp, batch.record_count)
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
        self._truncate_rows(state, target)
        state.log_start = target
        self.truncated.add(state.stream_id)
        self.dirty.add(path)
        self.changed.add(path)
        return target

    def producer_id(self, _path: str, _request: None) -> tuple[int, int]:
        return self._next_producer_id(), 0

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
        item = self._kv_row(namespace, key)
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
        own = [plan.partial] if plan.partial is not None else []
        own.extend(request.messages)
        sid = self._insert_stream(
            stream_insert_values(
                path, request, config, source, resolved, base, len(own), self.now, self.timestamp_ms
            )
        )
        state = StreamState(path=path, stream_id=sid, config=config)
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
        count = 0
        for path in self._expired_candidates(moment):
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
        row = self._entry_at(state.stream_id, position)
        if row is None:
            return None
        seq, data, span = row
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
        self._delete_stream_rows(state)
        sid = state.stream_id
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
