"""How each front door sees the other's entries, decided once for every store.

A stream holds two kinds of entries: a Durable Streams message (one position, its bytes) and a
Kafka record batch (``count`` positions, the producer's bytes with the base offset rewritten).

- **HTTP readers** get one payload per position. A batch's records are decoded (decompressed)
  and each record becomes its value. In a JSON stream every payload must be one JSON value, so
  a record value that is valid JSON is passed as it is, a null value (a Kafka tombstone) reads
  as ``null``, and any other value reads as a JSON string of its text (bytes that are not UTF-8
  become U+FFFD). In other streams a null value reads as an empty message. A batch that passed
  its CRC on produce but whose records do not decode (the produce path never decodes them)
  reads as one such null/empty payload per position, so positions stay dense and readers are
  never stuck.
- **Kafka readers** get record batches. Stored batches pass through untouched. Runs of
  messages are encoded as uncompressed batches (key null, no headers, the append time as
  CreateTime): the first from the fetch position to the next multiple of ``PLAIN_CHUNK``, then
  aligned chunks, so consumers at different offsets share the encoded chunks in ``BatchCache``.

Both caches are bounded LRUs shared by all streams of a store and safe to use from the event
loop and worker threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson

from ._batches import BATCH_HEADER_SIZE, encode_batch, iter_records, record_values, slice_batch
from ._errors import CorruptBatch

__all__ = [
    "PLAIN_CHUNK",
    "BatchCache",
    "Entry",
    "ValueCache",
    "assemble_batches",
    "batch_count",
    "clip_entry",
    "http_payloads",
    "json_payload",
    "time_in_batch",
]

#: Messages per encoded batch when Durable Streams messages are read over Kafka.
PLAIN_CHUNK = 256


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored entry as a store hands it to ``assemble_batches``: ``batch`` is ``None`` for
    a message (``payload`` and ``timestamp_ms`` set), else the stored batch's bytes."""

    position: int
    count: int
    payload: bytes
    timestamp_ms: int
    batch: bool


def json_payload(value: bytes | None) -> bytes:
    """A record value as one JSON value (see the module docstring)."""
    if value is None:
        return b"null"
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError:
        return orjson.dumps(value.decode("utf-8", "replace"))
    return value


def batch_count(data: bytes) -> int:
    """The records a stored batch spans, from its header (lastOffsetDelta + 1)."""
    return int.from_bytes(data[23:27], "big", signed=True) + 1


def http_payloads(data: bytes, json_mode: bool) -> list[bytes]:
    """One payload per position of a stored batch, as HTTP readers see it."""
    try:
        values = record_values(data)
    except CorruptBatch:
        count = batch_count(data) if len(data) >= BATCH_HEADER_SIZE else 1
        return [b"null" if json_mode else b""] * count
    if json_mode:
        return [json_payload(value) for value in values]
    return [b"" if value is None else value for value in values]


class _Lru:
    """A byte-bounded LRU behind a lock."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[object, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: object) -> object | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: object, value: object, size: int) -> None:
        if size > self.max_bytes // 4:
            return  # one huge item would evict everything else
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def drop_where(self, predicate: Callable[[object], bool]) -> None:
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                self._bytes -= self._items.pop(key)[1]

    def statistics(self) -> dict[str, int]:
        return {"items": len(self._items), "bytes": self._bytes, "hits": self.hits}


class ValueCache(_Lru):
    """Decoded HTTP payloads of stored batches, keyed ``(stream_id, base_offset)``."""

    def __init__(self, max_bytes: int = 32 << 20) -> None:
        super().__init__(max_bytes)

    def payloads(self, stream_id: int, base: int, data: bytes, json_mode: bool) -> list[bytes]:
        key = (stream_id, base)
        cached = self.get(key)
        if cached is not None:
            return cached  # type: ignore[return-value]
        payloads = http_payloads(data, json_mode)
        self.put(key, payloads, sum(map(len, payloads)) + 64 * len(payloads))
        return payloads


class BatchCache(_Lru):
    """Batches encoded from runs of messages, keyed ``(stream_id, first, end)``."""

    def __init__(self, max_bytes: int = 32 << 20) -> None:
        super().__init__(max_bytes)

    def encoded(self, stream_id: int, run: list[Entry]) -> bytes:
        key = (stream_id, run[0].position, run[-1].position + 1)
        cached = self.get(key)
        if cached is not None:
            return cached  # type: ignore[return-value]
        data = encode_batch(
            run[0].position, [e.payload for e in run], [e.timestamp_ms for e in run]
        )
        self.put(key, data, len(data))
        return data

    def forget(self, stream_id: int) -> None:
        """Drop a deleted or truncated stream's batches."""
        self.drop_where(lambda key: key[0] == stream_id)  # type: ignore[index]


def time_in_batch(
    data: bytes, start: int, end: int, target: int, fallback: tuple[int, int]
) -> tuple[int, int] | None:
    """The first record of a stored batch in ``[start, end)`` whose timestamp reaches
    ``target`` (Kafka ListOffsets by time looks inside the batch the same way); ``fallback``
    for a batch whose records do not decode."""
    try:
        for record in iter_records(data):
            if start <= record.offset < end and record.timestamp_ms >= target:
                return record.offset, record.timestamp_ms
    except CorruptBatch:
        return fallback
    return None


def clip_entry(entry: Entry, end: int) -> Entry | None:
    """``entry`` limited to positions below ``end``: a stored batch that reaches past a fork
    point is re-encoded with only the records below it (the rare read that cannot pass a
    batch through). ``None`` if nothing of it is left."""
    if entry.position >= end:
        return None
    if entry.position + entry.count <= end:
        return entry
    try:
        cut = slice_batch(entry.payload, entry.position, end)
    except CorruptBatch:
        return entry  # undecodable: pass it whole, as Kafka itself would
    if cut is None:
        return None
    return Entry(entry.position, end - entry.position, cut, entry.timestamp_ms, True)


def assemble_batches(
    stream_id: int,
    entries: Iterable[Entry],
    start: int,
    end: int,
    max_bytes: int,
    cache: BatchCache,
) -> tuple[list[bytes], int]:
    """Kafka batches for positions ``[start, end)`` from ``entries`` (in order, the first one
    holding ``start``): stored batches as they are, messages encoded in chunks. Stops once
    ``max_bytes`` is reached (at least one batch). Returns ``(batches, next position)``.

    A fork's store hands in its source's last batch below the fork point already cut
    (``clip_entry``).
    """
    out: list[bytes] = []
    used = run_bytes = 0
    position = start
    run: list[Entry] = []

    def flush() -> None:
        nonlocal used, position, run_bytes
        if run:
            data = cache.encoded(stream_id, run)
            out.append(data)
            used += len(data)
            position = run[-1].position + 1
            run.clear()
            run_bytes = 0

    for entry in entries:
        if used >= max_bytes or entry.position >= end:
            break
        if not entry.batch:
            if run and entry.position // PLAIN_CHUNK != run[0].position // PLAIN_CHUNK:
                flush()
                if used >= max_bytes:
                    break
            run.append(entry)
            run_bytes += len(entry.payload)
            if used + run_bytes >= max_bytes:
                flush()
            continue
        flush()
        if used >= max_bytes:
            break
        out.append(entry.payload)
        used += len(entry.payload)
        position = entry.position + entry.count
    flush()
    return out, max(position, start)
