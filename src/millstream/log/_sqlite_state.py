"""What ``SqliteStore`` keeps in memory: committed stream states and recent payloads.

Two threads touch these: the event loop (reads) and the writer thread (commits). The rule that
keeps them consistent is copy-on-write: the writer never mutates a published ``StreamState``
that readers can see (except ``producers``, which only the writer reads); it mutates a copy,
commits, and then publishes the copy with one dict assignment. So a reader's snapshot always
describes committed data. Readers may bump ``last_access`` in place (sliding TTL); the writer
keeps the larger value when it publishes.

Under ``fsync="always"`` a committed batch is published only after its fsync
(``_sqlite_sync``). Meanwhile its states are *staged*: the writer builds the next batches on
them (``latest``), readers do not see them, and a reader does not load a staged path from the
file either (that would show a stream created by a batch not yet on disk).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence

from ._model import KvItem
from ._rules import StreamState
from ._sqlite_schema import load_state

__all__ = ["KvOverlay", "StateTable", "TailCache", "TailCaches", "copy_state"]


def copy_state(state: StreamState) -> StreamState:
    """A copy the writer may mutate; ``producers`` and ``kafka_producers`` are shared (only the
    writer reads them)."""
    return StreamState(
        path=state.path,
        stream_id=state.stream_id,
        config=state.config,
        tail=state.tail,
        closed=state.closed,
        closed_by=state.closed_by,
        last_stream_seq=state.last_stream_seq,
        producers=state.producers,
        fork=state.fork,
        fork_base=state.fork_base,
        refcount=state.refcount,
        soft_deleted=state.soft_deleted,
        last_access=state.last_access,
        kafka_producers=state.kafka_producers,
        log_start=state.log_start,
        max_timestamp=state.max_timestamp,
        kafka_entries=state.kafka_entries,
        time_indexed=state.time_indexed,
    )


class KvOverlay:
    """Key-value writes committed but not yet fsynced (``fsync="always"``), hidden from readers.

    Readers query the file, which already holds such a write; for a key staged here they get
    the value that was visible before instead, until the batch that wrote it is published (the
    same staging as stream states above). Per key: the visible item and the pending writes of
    later batches, in commit order.
    """

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], tuple[KvItem | None, list[tuple[int, KvItem | None]]]]
        self._keys = {}
        self._lock = threading.Lock()

    def stage(
        self,
        number: int,
        changes: dict[tuple[str, str], KvItem | None],
        before: dict[tuple[str, str], KvItem | None],
    ) -> None:
        with self._lock:
            for where, item in changes.items():
                entry = self._keys.get(where)
                if entry is None:
                    self._keys[where] = (before.get(where), [(number, item)])
                else:
                    entry[1].append((number, item))

    def unstage(self, number: int) -> None:
        with self._lock:
            for where in list(self._keys):
                visible, pending = self._keys[where]
                kept = [p for p in pending if p[0] != number]
                if kept:
                    self._keys[where] = (visible, kept)
                else:
                    del self._keys[where]

    def publish(self, number: int) -> None:
        with self._lock:
            for where in list(self._keys):
                visible, pending = self._keys[where]
                while pending and pending[0][0] <= number:
                    visible = pending.pop(0)[1]
                if pending:
                    self._keys[where] = (visible, pending)
                else:
                    del self._keys[where]

    def read(
        self, namespace: str, key: str, load: Callable[[str, str], KvItem | None]
    ) -> KvItem | None:
        """What a reader sees of ``key``: the staged key's visible item, else ``load``'s.

        ``load`` runs under the lock the writer stages with (before its COMMIT), so it never
        sees a write that is committed but neither staged nor fsynced.
        """
        with self._lock:
            entry = self._keys.get((namespace, key))
            if entry is not None:
                return entry[0]
            return load(namespace, key)

    def scan(
        self,
        namespace: str,
        prefix: str,
        load: Callable[[str, str], list[tuple[str, KvItem]]],
    ) -> list[tuple[str, KvItem]]:
        """``load``'s rows with the staged keys of ``namespace``/``prefix`` as readers see them."""
        with self._lock:
            rows = dict(load(namespace, prefix))
            for (ns, key), (visible, _) in self._keys.items():
                if ns == namespace and key.startswith(prefix):
                    if visible is None:
                        rows.pop(key, None)
                    else:
                        rows[key] = visible
        return sorted(rows.items(), key=lambda pair: pair[0])


