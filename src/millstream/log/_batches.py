"""Kafka v2 record batches (magic 2): the log entry format both front doors share.

The layout (Kafka protocol guide, "Record Batch"; KIP-98 added the producer fields) is, with
byte offsets from the start of the batch, big-endian::

     0 baseOffset           int64   assigned by the log (rewritten by the store)
     8 batchLength          int32   bytes after this field (so the batch is batchLength + 12)
    12 partitionLeaderEpoch int32   not covered by the CRC
    16 magic                int8    2
    17 crc                  uint32  CRC-32C (Castagnoli) of every byte from attributes on
    21 attributes           int16   bits 0-2 compression (0 none, 1 gzip, 2 snappy, 3 lz4,
                                    4 zstd), bit 3 timestamp type (1 = LogAppendTime),
                                    bit 4 transactional, bit 5 control batch
    23 lastOffsetDelta      int32
    27 baseTimestamp        int64   (firstTimestamp)
    35 maxTimestamp         int64
    43 producerId           int64   -1 if not idempotent
    51 producerEpoch        int16
    53 baseSequence         int32   sequence of the first record (KIP-98)
    57 recordsCount         int32
    61 records              the records, compressed as a whole if attributes say so

Each record: ``length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
keyLength varint (-1 = null), key, valueLength varint (-1 = null), value, headerCount varint,
then per header keyLength varint, key (UTF-8), valueLength varint (-1 = null), value``.
Varints are zigzag-encoded (as in protobuf).

The produce path only calls ``parse_batch``: 61 header bytes and one CRC-32C pass in C; records
are never decoded there. Readers decode (``iter_records``, ``record_values``) and encoders build
uncompressed batches for Durable Streams messages (``encode_batch``). Compression: gzip, snappy
(raw, or xerial-framed as the Java and kafka-python clients write it; librdkafka reads both),
lz4 (the LZ4 frame format, as Kafka since 0.10 / magic 1 writes it) and zstd, all through
``cramjam``, the binding aiokafka itself uses; decompression is bounded (``MAX_DECOMPRESSED``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cramjam
from crc32c import crc32c

from ._errors import CorruptBatch
from ._model import KafkaBatch

__all__ = [
    "BATCH_HEADER_SIZE",
    "COMPRESSION_NAMES",
    "MAX_DECOMPRESSED",
    "Record",
    "encode_batch",
    "iter_records",
    "parse_batch",
    "record_values",
    "slice_batch",
    "split_batches",
    "stamp_batch",
    "with_base_offset",
]

BATCH_HEADER_SIZE = 61
#: At most this many bytes come out of decompressing one batch (a compressed batch is small on
#: the wire but could expand without limit); a larger one reads as corrupt.
MAX_DECOMPRESSED = 64 << 20
COMPRESSION_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

ATTR_COMPRESSION = 0x07
ATTR_LOG_APPEND_TIME = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20

_HEADER = struct.Struct(">qiibIhiqqqhii")
_ATTRIBUTES = struct.Struct(">h")
_COUNT = struct.Struct(">i")
_CRC_START = 21
_XERIAL_MAGIC = b"\x82SNAPPY\x00"


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded record: its absolute offset, timestamp and content."""

    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


# -- the header: the only thing the produce path reads ----------------------------------------


def parse_batch(data: bytes | memoryview) -> KafkaBatch:
    """Check one whole batch's header and CRC-32C; return it as a ``KafkaBatch`` whose
    ``data`` is ``data`` itself (a view stays a view: no copy).

    Raises ``CorruptBatch`` (Kafka CORRUPT_MESSAGE) for a short or oversized buffer, a length
    that disagrees with the buffer, a magic other than 2, a CRC mismatch, or a record count that
    disagrees with ``lastOffsetDelta``. Records are not decoded.
    """
    if len(data) < BATCH_HEADER_SIZE:
        raise CorruptBatch(f"a record batch needs {BATCH_HEADER_SIZE} bytes, got {len(data)}")
    (_, length, _, magic, crc, attributes, last_delta, first_ts, max_ts, pid, epoch, seq,
     count) = _HEADER.unpack_from(data)  # fmt: skip
    if magic != 2:
        raise CorruptBatch(f"record batch magic {magic} is not supported (only 2)")
    if length + 12 != len(data):
        raise CorruptBatch(f"batchLength {length} does not match the {len(data)} bytes given")
    if count < 1 or count != last_delta + 1:
        raise CorruptBatch(f"recordsCount {count} does not match lastOffsetDelta {last_delta}")
    if crc32c(memoryview(data)[_CRC_START:]) != crc:
        raise CorruptBatch("record batch CRC-32C mismatch")
    return KafkaBatch(
        data=data,
        record_count=count,
        first_timestamp_ms=first_ts,
        max_timestamp_ms=max_ts,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        attributes=attributes,
    )


