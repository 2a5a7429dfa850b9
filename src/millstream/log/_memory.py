"""``MemoryStore``: the whole log in Python lists. No disk, nothing survives a restart.

It is the reference for the store contract (the shared suite runs against it first) and the
``--memory`` mode of ``millstream serve``. Each stream keeps its entries (a message's bytes, or
a stored Kafka batch spanning several positions) with, per entry, its first position, its
timestamp and running totals of bytes and of the highest timestamp so far. A read of a stream
without Kafka batches finds where ``max_bytes`` ends with one ``bisect`` and returns a list
slice: no Python loop over messages.
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, count, islice

from ._batches import stamp_batch, with_base_offset
from ._create import plan_create
from ._errors import InvalidRequest, OffsetOutOfRange, StreamGone, StreamNotFound
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
from ._rules import (
    StreamState,
    apply_append,
    apply_produce,
    is_expired,
    plan_append,
    plan_kv,
    plan_produce,
    plan_truncate,
)
from ._store import DEFAULT_MAX_READ_BYTES, Store
from ._views import (
    BatchCache,
    Entry,
    ValueCache,
    assemble_batches,
    clip_entry,
    time_in_batch,
)

__all__ = ["MemoryStore"]


@dataclass(frozen=True, slots=True)
class _Stored:
    """A Kafka batch entry: its bytes (base offset set) and the positions it spans."""

    data: bytes
    count: int


class _Log:
    """One stream's own entries, from its first kept entry on (see the module docstring)."""

    __slots__ = ("ends", "items", "stamps", "starts", "tmax")

    def __init__(self) -> None:
        self.items: list[bytes | _Stored] = []
        self.starts: array[int] = array("q")
        self.ends: array[int] = array("q", [0])  # running byte totals, one more than items
        self.stamps: array[int] = array("q")
        self.tmax: array[int] = array("q")  # running maximum of stamps

    def add_messages(self, position: int, messages: Sequence[bytes], stamp: int) -> None:
        self.items.extend(messages)
        n = len(messages)
        if n == 1:
            self.starts.append(position)
            self.ends.append(self.ends[-1] + len(messages[0]))
        else:
            self.starts.extend(range(position, position + n))
            self.ends.extend(islice(accumulate(map(len, messages), initial=self.ends[-1]), 1, None))
        high = max(self.tmax[-1], stamp) if self.tmax else stamp
        self.stamps.extend([stamp] * n)
        self.tmax.extend([high] * n)

    def add_batch(self, position: int, stored: _Stored, stamp: int) -> None:
        self.items.append(stored)
        self.starts.append(position)
        self.ends.append(self.ends[-1] + len(stored.data))
        self.stamps.append(stamp)
        self.tmax.append(max(self.tmax[-1], stamp) if self.tmax else stamp)

    def index(self, position: int) -> int:
        """The entry holding ``position`` (or the first after it)."""
        return max(bisect_right(self.starts, position) - 1, 0)

    def end_of(self, i: int) -> int:
        item = self.items[i]
        return self.starts[i] + (1 if isinstance(item, bytes) else item.count)

    def truncate(self, before: int) -> None:
        """Forget every entry that lies wholly below ``before``."""
        keep = 0
        while keep < len(self.items) and self.end_of(keep) <= before:
            keep += 1
        if keep:
            for column in (self.items, self.starts, self.ends, self.stamps, self.tmax):
                del column[:keep]


