"""``PostgresStore``: the log in PostgreSQL, shared by several millstream nodes.

Each node is stateless: every stream's state and data live in the database, so any node serves
any stream. Writes group-commit per node (``_postgres_writer``) with the stream rows locked, so
the shared rules decide every append against the newest committed state whichever node wrote
it. Reads query the database (a small per-node cache of the node's own recent appends serves
live readers first). Live readers wait on in-process futures; a node learns of other nodes'
appends through LISTEN/NOTIFY (``_postgres_listen``), with a periodic re-check of the tails
readers wait on, so a missed notification delays a wake-up but never loses it.

Durability: an answer means the transaction committed with ``synchronous_commit = on``, i.e.
PostgreSQL flushed it to its WAL (and to synchronous standbys, if the cluster has them).
Needs the ``postgres`` extra (``pip install 'millstream[postgres]'``: asyncpg).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ._batch import Job, JobKind
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
from ._notify import wait_for_change
from ._paths import is_internal
from ._postgres_listen import Listener
from ._postgres_schema import (
    LOAD_COLUMNS,
    SCHEMA_VERSION,
    check_schema_name,
    migrate,
    state_from_row,
)
from ._postgres_writer import PgWriter, notify_channel
from ._rules import StreamState, is_expired
from ._sqlite_state import TailCaches
from ._store import DEFAULT_MAX_READ_BYTES, Store
from ._views import BatchCache, Entry, ValueCache, assemble_batches, clip_entry, time_in_batch

__all__ = ["PostgresStore"]

_STATE = f"""
SELECT {LOAD_COLUMNS}
FROM streams AS s LEFT JOIN streams AS src ON src.id = s.fork_source_id
WHERE s.path = $1
"""
_ENTRY_START = (
    "SELECT seq FROM messages WHERE stream_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1"
)
_ENTRIES = """
SELECT seq, data, span, timestamp_ms FROM messages
WHERE stream_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT $4
"""
_LIST = """
SELECT path FROM streams
WHERE path >= $1 AND starts_with(path, $1) AND NOT soft_deleted
  AND CASE WHEN expires_unix IS NOT NULL THEN expires_unix > $2
           WHEN ttl_seconds IS NOT NULL THEN last_access + ttl_seconds > $2
           ELSE TRUE END
ORDER BY path
"""
_TIME_START = (
    "SELECT seq FROM time_index WHERE stream_id = $1 AND ts <= $2 ORDER BY ts DESC LIMIT 1"
)
_TIME_ENTRIES = """
SELECT seq, data, span, timestamp_ms FROM messages
WHERE stream_id = $1 AND seq >= $2 AND seq < $3 AND timestamp_ms >= $4 ORDER BY seq LIMIT $5
"""

Row = tuple[int, bytes, int | None, int]  # seq, data, span, timestamp_ms


def _redact(dsn: str) -> str:
    """The DSN without its password, for the startup line."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