class StateTable:
    """Committed ``StreamState`` per path, loaded from the file on first access (lazily).

    Nothing is loaded at start-up, so a file with millions of streams opens at once. Memory
    follows the active streams: ``trim`` (the writer runs it between batches) forgets states
    idle for ``idle_seconds`` and, past ``max_states``, the least recently used ones; the next
    access reloads them from the file. Never trimmed: staged states (committed, not yet
    fsynced: the file is ahead of what readers may see) and states whose sliding-TTL renewal
    has not reached the file yet.
    """

    def __init__(self, *, max_states: int = 10_000, idle_seconds: float = 300.0) -> None:
        self.max_states = max_states
        self.idle_seconds = idle_seconds
        self.evictions = 0
        self._last_trim = 0.0
        self.states: dict[str, StreamState] = {}
        self.lock = threading.Lock()
        self.access_dirty: set[str] = set()  # paths whose last_access is ahead of the file
        # committed, not yet fsynced: path -> (batch number, state or None if removed)
        self.staged: dict[str, tuple[int, StreamState | None]] = {}
        self.kv = KvOverlay()

    def lookup(self, conn: sqlite3.Connection, path: str) -> StreamState | None:
        """The published state of ``path`` (any lifecycle stage), or ``None`` if absent."""
        state = self.states.get(path)
        if state is not None:
            return state
        with self.lock:
            state = self.states.get(path)
            if state is None and path not in self.staged:
                state = load_state(conn, path)
                if state is not None:
                    self.states[path] = state
            return state

    def latest(self, conn: sqlite3.Connection, path: str) -> StreamState | None:
        """For the writer: the newest committed state, staged or published."""
        entry = self.staged.get(path)
        if entry is not None:
            return entry[1]
        return self.lookup(conn, path)

    def stage(self, number: int, changes: dict[str, StreamState | None]) -> None:
        """Record batch ``number``'s committed states until ``publish`` makes them visible."""
        with self.lock:
            for path, state in changes.items():
                self.staged[path] = (number, state)

    def unstage(self, number: int) -> None:
        """Forget what batch ``number`` staged (its commit failed)."""
        with self.lock:
            for path in [p for p, (n, _) in self.staged.items() if n == number]:
                del self.staged[path]

    def publish(self, changes: dict[str, StreamState | None], number: int | None = None) -> None:
        """Make committed copies visible (``None``: the path's stream was removed).

        ``number``: the staged batch being published; its entries leave the stage unless a
        later batch has staged the path again.
        """
        with self.lock:
            for path, state in changes.items():
                old = self.states.get(path)
                if state is None:
                    if old is not None:
                        del self.states[path]
                    continue
                if old is not None and old.stream_id == state.stream_id:
                    state.last_access = max(state.last_access, old.last_access)
                self.states[path] = state
            # Unstaged only now: the writer reads ``staged`` then ``states`` without the lock.
            if number is not None:
                for path in changes:
                    entry = self.staged.get(path)
                    if entry is not None and entry[0] == number:
                        del self.staged[path]

    def trim(self, now: float, *, every: float = 1.0) -> int:
        """Forget idle states (see the class docstring); return how many. Cheap when there is
        nothing to do: a full pass runs at most every ``every`` seconds unless over the cap."""
        over = len(self.states) > self.max_states
        if not over and now - self._last_trim < every:
            return 0
        self._last_trim = now
        with self.lock:
            keep_out = self.staged.keys() | self.access_dirty
            limit = now - self.idle_seconds
            candidates = [
                (state.last_access, path)
                for path, state in self.states.items()
                if path not in keep_out
            ]
            doomed = [path for last, path in candidates if last < limit]
            excess = len(self.states) - len(doomed) - int(self.max_states * 0.9)
            if over and excess > 0:
                fresh = sorted(c for c in candidates if c[0] >= limit)
                doomed.extend(path for _, path in fresh[:excess])
            for path in doomed:
                del self.states[path]
        self.evictions += len(doomed)
        return len(doomed)

    def evict(self, paths: Iterable[str]) -> None:
        """Forget ``paths`` so their next access reloads them from the file (failed commit)."""
        with self.lock:
            for path in paths:
                self.states.pop(path, None)


