"""Short helpers for the store suite."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from millstream.log import (
    AppendRequest,
    AppendResult,
    CreateRequest,
    CreateResult,
    ForkSpec,
    KafkaBatch,
    ProducerClaim,
    Store,
    StreamConfig,
    parse_batch,
)

TEXT = StreamConfig("text/plain")
JSON = StreamConfig("application/json")
BYTES = StreamConfig("application/octet-stream")


async def create(
    store: Store,
    path: str,
    *messages: bytes,
    config: StreamConfig = TEXT,
    closed: bool = False,
    fork: ForkSpec | None = None,
) -> CreateResult:
    return await store.create(path, CreateRequest(config, list(messages), closed, fork))


async def append(
    store: Store,
    path: str,
    *messages: bytes,
    producer: tuple[str, int, int] | None = None,
    stream_seq: str | None = None,
    close: bool = False,
    content_type: str | None = None,
) -> AppendResult:
    claim = ProducerClaim(*producer) if producer is not None else None
    request = AppendRequest(list(messages), content_type, stream_seq, claim, close)
    return await store.append(path, request)


async def read_all(
    store: Store, path: str, start: int = 0, max_bytes: int = 1 << 20
) -> list[bytes]:
    """Every message from ``start`` to the tail, following ``next`` chunk by chunk."""
    out: list[bytes] = []
    while True:
        result = await store.read(path, start, max_bytes=max_bytes)
        assert result.start == start or (not out and result.start > start)  # the log start
        start = result.start
        assert result.next == start + len(result.payloads)
        out.extend(result.payloads)
        if result.up_to_date:
            return out
        assert result.payloads, "a read before the tail must make progress"
        start = result.next


def numbered(prefix: str, count: int) -> Sequence[bytes]:
    return [f"{prefix}{i}".encode() for i in range(count)]


def kafka_batch(
    values: Sequence[bytes | None],
    *,
    keys: Sequence[bytes | None] | None = None,
    headers: Sequence[list[tuple[str, bytes | None]]] | None = None,
    timestamps: Sequence[int] | None = None,
    producer: tuple[int, int, int] | None = None,
    compression: int = 0,
    log_append_time: bool = False,
) -> KafkaBatch:
    """A v2 batch built by kafka-python's own builder (the oracle), parsed by ours."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    pid, epoch, seq = producer if producer is not None else (-1, -1, -1)
    builder = DefaultRecordBatchBuilder(2, compression, False, pid, epoch, seq, 1 << 30)
    base_ts = 1_700_000_000_000
    for i, value in enumerate(values):
        stamp = timestamps[i] if timestamps is not None else base_ts + i
        key = keys[i] if keys is not None else None
        record_headers = headers[i] if headers is not None else []
        assert builder.append(i, stamp, key, value, record_headers) is not None
    batch = parse_batch(bytes(builder.build()))
    return dataclasses.replace(batch, log_append_time=log_append_time)


def decode_batches(batches: Sequence[bytes]) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """(offset, timestamp, key, value) of every record, decoded by kafka-python (the oracle)."""
    from kafka.record.default_records import DefaultRecordBatch

    out = []
    for data in batches:
        batch = DefaultRecordBatch(bytearray(data))
        assert batch.validate_crc()
        out.extend((record.offset, record.timestamp, record.key, record.value) for record in batch)
    return out