class PostgresStore(Store):
    """``PostgresStore("postgresql://user@host/db")``: the shared store of a millstream cluster.

    ``schema``: the PostgreSQL schema holding millstream's tables (created on first start).
    ``writers``: connections that commit in parallel (each group-commits its share of paths).
    ``readers``: the most connections reads use at once. ``recheck_seconds``: how often the
    tails live readers wait on are re-read in case a notification was missed.
    """

    shared = True

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "millstream",
        writers: int = 2,
        readers: int = 8,
        recheck_seconds: float = 1.0,
    ) -> None:
        super().__init__()
        if writers < 1 or readers < 1:
            raise ValueError("writers and readers must be at least 1")
        self.dsn = dsn
        self.schema = check_schema_name(schema)
        self.description = f"postgresql:{_redact(dsn)} (schema {schema})"
        self._writer_count = writers
        self._reader_count = readers
        self._recheck_seconds = recheck_seconds
        self._writers: list[PgWriter] = []
        self._pool: Any = None
        self._listener: Listener | None = None
        self._caches = TailCaches()
        self._values = ValueCache()
        self._batch_cache = BatchCache()
        self._access: dict[int, float] = {}  # stream id -> last read of a TTL stream
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------

    def _settings(self) -> dict[str, str]:
        return {
            "search_path": self.schema,
            "synchronous_commit": "on",  # an answer means flushed to PostgreSQL's WAL
            "application_name": "millstream",
            "standard_conforming_strings": "on",  # '...' literals of notify_sql
        }

    async def _connect(self) -> Any:
        import asyncpg

        return await asyncpg.connect(self.dsn, server_settings=self._settings(), timeout=10)

    async def start(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            if self._closed:
                raise StorageError("the store is closed")
            try:
                import asyncpg
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise StorageError(
                    "PostgresStore needs asyncpg: pip install 'millstream[postgres]'"
                ) from exc
            try:
                conn = await asyncpg.connect(self.dsn, timeout=10)
                try:
                    found = await migrate(conn, self.schema)
                finally:
                    await conn.close()
                if found > SCHEMA_VERSION:
                    raise StorageError(
                        f"the database has millstream schema version {found}; this millstream"
                        f" knows {SCHEMA_VERSION}"
                    )
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=self._reader_count,
                    server_settings=self._settings(),
                    timeout=10,
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise StorageError(f"cannot open PostgreSQL {_redact(self.dsn)}: {exc}") from exc
            self._writers = [
                PgWriter(
                    i,
                    self._connect,
                    self._changed,
                    notify_channel(self.schema),
                    self._caches,
                    self._access,
                )
                for i in range(self._writer_count)
            ]
            for writer in self._writers:
                writer.start()
            self._listener = Listener(
                self._connect,
                notify_channel(self.schema),
                self.notifier,
                self._tails,
                own_pids=lambda: {w.backend_pid for w in self._writers},
                recheck_seconds=self._recheck_seconds,
            )
            await self._listener.start()
            self._started = True

    async def aclose(self) -> None:
        """Commit queued writes, wake live readers, close every connection."""
        if self._closed:
            return
        self._closed = True
        for writer in self._writers:
            await writer.stop()
        if self._listener is not None:
            await self._listener.stop()
        self.notifier.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _ready(self) -> None:
        if not self._started:
            await self.start()
        if self._closed:
            raise StorageError("the store is closed")

    def statistics(self) -> dict[str, Any]:
        """Counters for benchmarks and tests."""
        listener = self._listener
        return {
            "batches": sum(w.batches for w in self._writers),
            "jobs": sum(w.jobs for w in self._writers),
            "retries": sum(w.retries for w in self._writers),
            "notifications": listener.received if listener else 0,
            "rechecks": listener.rechecks if listener else 0,
            "listener_connected": listener.connected if listener else False,
            "tail_cache": self._caches.statistics(),
        }

    def _changed(self, paths: set[str]) -> None:
        for path in paths:
            self.notifier.notify(path)

    # -- writes -------------------------------------------------------------------------

    async def _submit(self, kind: JobKind, path: str, request: Any) -> Any:
        if not self._started or self._closed:
            await self._ready()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        index = zlib.crc32(path.encode()) % len(self._writers) if path else 0
        self._writers[index].submit(Job(kind, path, request, future))
        return await future

    async def create(self, path: str, request: CreateRequest) -> CreateResult:
        result: CreateResult = await self._submit("create", path, request)
        return result

    async def append(self, path: str, request: AppendRequest) -> AppendResult:
        result: AppendResult = await self._submit("append", path, request)
        return result

    async def delete(self, path: str) -> None:
        await self._submit("delete", path, None)

    async def reclaim_expired(self, now: float | None = None) -> int:
        count: int = await self._submit("reclaim", "", now)
        return count

    async def produce(self, path: str, batch: KafkaBatch) -> ProduceResult:
        result: ProduceResult = await self._submit("produce", path, batch)
        return result

    async def delete_records(self, path: str, before: int) -> int:
        start: int = await self._submit("truncate", path, before)
        return start

    async def init_producer_id(self) -> tuple[int, int]:
        result: tuple[int, int] = await self._submit("producer_id", "", None)
        return result

    async def kv_write(self, writes: Sequence[KvWrite]) -> list[int]:
        versions: list[int] = await self._submit("kv", "", list(writes))
        return versions

    # -- reads --------------------------------------------------------------------------

    async def _fetch(self, method: str, sql: str, *args: Any) -> Any:
        """Run one read query on a pooled connection; database trouble is ``StorageError``."""
        import asyncpg

        if not self._started or self._closed:
            await self._ready()
        if asyncio.current_task() is None:
            # The HTTP fast path starts handlers outside a Task until they first wait, and
            # asyncpg's pool needs one (asyncio.timeout) when it opens a connection: wait once.
            await asyncio.sleep(0)
        try:
            async with self._pool.acquire() as conn:
                return await getattr(conn, method)(sql, *args)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageError(f"PostgreSQL is unavailable: {exc}") from exc
        except TimeoutError as exc:
            raise StorageError("PostgreSQL did not answer in time") from exc

    async def _lookup(self, path: str) -> StreamState | None:
        row = await self._fetch("fetchrow", _STATE, path)
        if row is None:
            return None
        state = state_from_row(row)
        seen = self._access.get(state.stream_id)
        if seen is not None:
            state.last_access = max(state.last_access, seen)
        return state

    async def _live(self, path: str, now: float) -> StreamState:
        state = await self._lookup(path)
        if state is None or (not state.soft_deleted and is_expired(state, now)):
            raise StreamNotFound(f"no stream at {path!r}")
        if state.soft_deleted:
            raise StreamGone(f"stream {path!r} was deleted")
        return state

    def _touch(self, state: StreamState, now: float) -> None:
        """Renew a sliding TTL: remembered here, persisted by the next write (at most ~1 s)."""
        if state.config.ttl_seconds is not None and state.config.expires_at is None:
            self._access[state.stream_id] = now

    async def head(self, path: str) -> StreamInfo:
        return (await self._live(path, time.time())).info()

    async def _segments(
        self, state: StreamState, start: int, end: int
    ) -> list[tuple[StreamState, int, int]]:
        """``(state, lo, hi)`` row ranges holding positions [start, end), fork-stitched."""
        segments: list[tuple[StreamState, int, int]] = []
        if start < state.fork_base:
            assert state.fork is not None
            source = await self._lookup(state.fork.source)
            if source is None:
                raise StorageError(f"the fork source of {state.path!r} is missing")
            segments = await self._segments(source, start, min(end, state.fork_base))
        if end > state.fork_base:
            segments.append((state, max(start, state.fork_base), end))
        return segments

    async def _rows(self, sid: int, lo: int, hi: int, budget: int) -> list[Row]:
        """Entries holding positions [lo, hi) from the one holding ``lo``, until ``budget``
        bytes are reached (fetched in growing chunks)."""
        first = await self._fetch("fetchval", _ENTRY_START, sid, lo)
        position = lo if first is None else first
        out: list[Row] = []
        used, size = 0, 64
        while position < hi and used < budget:
            rows = await self._fetch("fetch", _ENTRIES, sid, position, hi, size)
            if not rows:
                break
            for row in rows:
                out.append((row[0], row[1], row[2], row[3]))
                used += len(row[1])
            last = rows[-1]
            position = last[0] + (1 if last[2] is None else last[2])
            if len(rows) < size:
                break
            size = min(size * 4, 4096)
        return out

    async def read(
        self, path: str, start: int, *, max_bytes: int = DEFAULT_MAX_READ_BYTES
    ) -> ReadResult:
        now = time.time()
        state = await self._live(path, now)
        tail, closed, sid = state.tail, state.closed, state.stream_id
        if start > tail or start < 0:
            raise InvalidRequest("offset is beyond the stream's tail")
        start = max(start, state.log_start)
        self._touch(state, now)
        if start == tail:
            return ReadResult([], start, start, tail, closed, sid)
        cache = self._caches.get(sid)
        if cache is not None and cache.covers(start, tail):
            payloads: list[bytes] = []
            used = 0
            for payload in cache.items[start - cache.start : tail - cache.start]:
                payloads.append(payload)
                used += len(payload)
                if used >= max_bytes:
                    break
            return ReadResult(payloads, start, start + len(payloads), tail, closed, sid)
        payloads = []
        used = 0
        for seg_state, lo, hi in await self._segments(state, start, tail):
            json_mode = is_json_content_type(seg_state.config.content_type)
            position = lo
            for seq, data, span, _ in await self._rows(
                seg_state.stream_id, lo, hi, max_bytes - used
            ):
                if seq + (1 if span is None else span) <= position:
                    continue
                if seq > position:
                    break  # rows vanished (deleted meanwhile): stop at the gap
                if span is None:
                    items = [data]
                else:
                    items = self._values.payloads(seg_state.stream_id, seq, data, json_mode)
                    items = items[position - seq : hi - seq]
                for payload in items:
                    payloads.append(payload)
                    used += len(payload)
                    position += 1
                    if used >= max_bytes:
                        break
                if used >= max_bytes:
                    break
            if used >= max_bytes or position < hi:
                break
        return ReadResult(payloads, start, start + len(payloads), tail, closed, sid)

    async def list_paths(self, prefix: str = "", *, include_internal: bool = False) -> list[str]:
        rows = await self._fetch("fetch", _LIST, prefix, time.time())
        paths = [row[0] for row in rows]
        return paths if include_internal else [p for p in paths if not is_internal(p)]

    async def read_batches(
        self, path: str, start: int, *, max_bytes: int = DEFAULT_MAX_READ_BYTES
    ) -> BatchReadResult:
        now = time.time()
        state = await self._live(path, now)
        tail, log_start, sid = state.tail, state.log_start, state.stream_id
        if start < log_start or start > tail:
            raise OffsetOutOfRange(
                f"offset {start} is outside [{log_start}, {tail}]", log_start=log_start, tail=tail
            )
        self._touch(state, now)
        if start == tail:
            return BatchReadResult([], start, start, tail, log_start, sid)
        entries: list[Entry] = []
        for seg_state, lo, hi in await self._segments(state, start, tail):
            for seq, data, span, stamp in await self._rows(seg_state.stream_id, lo, hi, max_bytes):
                if span is None:
                    if seq >= lo:
                        entries.append(
                            Entry(seq, 1, data, stamp if stamp is not None else 0, False)
                        )
                    continue
                if seq + span <= lo:
                    continue
                clipped = clip_entry(Entry(seq, span, data, stamp, True), hi)
                if clipped is not None:
                    entries.append(clipped)
        batches, end = assemble_batches(sid, entries, start, tail, max_bytes, self._batch_cache)
        return BatchReadResult(batches, start, end, tail, log_start, sid)

    async def offset_for_time(self, path: str, timestamp_ms: int) -> tuple[int, int] | None:
        state = await self._live(path, time.time())
        if state.log_start >= state.tail:
            return None
        for seg_state, lo, hi in await self._segments(state, state.log_start, state.tail):
            sid = seg_state.stream_id
            indexed = await self._fetch("fetchval", _TIME_START, sid, timestamp_ms)
            begin = lo if indexed is None else max(lo, indexed)
            first = await self._fetch("fetchval", _ENTRY_START, sid, begin)
            position = begin if first is None else first
            while position < hi:
                rows = await self._fetch(
                    "fetch", _TIME_ENTRIES, sid, position, hi, timestamp_ms, 256
                )
                for seq, data, span, stamp in rows:
                    if span is None:
                        if seq >= lo:
                            return seq, stamp
                        continue
                    if seq + span <= lo:
                        continue
                    at = max(lo, seq)
                    found = time_in_batch(data, at, hi, timestamp_ms, (at, stamp))
                    if found is not None:
                        return found
                if len(rows) < 256:
                    break
                last = rows[-1]
                position = last[0] + (1 if last[2] is None else last[2])
        return None

    # -- the key-value table ----------------------------------------------------------------

    async def kv_get(self, namespace: str, key: str) -> KvItem | None:
        row = await self._fetch(
            "fetchrow",
            "SELECT value, version FROM kv WHERE namespace = $1 AND key = $2",
            namespace,
            key,
        )
        return None if row is None else KvItem(bytes(row[0]), row[1])

    async def kv_scan(self, namespace: str, prefix: str = "") -> list[tuple[str, KvItem]]:
        rows = await self._fetch(
            "fetch",
            "SELECT key, value, version FROM kv WHERE namespace = $1 AND key >= $2"
            " AND starts_with(key, $2) ORDER BY key",
            namespace,
            prefix,
        )
        return [(row[0], KvItem(bytes(row[1]), row[2])) for row in rows]

    # -- live readers -------------------------------------------------------------------

    async def _tails(self, paths: list[str]) -> dict[str, tuple[int, int, bool, bool]]:
        """``path -> (stream id, tail, closed, soft_deleted)`` of the streams that exist."""
        rows = await self._fetch(
            "fetch",
            "SELECT path, id, tail, closed, soft_deleted FROM streams WHERE path = ANY($1::text[])",
            paths,
        )
        return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}

    async def wait(self, path: str, position: int, timeout: float) -> bool:
        """As ``Store.wait``; a wake-up that finds nothing new (a notification about another
        change, a re-check) waits again for the rest of ``timeout``."""
        notifier = self.notifier
        deadline = time.monotonic() + timeout
        while True:
            future = notifier.subscribe(path)
            try:
                try:
                    info = await self.head(path)
                except (StreamNotFound, StreamGone):
                    return True
                if info.tail > position or info.closed:
                    return True
                if notifier.closing:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                changed = await wait_for_change(future, remaining)
                if not changed or self.notifier.closing:
                    return False
            finally:
                notifier.unsubscribe(path, future)