def split_batches(records: bytes | memoryview) -> list[KafkaBatch]:
    """Parse a Produce request's ``records`` field: one or more batches laid end to end.

    Each batch's ``data`` is a view of ``records``, not a copy: keep ``records`` unchanged until
    the batches are stored (a store copies what it keeps; a batch file writes the view).
    """
    out: list[KafkaBatch] = []
    view = memoryview(records)
    position = 0
    while position < len(view):
        if len(view) - position < 12:
            raise CorruptBatch("truncated record batch")
        (length,) = struct.unpack_from(">i", view, position + 8)
        end = position + 12 + length
        if length < BATCH_HEADER_SIZE - 12 or end > len(view):
            raise CorruptBatch(f"batchLength {length} runs past the records given")
        out.append(parse_batch(view[position:end]))
        position = end
    return out


def with_base_offset(data: bytes | memoryview, base_offset: int) -> bytes:
    """``data`` with its baseOffset set (the CRC does not cover it, so it stays valid)."""
    return base_offset.to_bytes(8, "big", signed=True) + data[8:]


def stamp_batch(data: bytes | memoryview, base_offset: int, log_append_time_ms: int) -> bytes:
    """Set baseOffset, and mark the batch LogAppendTime with ``maxTimestamp`` =
    ``log_append_time_ms`` (as a Kafka broker does for such topics), recomputing the CRC."""
    buffer = bytearray(data)
    struct.pack_into(">q", buffer, 0, base_offset)
    (attributes,) = struct.unpack_from(">h", buffer, 21)
    struct.pack_into(">h", buffer, 21, attributes | ATTR_LOG_APPEND_TIME)
    struct.pack_into(">q", buffer, 35, log_append_time_ms)
    struct.pack_into(">I", buffer, 17, crc32c(memoryview(buffer)[_CRC_START:]))
    return bytes(buffer)