class MemoryStore(Store):
    description = "memory (nothing survives a restart)"

    def __init__(self) -> None:
        super().__init__()
        self._states: dict[str, StreamState] = {}
        self._logs: dict[int, _Log] = {}  # stream_id -> own entries from fork_base on
        self._ids = count(1)
        self._producer_ids = count(1)
        self._kv: dict[tuple[str, str], KvItem] = {}
        self._kv_version = 1
        self._values = ValueCache()
        self._batches = BatchCache()

    # -- lookup -------------------------------------------------------------------------

    def _live(self, path: str, now: float | None = None) -> StreamState:
        state = self._states.get(path)
        if state is None:
            raise StreamNotFound(f"no stream at {path!r}")
        if state.soft_deleted:
            raise StreamGone(f"stream {path!r} was deleted")
        if is_expired(state, time.time() if now is None else now):
            self._drop(state)
            raise StreamNotFound(f"no stream at {path!r}")
        return state

    def _source(self, state: StreamState) -> StreamState:
        assert state.fork is not None
        return self._states[state.fork.source]

    def _payload(self, state: StreamState, position: int) -> bytes:
        while position < state.fork_base:
            state = self._source(state)
        log = self._logs[state.stream_id]
        i = log.index(position)
        item = log.items[i]
        if isinstance(item, bytes):
            return item
        return self._decoded(state, log.starts[i], item)[position - log.starts[i]]

    def _decoded(self, state: StreamState, base: int, item: _Stored) -> list[bytes]:
        json_mode = is_json_content_type(state.config.content_type)
        return self._values.payloads(state.stream_id, base, item.data, json_mode)

    def _collect(
        self, state: StreamState, start: int, end: int, budget: int, out: list[bytes]
    ) -> tuple[int, int]:
        """Add payloads [start, end) to ``out`` until ``budget`` bytes are reached (at least one
        payload in all, the one crossing the budget included); return (next position, bytes)."""
        used = 0
        if start < state.fork_base:
            source = self._source(state)
            below = min(end, state.fork_base)
            start, used = self._collect(source, start, below, budget, out)
            if start < below or used >= budget:
                return start, used
        if start >= end or (used >= budget and out):
            return start, used
        log = self._logs[state.stream_id]
        if not state.kafka_entries:
            base = log.starts[0] if log.starts else start
            first, last = start - base, end - base
            ends = log.ends
            # The first message k whose preceding total reaches the budget is not taken; at
            # least one message is (lo = first + 1).
            stop = bisect_left(ends, ends[first] + budget - used, first + 1, last)
            out.extend(log.items[first:stop])  # type: ignore[arg-type]
            return stop + base, used + ends[stop] - ends[first]
        i = log.index(start)
        position = start
        while position < end and (used < budget or not out):
            item, at = log.items[i], log.starts[i]
            if isinstance(item, bytes):
                out.append(item)
                used += len(item)
                position += 1
            else:
                payloads = self._decoded(state, at, item)
                for payload in payloads[position - at : min(item.count, end - at)]:
                    out.append(payload)
                    used += len(payload)
                    position += 1
                    if used >= budget:
                        break
            i += 1
        return position, used

    def _entries(self, state: StreamState, start: int, end: int) -> Iterator[Entry]:
        """Entries holding positions [start, end), forks stitched (see ``assemble_batches``)."""
        if start < state.fork_base:
            below = state.fork_base
            for entry in self._entries(self._source(state), start, min(end, below)):
                clipped = clip_entry(entry, below)
                if clipped is not None:
                    yield clipped
            start = below
        log = self._logs[state.stream_id]
        if start >= end or not log.items:
            return
        for i in range(log.index(start), len(log.items)):
            item, at = log.items[i], log.starts[i]
            if at >= end:
                return
            if isinstance(item, bytes):
                yield Entry(at, 1, item, log.stamps[i], False)
            else:
                yield Entry(at, item.count, item.data, log.stamps[i], True)

    # -- Store --------------------------------------------------------------------------

    async def create(self, path: str, request: CreateRequest) -> CreateResult:
        now = time.time()
        plan = plan_create(
            path,
            request,
            now,
            get=self._states.get,
            live=lambda p: self._live(p, now),
            payload_at=self._payload,
            drop=self._drop,
        )
        if plan.existing is not None:
            return CreateResult(created=False, info=plan.existing.info())
        state = StreamState(
            path=path, stream_id=next(self._ids), config=plan.config, last_access=now
        )
        state.fork, state.fork_base = plan.fork, plan.fork_base
        if plan.source is not None:
            state.log_start = plan.source.log_start
        own: list[bytes] = [plan.partial] if plan.partial is not None else []
        own.extend(request.messages)
        log = self._logs[state.stream_id] = _Log()
        stamp = int(now * 1000)
        if own:
            log.add_messages(plan.fork_base, own, stamp)
            state.max_timestamp = stamp
        state.tail = plan.fork_base + len(own)
        state.closed = request.closed
        if plan.source is not None:
            plan.source.refcount += 1
        self._states[path] = state
        self.notifier.notify(path)  # subscriptions discover new streams (PROTOCOL.md §6.2)
        return CreateResult(created=True, info=state.info())

    async def append(self, path: str, request: AppendRequest) -> AppendResult:
        now = time.time()
        state = self._live(path, now)
        plan = plan_append(state, request)
        kv = None
        if request.kv and plan.outcome != "duplicate":
            kv = plan_kv(request.kv, self._kv_current, self._kv_version)
        if plan.outcome == "appended":
            stamp = int(now * 1000)
            self._logs[state.stream_id].add_messages(state.tail, request.messages, stamp)
            state.max_timestamp = max(state.max_timestamp, stamp)
        result = apply_append(state, request, plan, now)
        if kv is not None:
            self._apply_kv(kv.changes, kv.next_version)
        if plan.outcome != "duplicate":
            self.notifier.notify(path)
        return result

    async def head(self, path: str) -> StreamInfo:
        return self._live(path).info()

    async def read(
        self, path: str, start: int, *, max_bytes: int = DEFAULT_MAX_READ_BYTES
    ) -> ReadResult:
        now = time.time()
        state = self._live(path, now)
        if start > state.tail or start < 0:
            raise InvalidRequest("offset is beyond the stream's tail")
        start = max(start, state.log_start)
        state.last_access = now
        out: list[bytes] = []
        end = start
        if start < state.tail:
            end, _ = self._collect(state, start, state.tail, max_bytes, out)
        return ReadResult(out, start, end, state.tail, state.closed, state.stream_id)

    async def delete(self, path: str) -> None:
        state = self._live(path)
        self._drop(state)
        self.notifier.notify(path)

    def _drop(self, state: StreamState) -> None:
        """Remove ``state`` now, or soft-delete it while forks reference it; cascade upward."""
        if state.refcount > 0:
            state.soft_deleted = True
            return
        self._states.pop(state.path, None)
        self._logs.pop(state.stream_id, None)
        self._batches.forget(state.stream_id)
        if state.fork is not None:
            source = self._states.get(state.fork.source)
            if source is not None:
                source.refcount -= 1
                if source.soft_deleted and source.refcount == 0:
                    self._drop(source)

    async def list_paths(self, prefix: str = "", *, include_internal: bool = False) -> list[str]:
        now = time.time()
        return sorted(
            p
            for p, s in self._states.items()
            if p.startswith(prefix)
            and not s.soft_deleted
            and not is_expired(s, now)
            and (include_internal or not is_internal(p))
        )

    async def reclaim_expired(self, now: float | None = None) -> int:
        moment = time.time() if now is None else now
        expired = [s for s in self._states.values() if not s.soft_deleted and is_expired(s, moment)]
        for state in expired:
            self._drop(state)
            self.notifier.notify(state.path)
        return len(expired)

    # -- Kafka entries ------------------------------------------------------------------

    async def produce(self, path: str, batch: KafkaBatch) -> ProduceResult:
        now = time.time()
        state = self._live(path, now)
        plan = plan_produce(state, batch)
        base = state.tail
        append_time = int(now * 1000) if batch.log_append_time else -1
        result = apply_produce(state, batch, plan, append_time, now)
        if plan.duplicate is None:
            if batch.log_append_time:
                data = stamp_batch(batch.data, base, append_time)
            else:
                data = with_base_offset(batch.data, base)
            stamp = append_time if batch.log_append_time else batch.max_timestamp_ms
            self._logs[state.stream_id].add_batch(base, _Stored(data, batch.record_count), stamp)
            self.notifier.notify(path)
        return result

    async def read_batches(
        self, path: str, start: int, *, max_bytes: int = DEFAULT_MAX_READ_BYTES
    ) -> BatchReadResult:
        now = time.time()
        state = self._live(path, now)
        if start < state.log_start or start > state.tail:
            raise OffsetOutOfRange(
                f"offset {start} is outside [{state.log_start}, {state.tail}]",
                log_start=state.log_start,
                tail=state.tail,
            )
        state.last_access = now
        entries = self._entries(state, start, state.tail)
        batches, end = assemble_batches(
            state.stream_id, entries, start, state.tail, max_bytes, self._batches
        )
        return BatchReadResult(batches, start, end, state.tail, state.log_start, state.stream_id)

    async def offset_for_time(self, path: str, timestamp_ms: int) -> tuple[int, int] | None:
        state = self._live(path)
        return self._find_time(state, state.log_start, state.tail, timestamp_ms)

    def _find_time(
        self, state: StreamState, start: int, end: int, target: int
    ) -> tuple[int, int] | None:
        if start < state.fork_base:
            found = self._find_time(self._source(state), start, min(end, state.fork_base), target)
            if found is not None:
                return found
            start = state.fork_base
        log = self._logs[state.stream_id]
        if start >= end or not log.items:
            return None
        first = log.index(start)
        i = max(bisect_left(log.tmax, target, first), first)
        while i < len(log.items) and log.starts[i] < end:
            if log.stamps[i] >= target:
                item, at = log.items[i], log.starts[i]
                if isinstance(item, bytes):
                    return at, log.stamps[i]
                first = max(start, at)
                found = time_in_batch(item.data, first, end, target, (first, log.stamps[i]))
                if found is not None:
                    return found
            i += 1
        return None

    async def delete_records(self, path: str, before: int) -> int:
        state = self._live(path)
        target = plan_truncate(state, before)
        if target is not None:
            state.log_start = target
            self._logs[state.stream_id].truncate(target)
            self._batches.forget(state.stream_id)
            self.notifier.notify(path)
        return state.log_start

    async def init_producer_id(self) -> tuple[int, int]:
        return next(self._producer_ids), 0

    # -- the key-value table ----------------------------------------------------------------

    def _kv_current(self, namespace: str, key: str) -> KvItem | None:
        return self._kv.get((namespace, key))

    def _apply_kv(self, changes: dict[tuple[str, str], KvItem | None], next_version: int) -> None:
        for where, item in changes.items():
            if item is None:
                self._kv.pop(where, None)
            else:
                self._kv[where] = item
        self._kv_version = next_version

    async def kv_get(self, namespace: str, key: str) -> KvItem | None:
        return self._kv.get((namespace, key))

    async def kv_scan(self, namespace: str, prefix: str = "") -> list[tuple[str, KvItem]]:
        return sorted(
            (
                (key, item)
                for (ns, key), item in self._kv.items()
                if ns == namespace and key.startswith(prefix)
            ),
            key=lambda pair: pair[0],
        )

    async def kv_write(self, writes: Sequence[KvWrite]) -> list[int]:
        plan = plan_kv(writes, self._kv_current, self._kv_version)
        self._apply_kv(plan.changes, plan.next_version)
        return plan.versions