class TailCache:
    """Recent payloads of one stream: ``items[i]`` is the message at position ``start + i``.

    A cache object's ``start`` never changes and ``items`` only grows, so a reader holding one
    can slice it while the writer appends; trimming replaces the object.
    """

    __slots__ = ("items", "nbytes", "start")

    def __init__(self, start: int, items: list[bytes], nbytes: int) -> None:
        self.start = start
        self.items = items
        self.nbytes = nbytes

    def covers(self, start: int, end: int) -> bool:
        return self.start <= start and end <= self.start + len(self.items)


class TailCaches:
    """Bounded per-stream tail caches so live readers re-reading after each append skip SQL.

    Each stream keeps at most ``per_stream_items`` messages / ``per_stream_bytes``; all streams
    together at most ``total_bytes`` and ``max_streams`` caches (least recently appended
    streams are dropped first).
    Mutated only by the writer thread; readers only call ``get``.
    """

    def __init__(
        self,
        *,
        per_stream_items: int = 1024,
        per_stream_bytes: int = 1 << 20,
        total_bytes: int = 64 << 20,
        max_streams: int = 4096,
    ) -> None:
        self._caches: dict[int, TailCache] = {}
        self.max_streams = max_streams
        self.per_stream_items = per_stream_items
        self.per_stream_bytes = per_stream_bytes
        self.total_bytes = total_bytes
        self._bytes = 0

    def get(self, stream_id: int) -> TailCache | None:
        return self._caches.get(stream_id)

    def extend(self, stream_id: int, start: int, payloads: Sequence[bytes]) -> None:
        """Record ``payloads`` committed at positions ``start, start+1, ...``."""
        added = sum(map(len, payloads))
        cache = self._caches.pop(stream_id, None)  # re-inserted last: the dict order is the LRU
        if cache is not None and cache.start + len(cache.items) != start:
            self._bytes -= cache.nbytes
            cache = None
        if cache is None:
            cache = TailCache(start, [], 0)
        cache.items.extend(payloads)
        cache.nbytes += added
        self._bytes += added
        if len(cache.items) > self.per_stream_items or cache.nbytes > self.per_stream_bytes:
            cache = self._trimmed(cache)
        self._caches[stream_id] = cache
        while (self._bytes > self.total_bytes or len(self._caches) > self.max_streams) and len(
            self._caches
        ) > 1:
            oldest = next(iter(self._caches))
            self._bytes -= self._caches.pop(oldest).nbytes

    def _trimmed(self, cache: TailCache) -> TailCache:
        """A new cache holding the newest half of the limits (so trims are rare)."""
        keep_items, keep_bytes, nbytes = self.per_stream_items // 2, self.per_stream_bytes // 2, 0
        items = cache.items
        cut = len(items)
        while (
            cut > 0 and len(items) - cut < keep_items and nbytes + len(items[cut - 1]) <= keep_bytes
        ):
            cut -= 1
            nbytes += len(items[cut])
        self._bytes -= cache.nbytes - nbytes
        return TailCache(cache.start + cut, items[cut:], nbytes)

    def drop(self, stream_id: int) -> None:
        cache = self._caches.pop(stream_id, None)
        if cache is not None:
            self._bytes -= cache.nbytes

    def statistics(self) -> dict[str, int]:
        return {"streams": len(self._caches), "bytes": self._bytes}