# -- records: readers only --------------------------------------------------------------------


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint (up to 64 bits) at ``pos``: (value, position after it)."""
    shift = 0
    raw = 0
    while True:
        if pos >= len(data):
            raise CorruptBatch("a record ends inside a varint")
        byte = data[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
        if shift > 63:
            raise CorruptBatch("a varint is longer than 10 bytes")


def _bounded(decompress_into: object, payload: bytes) -> bytes:
    """Run a cramjam ``decompress_into`` with a growing buffer, never past MAX_DECOMPRESSED."""
    size = min(max(len(payload) * 4, 1 << 16), MAX_DECOMPRESSED)
    while True:
        buffer = bytearray(size)
        try:
            written = decompress_into(payload, buffer)  # type: ignore[operator]
        except cramjam.DecompressionError as exc:
            if "whole buffer" not in str(exc):
                raise CorruptBatch(f"cannot decompress a record batch: {exc}") from exc
            if size >= MAX_DECOMPRESSED:
                raise CorruptBatch(
                    f"a record batch decompresses to more than {MAX_DECOMPRESSED} bytes"
                ) from exc
            size = min(size * 4, MAX_DECOMPRESSED)
            continue
        if written < size:
            return bytes(memoryview(buffer)[:written])
        if size >= MAX_DECOMPRESSED:
            raise CorruptBatch(f"a record batch decompresses to more than {MAX_DECOMPRESSED} bytes")
        size = min(size * 4, MAX_DECOMPRESSED)  # exactly full: there may be more


def _snappy_raw(payload: bytes) -> bytes:
    # Raw snappy starts with the uncompressed length as a plain (unsigned) varint.
    length, shift, pos = 0, 0, 0
    while pos < len(payload) and pos < 5:
        byte = payload[pos]
        length |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            break
        shift += 7
    if length > MAX_DECOMPRESSED:
        raise CorruptBatch(f"a record batch decompresses to more than {MAX_DECOMPRESSED} bytes")
    buffer = bytearray(length)
    try:
        written = cramjam.snappy.decompress_raw_into(payload, buffer)
    except cramjam.DecompressionError as exc:
        raise CorruptBatch(f"cannot decompress a snappy record batch: {exc}") from exc
    return bytes(memoryview(buffer)[:written])


def _snappy(payload: bytes) -> bytes:
    """Raw snappy, or xerial's framing: 16-byte header, then (int32 length, raw block)*."""
    if not payload.startswith(_XERIAL_MAGIC) or len(payload) < 16:
        return _snappy_raw(payload)
    parts: list[bytes] = []
    total, pos = 0, 16
    while pos < len(payload):
        if pos + 4 > len(payload):
            raise CorruptBatch("a xerial snappy block header is cut off")
        (size,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        if size < 0 or pos + size > len(payload):
            raise CorruptBatch("a xerial snappy block runs past the batch")
        block = _snappy_raw(payload[pos : pos + size])
        total += len(block)
        if total > MAX_DECOMPRESSED:
            raise CorruptBatch(f"a record batch decompresses to more than {MAX_DECOMPRESSED} bytes")
        parts.append(block)
        pos += size
    return b"".join(parts)


def _records_bytes(data: bytes, attributes: int) -> bytes:
    payload = data[BATCH_HEADER_SIZE:]
    codec = attributes & ATTR_COMPRESSION
    if codec == 0:
        return payload
    if codec == 1:
        return _bounded(cramjam.gzip.decompress_into, payload)
    if codec == 2:
        return _snappy(payload)
    if codec == 3:
        return _bounded(cramjam.lz4.decompress_into, payload)
    if codec == 4:
        return _bounded(cramjam.zstd.decompress_into, payload)
    raise CorruptBatch(f"unknown compression codec {codec}")


def iter_records(data: bytes) -> Iterator[Record]:
    """Decode every record of one batch (decompressing it first); offsets are absolute.

    Raises ``CorruptBatch`` if the records do not parse. LogAppendTime batches give every
    record the batch's maxTimestamp, as Kafka consumers do.
    """
    if len(data) < BATCH_HEADER_SIZE:
        raise CorruptBatch("a record batch is shorter than its header")
    (base, _, _, _, _, attributes, _, first_ts, max_ts, _, _, _, count) = _HEADER.unpack_from(data)
    body = _records_bytes(data, attributes)
    append_time = bool(attributes & ATTR_LOG_APPEND_TIME)
    pos = 0
    for _ in range(count):
        length, pos = _read_varint(body, pos)
        end = pos + length
        if length < 0 or end > len(body):
            raise CorruptBatch("a record runs past the end of its batch")
        pos += 1  # record attributes: unused
        ts_delta, pos = _read_varint(body, pos)
        offset_delta, pos = _read_varint(body, pos)
        key, pos = _read_bytes(body, pos, end)
        value, pos = _read_bytes(body, pos, end)
        header_count, pos = _read_varint(body, pos)
        if header_count < 0 or header_count > length:
            raise CorruptBatch("a record's header count is out of range")
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(header_count):
            name, pos = _read_bytes(body, pos, end)
            header_value, pos = _read_bytes(body, pos, end)
            if name is None:
                raise CorruptBatch("a record header has a null key")
            try:
                headers.append((name.decode(), header_value))
            except UnicodeDecodeError as exc:
                raise CorruptBatch("a record header key is not UTF-8") from exc
        if pos != end:
            raise CorruptBatch("a record's length disagrees with its fields")
        timestamp = max_ts if append_time else first_ts + ts_delta
        yield Record(base + offset_delta, timestamp, key, value, tuple(headers))


def _read_bytes(body: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    length, pos = _read_varint(body, pos)
    if length < 0:
        return None, pos
    if pos + length > end:
        raise CorruptBatch("a record field runs past the end of its record")
    return body[pos : pos + length], pos + length


def record_values(data: bytes) -> list[bytes | None]:
    """The value of every record of a batch, in offset order (what an HTTP reader gets).

    The read path of every HTTP reader (and the Sentinel) of a Kafka-written stream: records
    without headers are sliced out here, one-byte varints read in line, without building
    ``Record``s. Anything unusual (headers, a record that does not add up) goes to
    ``iter_records``, which decodes it or says what is wrong, so both accept the same batches.
    """
    if len(data) < BATCH_HEADER_SIZE:
        return [record.value for record in iter_records(data)]
    attributes, count = _ATTRIBUTES.unpack_from(data, 21)[0], _COUNT.unpack_from(data, 57)[0]
    body = _records_bytes(data, attributes)
    size = len(body)
    values: list[bytes | None] = []
    append = values.append
    pos = 0
    try:
        for _ in range(count):
            byte = body[pos]
            if byte < 0x80:
                length = (byte >> 1) ^ -(byte & 1)
                pos += 1
            else:
                length, pos = _read_varint(body, pos)
            end = pos + length
            if length < 0 or end > size:
                raise _Unusual
            pos += 1  # record attributes
            for _field in range(3):  # timestampDelta, offsetDelta (unused), then keyLength
                byte = body[pos]
                if byte < 0x80:
                    field = (byte >> 1) ^ -(byte & 1)
                    pos += 1
                else:
                    field, pos = _read_varint(body, pos)
            if field > 0:  # the key: skipped
                pos += field
            byte = body[pos]
            if byte < 0x80:
                field = (byte >> 1) ^ -(byte & 1)
                pos += 1
            else:
                field, pos = _read_varint(body, pos)
            if field < 0:
                append(None)
            else:
                append(body[pos : pos + field])
                pos += field
            if pos >= end or body[pos] != 0:  # one byte: headerCount 0 (varint 0)
                raise _Unusual
            pos += 1
            if pos != end:
                raise _Unusual
    except (_Unusual, CorruptBatch, IndexError):
        return [record.value for record in iter_records(data)]
    return values


class _Unusual(Exception):
    """A record ``record_values`` leaves to ``iter_records``."""


# -- encoding: Durable Streams messages as batches ------------------------------------------


def _varint(value: int) -> bytes:
    raw = (value << 1) ^ (value >> 63)
    if raw < 0x80:
        return bytes((raw,))
    out = bytearray()
    while raw >= 0x80:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


_NULL = _varint(-1)
_ZERO = b"\x00"
_SMALL = [_varint(i) for i in range(2048)]


def _small(value: int) -> bytes:
    return _SMALL[value] if 0 <= value < 2048 else _varint(value)


def encode_batch(
    base_offset: int,
    values: Sequence[bytes | None],
    timestamps: Sequence[int],
    *,
    keys: Sequence[bytes | None] | None = None,
    headers: Sequence[Sequence[tuple[str, bytes | None]]] | None = None,
    log_append_time: bool = False,
) -> bytes:
    """An uncompressed v2 batch of ``values`` at offsets ``base_offset, base_offset+1, ...``.

    No producer id (-1), partitionLeaderEpoch -1. ``timestamps`` has one entry per value. Used
    for Durable Streams messages read over Kafka (key null, no headers, the append time).
    """
    if not values or len(values) != len(timestamps):
        raise ValueError("encode_batch needs one timestamp per value, and at least one value")
    first_ts = timestamps[0]
    parts: list[bytes] = []
    for i, value in enumerate(values):
        key = keys[i] if keys is not None else None
        fields = [
            _ZERO,
            _small(timestamps[i] - first_ts),
            _small(i),
            _NULL if key is None else _small(len(key)) + key,
            _NULL if value is None else _small(len(value)) + value,
        ]
        record_headers = headers[i] if headers is not None else ()
        fields.append(_small(len(record_headers)))
        for name, header_value in record_headers:
            raw_name = name.encode()
            fields.append(_small(len(raw_name)) + raw_name)
            fields.append(
                _NULL if header_value is None else _small(len(header_value)) + header_value
            )
        record = b"".join(fields)
        parts.append(_small(len(record)))
        parts.append(record)
    body = b"".join(parts)
    attributes = ATTR_LOG_APPEND_TIME if log_append_time else 0
    count = len(values)
    tail = struct.pack(
        ">hiqqqhii", attributes, count - 1, first_ts, max(timestamps), -1, -1, -1, count
    )
    crc = crc32c(body, crc32c(tail))
    head = struct.pack(">qiibI", base_offset, len(body) + BATCH_HEADER_SIZE - 12, -1, 2, crc)
    return head + tail + body


def slice_batch(data: bytes, start: int, end: int) -> bytes | None:
    """Re-encode the records of ``data`` with offsets in ``[start, end)`` as an uncompressed
    batch (keys, headers and timestamps kept), or ``None`` if there are none. For the rare read
    that must not pass a whole stored batch through (a fork point inside a batch)."""
    records = [r for r in iter_records(data) if start <= r.offset < end]
    if not records:
        return None
    return encode_batch(
        records[0].offset,
        [r.value for r in records],
        [r.timestamp_ms for r in records],
        keys=[r.key for r in records],
        headers=[r.headers for r in records],
    )
