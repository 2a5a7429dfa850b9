"""The Kafka v2 record batch format (``millstream.log._batches``) against two oracles:
kafka-python's ``kafka.record`` and aiokafka's record builders/readers. Round trips both ways,
every compression, property-based; malformed input only ever raises ``CorruptBatch``."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import cramjam
import pytest
from aiokafka.record.default_records import DefaultRecordBatch as AioBatch
from aiokafka.record.default_records import DefaultRecordBatchBuilder as AioBuilder
from crc32c import crc32c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch as KpBatch
from kafka.record.default_records import DefaultRecordBatchBuilder as KpBuilder

from millstream.log import (
    CorruptBatch,
    encode_batch,
    iter_records,
    parse_batch,
    record_values,
    split_batches,
)
from millstream.log._batches import MAX_DECOMPRESSED, stamp_batch, with_base_offset

T0 = 1_700_000_000_000

records_strategy = st.lists(
    st.tuples(
        st.integers(0, 10_000),  # timestamp delta
        st.none() | st.binary(max_size=40),  # key
        st.none() | st.binary(max_size=300),  # value
        st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=12)), max_size=3),
    ),
    min_size=1,
    max_size=30,
)
producer_strategy = st.one_of(
    st.just((-1, -1, -1)),
    st.tuples(st.integers(0, 2**40), st.integers(0, 32767), st.integers(0, 2**31 - 1)),
)
Rec = tuple[int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]


def build(
    builder_class: Any, records: list[Rec], compression: int, producer: tuple[int, ...]
) -> bytes:
    pid, epoch, seq = producer
    builder = builder_class(2, compression, False, pid, epoch, seq, 1 << 30)
    for i, (delta, key, value, headers) in enumerate(records):
        assert builder.append(i, T0 + delta, key, value, headers) is not None
    return bytes(builder.build())


def oracle_records(batch_class: Any, data: bytes) -> list[tuple[Any, ...]]:
    batch = batch_class(bytearray(data))
    assert batch.validate_crc()
    return [
        (r.offset, r.timestamp, r.key, r.value, tuple((k, v) for k, v in r.headers)) for r in batch
    ]


def ours(data: bytes) -> list[tuple[Any, ...]]:
    return [(r.offset, r.timestamp_ms, r.key, r.value, r.headers) for r in iter_records(data)]


def expected(records: list[Rec], base: int = 0) -> list[tuple[Any, ...]]:
    return [
        (base + i, T0 + delta, key, value, tuple(headers))
        for i, (delta, key, value, headers) in enumerate(records)
    ]


@pytest.mark.parametrize("builder", [KpBuilder, AioBuilder], ids=["kafka-python", "aiokafka"])
@pytest.mark.parametrize(
    "compression", [0, 1, 2, 3, 4], ids=["none", "gzip", "snappy", "lz4", "zstd"]
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=records_strategy, producer=producer_strategy)
def test_batches_built_by_clients_parse_and_decode(
    builder: Any, compression: int, records: list[Rec], producer: tuple[int, int, int]
) -> None:
    data = build(builder, records, compression, producer)
    batch = parse_batch(data)
    assert batch.data == data
    assert batch.record_count == len(records)
    assert batch.first_timestamp_ms == T0 + records[0][0]
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == producer
    assert batch.attributes & 0x07 in (0, compression)  # clients skip codecs that do not help
    assert ours(data) == expected(records)
    assert record_values(data) == [value for _, _, value, _ in records]
    moved = with_base_offset(data, 1234)
    assert ours(moved) == expected(records, 1234)
    assert oracle_records(KpBatch, moved) == expected(records, 1234)  # still a valid CRC


@pytest.mark.parametrize("builder", [KpBuilder, AioBuilder], ids=["kafka-python", "aiokafka"])
@pytest.mark.parametrize("compression", [1, 2, 3, 4], ids=["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_decompress(builder: Any, compression: int) -> None:
    records: list[Rec] = [(i, b"key", b"compressible " * 50, [("h", b"x")]) for i in range(40)]
    data = build(builder, records, compression, (5, 0, 0))
    assert parse_batch(data).attributes & 0x07 == compression
    assert len(data) < 40 * 650 // 4
    assert ours(data) == expected(records)


@settings(max_examples=40, deadline=None)
@given(records=records_strategy, base=st.integers(0, 2**62))
def test_encoded_batches_decode_in_both_oracles(records: list[Rec], base: int) -> None:
    data = encode_batch(
        base,
        [r[2] for r in records],
        [T0 + r[0] for r in records],
        keys=[r[1] for r in records],
        headers=[r[3] for r in records],
    )
    want = expected(records, base)
    assert oracle_records(KpBatch, data) == want
    assert oracle_records(AioBatch, data) == want
    assert ours(data) == want
    assert record_values(data) == [r[2] for r in records]
    parsed = parse_batch(data)
    assert parsed.max_timestamp_ms == T0 + max(r[0] for r in records)
    assert (parsed.producer_id, parsed.base_sequence) == (-1, -1)


def recompress(data: bytes, codec: int, compressed: bytes) -> bytes:
    """``data`` (uncompressed) with its records replaced by ``compressed`` under ``codec``."""
    head = bytearray(data[:61])
    struct.pack_into(">i", head, 8, 61 - 12 + len(compressed))
    (attributes,) = struct.unpack_from(">h", head, 21)
    struct.pack_into(">h", head, 21, (attributes & ~0x07) | codec)
    out = bytes(head) + compressed
    return out[:17] + struct.pack(">I", crc32c(out[21:])) + out[21:]


@settings(max_examples=25, deadline=None)
@given(records=records_strategy)
def test_raw_snappy_as_librdkafka_writes_it(records: list[Rec]) -> None:
    plain = build(KpBuilder, records, 0, (-1, -1, -1))
    raw = bytes(cramjam.snappy.compress_raw(plain[61:]))
    data = recompress(plain, 2, raw)
    assert ours(parse_batch(data).data) == expected(records)
    assert oracle_records(KpBatch, data) == expected(records)


def test_xerial_snappy_with_several_blocks() -> None:
    records: list[Rec] = [(i, None, bytes([i % 251]) * 900, []) for i in range(100)]
    data = build(KpBuilder, records, 2, (-1, -1, -1))  # kafka-python frames 32 KiB blocks
    assert data[61:69] == b"\x82SNAPPY\x00"
    assert ours(data) == expected(records)


def test_log_append_time_stamping_keeps_the_batch_valid() -> None:
    data = build(AioBuilder, [(0, b"k", b"v", []), (5, None, b"w", [])], 4, (9, 1, 0))
    stamped = stamp_batch(data, 77, T0 + 999)
    batch = KpBatch(bytearray(stamped))
    assert batch.validate_crc()
    assert (batch.base_offset, batch.timestamp_type, batch.max_timestamp) == (77, 1, T0 + 999)
    assert [r.timestamp for r in batch] == [T0 + 999, T0 + 999]
    assert [r.timestamp_ms for r in iter_records(stamped)] == [T0 + 999, T0 + 999]


def test_split_batches_walks_a_record_set() -> None:
    one = build(KpBuilder, [(0, None, b"a", [])], 0, (-1, -1, -1))
    two = build(KpBuilder, [(0, None, b"b", []), (1, None, b"c", [])], 1, (-1, -1, -1))
    assert [b.record_count for b in split_batches(one + two)] == [1, 2]
    assert split_batches(b"") == []
    with pytest.raises(CorruptBatch):
        split_batches(one + two[:-1])
    with pytest.raises(CorruptBatch):
        split_batches(one + two[:10])


# -- malformed input ----------------------------------------------------------------------------


def good() -> bytes:
    return build(
        KpBuilder, [(0, b"k", b"value", [("h", b"1")]), (1, None, b"v2", [])], 0, (-1, -1, -1)
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:60], "needs 61 bytes"),
        (lambda d: d[:16] + b"\x01" + d[17:], "magic"),
        (lambda d: d[:-1], "batchLength"),
        (lambda d: d + b"\x00", "batchLength"),
        (lambda d: d[:30] + bytes([d[30] ^ 1]) + d[31:], "CRC"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 0x40]), "CRC"),
    ],
)
def test_malformed_headers_are_corrupt(mutate: Any, message: str) -> None:
    with pytest.raises(CorruptBatch, match=message):
        parse_batch(mutate(good()))


def test_a_record_count_that_disagrees_with_the_last_offset_delta_is_corrupt() -> None:
    data = bytearray(good())
    struct.pack_into(">i", data, 57, 5)
    struct.pack_into(">I", data, 17, crc32c(bytes(data[21:])))
    with pytest.raises(CorruptBatch, match="recordsCount"):
        parse_batch(bytes(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_headers_raise_only_corrupt_batch(data: bytes) -> None:
    with contextlib.suppress(CorruptBatch):
        parse_batch(data)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), codec=st.integers(0, 7))
def test_garbage_records_with_a_valid_crc_raise_only_corrupt_batch(body: bytes, codec: int) -> None:
    data = recompress(good(), codec, body)
    with contextlib.suppress(CorruptBatch):
        list(iter_records(parse_batch(data).data))


def test_a_decompression_bomb_is_refused() -> None:
    bomb = bytes(cramjam.zstd.compress(b"\x00" * (MAX_DECOMPRESSED + 1024)))
    assert len(bomb) < 100_000
    data = recompress(good(), 4, bomb)
    with pytest.raises(CorruptBatch, match="more than"):
        list(iter_records(data))


def values_or_error(data: bytes, decode: Any) -> Any:
    try:
        return decode(data)
    except CorruptBatch as exc:
        return f"CorruptBatch: {exc}"


@settings(max_examples=300, deadline=None)
@given(
    records=records_strategy,
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3),
    cut=st.integers(0, 20),
)
def test_record_values_agrees_with_iter_records_on_any_records(
    records: list[Rec], edits: list[tuple[int, int]], cut: int
) -> None:
    """``record_values`` slices values itself when it can: on valid batches (with headers or
    not) and on damaged ones, it returns what ``iter_records`` gives, or the same error."""
    if cut % 2:  # half the examples without headers: record_values' own path
        records = [(delta, key, value, []) for delta, key, value, _ in records]
    data = bytearray(build(AioBuilder, records, 0, (-1, -1, -1)))
    for position, byte in edits:  # damage the records (the CRC is not checked on reads)
        data[61 + position % (len(data) - 61)] = byte
    damaged = bytes(data[: len(data) - cut // 2])
    slow = values_or_error(damaged, lambda d: [r.value for r in iter_records(d)])
    assert values_or_error(damaged, record_values) == slow
