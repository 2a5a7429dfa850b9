"""The store contract for Kafka entries: produce, read_batches, offsets by time, log start,
idempotent producers (KIP-98) and producer ids. Runs against every store kind, and against a
``SqliteStore`` that keeps every batch, however small, in its batch files.

Batches are built by kafka-python's record builder and read back by its parser (the oracles),
so the bytes on both sides are what a real client writes and reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from millstream.log import (
    DuplicateSequence,
    ForkSpec,
    InvalidRequest,
    KafkaBatch,
    OffsetOutOfRange,
    ProducerSequenceGap,
    StaleProducerEpoch,
    Store,
    StreamClosed,
    StreamConfig,
    StreamGone,
    StreamNotFound,
    UnknownProducerId,
    encode_batch,
    parse_batch,
)
from millstream.log._rules import StreamState

from .conftest import KAFKA_STORE_KINDS, opened
from .helpers import BYTES, JSON, append, create, decode_batches, kafka_batch, read_all

T0 = 1_700_000_000_000


@pytest.fixture(params=KAFKA_STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async for instance in opened(request.param, tmp_path / "data", request):
        yield instance


async def read_all_batches(store: Store, path: str, start: int = 0, max_bytes: int = 1 << 20):
    """Every record from ``start`` to the tail through ``read_batches``, as kafka-python reads
    them (records below ``start`` in the first batch skipped, as clients do)."""
    records = []
    position = start
    while True:
        result = await store.read_batches(path, position, max_bytes=max_bytes)
        assert result.start == position
        if not result.batches:
            assert result.next == position == result.high_watermark
            return records
        decoded = [r for r in decode_batches(result.batches) if r[0] >= position]
        assert decoded, "a read before the tail must make progress"
        assert [r[0] for r in decoded] == list(range(position, result.next))
        records.extend(decoded)
        position = result.next


# -- produce and both kinds of read -------------------------------------------------------------


async def test_produce_assigns_offsets_and_keeps_the_producers_bytes(store: Store) -> None:
    await create(store, "t", config=BYTES)
    first = kafka_batch([b"a", b"b", b"c"], keys=[b"k0", None, b"k2"])
    second = kafka_batch([b"d"], headers=[[("h", b"v"), ("n", None)]])
    r1 = await store.produce("t", first)
    r2 = await store.produce("t", second)
    assert (r1.base_offset, r1.duplicate, r1.log_append_time_ms, r1.log_start_offset) == (
        0,
        False,
        -1,
        0,
    )
    assert r2.base_offset == 3
    assert (await store.head("t")).tail == 4
    result = await store.read_batches("t", 0)
    assert (result.start, result.next, result.high_watermark, result.log_start) == (0, 4, 4, 0)
    # Stored as sent: only the base offset differs.
    assert result.batches == [
        (0).to_bytes(8, "big") + first.data[8:],
        (3).to_bytes(8, "big") + second.data[8:],
    ]
    records = decode_batches(result.batches)
    assert [(o, k, v) for o, _, k, v in records] == [
        (0, b"k0", b"a"),
        (1, None, b"b"),
        (2, b"k2", b"c"),
        (3, None, b"d"),
    ]


async def test_http_reads_see_record_values_one_per_position(store: Store) -> None:
    await create(store, "t", b"m0", config=BYTES)
    await store.produce("t", kafka_batch([b"r1", b"r2", None, b"r4"]))
    await append(store, "t", b"m5", b"m6")
    await store.produce("t", kafka_batch([b"r7"], compression=1))
    expected = [b"m0", b"r1", b"r2", b"", b"r4", b"m5", b"m6", b"r7"]
    assert await read_all(store, "t") == expected
    for start in range(len(expected)):  # reads that start inside a batch answer by position
        assert await read_all(store, "t", start) == expected[start:]
        assert await read_all(store, "t", start, max_bytes=1) == expected[start:]
    chunk = await store.read("t", 2, max_bytes=3)  # the payload crossing the budget included
    assert (chunk.payloads, chunk.start, chunk.next) == ([b"r2", b"", b"r4"], 2, 5)


async def test_kafka_reads_see_messages_as_records(store: Store) -> None:
    await create(store, "s", config=BYTES)
    messages = [f"m{i}".encode() * (i % 5 + 1) for i in range(700)]
    for i in range(0, 700, 70):
        await append(store, "s", *messages[i : i + 70])
    records = await read_all_batches(store, "s")
    assert [(o, k, v) for o, _, k, v in records] == [(i, None, m) for i, m in enumerate(messages)]
    assert all(abs(ts - records[0][1]) < 60_000 for _, ts, _, _ in records)  # append time
    assert [r[3] for r in await read_all_batches(store, "s", 333, max_bytes=100)] == messages[333:]
    empty = await store.read_batches("s", 700)
    assert (empty.batches, empty.next, empty.high_watermark) == ([], 700, 700)


async def test_mixed_entries_read_the_same_over_both_doors(store: Store) -> None:
    await create(store, "t", config=BYTES)
    expected: list[bytes] = []
    for round_ in range(20):
        values = [f"k{round_}-{i}".encode() for i in range(round_ % 4 + 1)]
        await store.produce("t", kafka_batch(values, compression=round_ % 5))
        expected.extend(values)
        plain = [f"h{round_}-{i}".encode() for i in range(round_ % 3 + 1)]
        await append(store, "t", *plain)
        expected.extend(plain)
    assert await read_all(store, "t") == expected
    assert [r[3] for r in await read_all_batches(store, "t")] == expected
    for start in (1, 7, 33, len(expected) - 1):
        assert [r[3] for r in await read_all_batches(store, "t", start, 64)] == expected[start:]
        assert await read_all(store, "t", start, max_bytes=9) == expected[start:]


async def test_repeated_kafka_reads_of_messages_reuse_the_encoded_batches(store: Store) -> None:
    await create(store, "s", *[f"m{i}".encode() for i in range(600)], config=BYTES)
    first = await store.read_batches("s", 0)
    again = await store.read_batches("s", 0)
    assert first.batches == again.batches
    assert all(a is b for a, b in zip(first.batches, again.batches, strict=True))
    other = await store.read_batches("s", 300)  # from another offset: the aligned chunks match
    assert other.batches[1] is first.batches[2]


async def test_json_streams_read_kafka_values_as_json(store: Store) -> None:
    await create(store, "j", b'{"http":1}', config=JSON)
    await store.produce("j", kafka_batch([b'{"a": 1}', b"[1,2]", b"plain text", None, b"\xff"]))
    payloads = await read_all(store, "j")
    assert payloads == [
        b'{"http":1}',
        b'{"a": 1}',
        b"[1,2]",
        b'"plain text"',
        b"null",
        b'"\xef\xbf\xbd"',
    ]
    assert next(r[3] for r in await read_all_batches(store, "j")) == b'{"http":1}'


async def test_a_batch_that_passed_its_crc_but_does_not_decode_reads_as_placeholders(
    store: Store,
) -> None:
    good = kafka_batch([b"x", b"y"])
    garbage = bytearray(good.data)
    garbage[61:] = b"\xff" * (len(garbage) - 61)  # records no longer parse...
    from crc32c import crc32c

    garbage[17:21] = crc32c(bytes(garbage[21:])).to_bytes(4, "big")  # ...but the CRC holds
    await create(store, "b", config=BYTES)
    await create(store, "j", config=JSON)
    for path in ("b", "j"):
        await store.produce(path, parse_batch(bytes(garbage)))
        await append(store, path, b"1")
    assert await read_all(store, "b") == [b"", b"", b"1"]
    assert await read_all(store, "j") == [b"null", b"null", b"1"]
    passed = await store.read_batches("b", 0)
    assert passed.batches[0][8:] == bytes(garbage[8:])  # Kafka readers get it as stored


async def test_log_append_time_stamps_the_batch(store: Store) -> None:
    await create(store, "t", config=BYTES)
    batch = kafka_batch([b"a", b"b"], timestamps=[5, 6], log_append_time=True)
    result = await store.produce("t", batch)
    assert result.log_append_time_ms > T0
    from kafka.record.default_records import DefaultRecordBatch

    stored = DefaultRecordBatch(bytearray((await store.read_batches("t", 0)).batches[0]))
    assert stored.validate_crc()
    assert stored.timestamp_type == 1
    assert stored.max_timestamp == result.log_append_time_ms
    assert [r.timestamp for r in stored] == [result.log_append_time_ms] * 2


async def test_produce_refusals(store: Store) -> None:
    with pytest.raises(StreamNotFound):
        await store.produce("missing", kafka_batch([b"x"]))
    await create(store, "c", b"last", closed=True)
    with pytest.raises(StreamClosed):
        await store.produce("c", kafka_batch([b"x"]))
    await create(store, "src", b"s")
    await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src"))
    await store.delete("src")
    with pytest.raises(StreamGone):
        await store.produce("src", kafka_batch([b"x"]))
    with pytest.raises(StreamNotFound):
        await store.read_batches("missing", 0)


async def test_a_stream_created_over_http_and_appended_to_over_kafka(store: Store) -> None:
    await create(store, "chat", b"hello", config=StreamConfig("text/plain"))
    await store.produce("chat", kafka_batch([b"from kafka"]))
    assert await read_all(store, "chat") == [b"hello", b"from kafka"]
    assert (await store.head("chat")).tail == 2
    woke = asyncio.create_task(store.wait("chat", 2, 5))
    await asyncio.sleep(0.01)
    assert not woke.done()
    await store.produce("chat", kafka_batch([b"again"]))
    assert await asyncio.wait_for(woke, 2)


# -- forks over Kafka entries ---------------------------------------------------------------------


async def test_a_fork_point_inside_a_batch_cuts_it(store: Store) -> None:
    await create(store, "src", config=BYTES)
    await store.produce("src", kafka_batch([b"a", b"b", b"c", b"d"], keys=[b"1", b"2", b"3", b"4"]))
    await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src", 2))
    await append(store, "f", b"own")
    assert await read_all(store, "f") == [b"a", b"b", b"own"]
    records = await read_all_batches(store, "f")
    assert [(o, k, v) for o, _, k, v in records] == [
        (0, b"1", b"a"),
        (1, b"2", b"b"),
        (2, None, b"own"),
    ]
    await create(store, "g", config=StreamConfig(""), fork=ForkSpec("src", 3, 1))
    assert await read_all(store, "g") == [*[b"a", b"b", b"c", b"d"][:3], b"d"[:1]]


# -- idempotent producers (KIP-98) ----------------------------------------------------------------


async def test_idempotent_retries_answer_the_original_offset(store: Store) -> None:
    await create(store, "t", config=BYTES)
    batches = [
        kafka_batch([f"{n}-{i}".encode() for i in range(3)], producer=(7, 0, 3 * n))
        for n in range(7)
    ]
    offsets = [(await store.produce("t", b)).base_offset for b in batches]
    assert offsets == [0, 3, 6, 9, 12, 15, 18]
    for n in range(2, 7):  # the last five batches are remembered
        retry = await store.produce("t", batches[n])
        assert (retry.base_offset, retry.duplicate) == (3 * n, True)
    with pytest.raises(DuplicateSequence):
        await store.produce("t", batches[1])  # older than the last five
    with pytest.raises(DuplicateSequence):
        await store.produce("t", kafka_batch([b"x"], producer=(7, 0, 4)))  # inside an old one
    assert (await store.head("t")).tail == 21
    assert (await store.produce("t", kafka_batch([b"n"], producer=(7, 0, 21)))).base_offset == 21


async def test_sequence_gaps_unknown_producers_and_epochs(store: Store) -> None:
    await create(store, "t", config=BYTES)
    with pytest.raises(UnknownProducerId) as unknown:
        await store.produce("t", kafka_batch([b"x"], producer=(1, 0, 5)))
    assert isinstance(unknown.value, ProducerSequenceGap)
    await store.produce("t", kafka_batch([b"a", b"b"], producer=(1, 0, 0)))
    with pytest.raises(ProducerSequenceGap) as gap:
        await store.produce("t", kafka_batch([b"x"], producer=(1, 0, 3)))
    assert (gap.value.expected, gap.value.received) == (2, 3)
    await store.produce("t", kafka_batch([b"c"], producer=(1, 0, 2)))
    # A new epoch starts at 0 and fences the old one.
    with pytest.raises(ProducerSequenceGap):
        await store.produce("t", kafka_batch([b"x"], producer=(1, 1, 3)))
    assert (await store.produce("t", kafka_batch([b"d"], producer=(1, 1, 0)))).base_offset == 3
    with pytest.raises(StaleProducerEpoch) as stale:
        await store.produce("t", kafka_batch([b"x"], producer=(1, 0, 3)))
    assert stale.value.current_epoch == 1
    # The old epoch's batches are forgotten: their sequences are new again under epoch 1.
    assert (await store.produce("t", kafka_batch([b"e"], producer=(1, 1, 1)))).base_offset == 4
    # Other producers and other streams are independent.
    await create(store, "u", config=BYTES)
    assert (await store.produce("u", kafka_batch([b"u"], producer=(1, 0, 0)))).base_offset == 0
    assert (await store.produce("t", kafka_batch([b"q"], producer=(2, 9, 0)))).base_offset == 5
    assert await read_all(store, "t") == [b"a", b"b", b"c", b"d", b"e", b"q"]


async def test_sequences_wrap_after_int32_max(store: Store) -> None:
    """Sequences count records and wrap to 0 after INT32_MAX (``next_sequence``): a producer
    whose last record had sequence INT32_MAX - 1 continues with a batch that wraps."""
    from millstream.log._rules import KafkaProducerState, plan_produce

    await create(store, "t", config=BYTES)
    top = 2**31 - 1
    state = StreamState(path="t", stream_id=1, config=BYTES)
    state.kafka_producers[3] = KafkaProducerState(0, top - 1, ((top - 3, top - 1, 0, -1),))
    wrapping = kafka_batch([b"a", b"b", b"c"], producer=(3, 0, top))  # top, 0, 1
    assert plan_produce(state, wrapping).duplicate is None
    state.kafka_producers[3] = KafkaProducerState(0, 1, ((top, 1, 7, -1),))
    assert plan_produce(state, wrapping).duplicate == (7, -1)
    assert plan_produce(state, kafka_batch([b"d"], producer=(3, 0, 2))).duplicate is None
    with pytest.raises(DuplicateSequence):
        plan_produce(state, kafka_batch([b"x"], producer=(3, 0, top - 5)))
    with pytest.raises(ProducerSequenceGap):
        plan_produce(state, kafka_batch([b"x"], producer=(3, 0, 3)))


async def test_concurrent_idempotent_producers_land_once_each_in_order(store: Store) -> None:
    await create(store, "t", config=BYTES)
    pids = [(await store.init_producer_id())[0] for _ in range(8)]

    async def produce(pid: int) -> None:
        seq = 0
        for n in range(15):
            batch = kafka_batch(
                [f"{pid}-{n}-{i}".encode() for i in range(n % 3 + 1)], producer=(pid, 0, seq)
            )
            results = await asyncio.gather(store.produce("t", batch), store.produce("t", batch))
            assert sorted(r.duplicate for r in results) == [False, True]
            assert results[0].base_offset == results[1].base_offset
            seq += batch.record_count

    await asyncio.gather(*(produce(pid) for pid in pids))
    stored = await read_all(store, "t")
    assert len(stored) == len(set(stored)) == 8 * sum(n % 3 + 1 for n in range(15))
    for pid in pids:
        mine = [v for v in stored if v.startswith(f"{pid}-".encode())]
        assert mine == [f"{pid}-{n}-{i}".encode() for n in range(15) for i in range(n % 3 + 1)]


async def test_producer_ids_are_never_handed_out_twice(store: Store) -> None:
    ids = await asyncio.gather(*(store.init_producer_id() for _ in range(50)))
    assert len({pid for pid, _ in ids}) == 50
    assert all(pid >= 0 and epoch == 0 for pid, epoch in ids)


# -- log start (DeleteRecords) --------------------------------------------------------------------


async def test_delete_records_moves_the_log_start(store: Store) -> None:
    await create(store, "t", *[f"m{i}".encode() for i in range(5)], config=BYTES)
    await store.produce("t", kafka_batch([b"k5", b"k6", b"k7"]))
    await append(store, "t", b"m8")
    assert await store.delete_records("t", 3) == 3
    assert (await store.head("t")).log_start == 3
    assert await store.delete_records("t", 1) == 3  # below the log start: nothing changes
    assert await read_all(store, "t") == [b"m3", b"m4", b"k5", b"k6", b"k7", b"m8"]
    read = await store.read("t", 0)  # an HTTP read from earlier starts at the log start
    assert read.start == 3
    with pytest.raises(OffsetOutOfRange) as below:
        await store.read_batches("t", 2)
    assert (below.value.log_start, below.value.tail) == (3, 9)
    assert await store.delete_records("t", 6) == 6  # inside the batch
    assert await read_all(store, "t") == [b"k6", b"k7", b"m8"]
    inside = await store.read_batches("t", 6)
    assert inside.log_start == 6
    assert [r[3] for r in decode_batches(inside.batches)][:3] == [b"k5", b"k6", b"k7"]
    assert [r[3] for r in await read_all_batches(store, "t", 6)] == [b"k6", b"k7", b"m8"]
    produced = await store.produce("t", kafka_batch([b"k9"]))
    assert (produced.base_offset, produced.log_start_offset) == (9, 6)
    with pytest.raises(OffsetOutOfRange):
        await store.delete_records("t", 11)
    assert await store.delete_records("t", -1) == 10  # -1: the tail
    assert await read_all(store, "t") == []
    assert (await store.read("t", 0)).next == 10


async def test_delete_records_refuses_a_stream_forks_read(store: Store) -> None:
    await create(store, "src", b"a", b"b")
    await create(store, "f", config=StreamConfig(""), fork=ForkSpec("src", 1))
    with pytest.raises(InvalidRequest):
        await store.delete_records("src", 1)
    await store.delete_records("f", 1)  # a fork itself may move its own log start
    assert await read_all(store, "f") == []
    await create(store, "t", b"x", b"y", b"z")
    await store.delete_records("t", 2)
    with pytest.raises(OffsetOutOfRange):
        await create(store, "g", config=StreamConfig(""), fork=ForkSpec("t", 1))
    fork = await create(store, "g", config=StreamConfig(""), fork=ForkSpec("t", 2))
    assert fork.info.log_start == 2
    assert await read_all(store, "g") == []


# -- lookup by time (ListOffsets) -----------------------------------------------------------------


async def test_offset_for_time(store: Store) -> None:
    await create(store, "t", config=BYTES)
    await store.produce("t", kafka_batch([b"a", b"b", b"c"], timestamps=[T0, T0 + 10, T0 + 20]))
    await store.produce("t", kafka_batch([b"d", b"e"], timestamps=[T0 + 40, T0 + 30]))
    assert await store.offset_for_time("t", 0) == (0, T0)
    assert await store.offset_for_time("t", T0 + 5) == (1, T0 + 10)
    assert await store.offset_for_time("t", T0 + 20) == (2, T0 + 20)
    assert await store.offset_for_time("t", T0 + 25) == (3, T0 + 40)
    assert await store.offset_for_time("t", T0 + 35) == (3, T0 + 40)
    assert await store.offset_for_time("t", T0 + 41) is None
    await append(store, "t", b"http")  # stamped with the append time: now
    found = await store.offset_for_time("t", T0 + 41)
    assert found is not None
    assert found[0] == 5
    await store.delete_records("t", 2)
    assert await store.offset_for_time("t", 0) == (2, T0 + 20)
    await create(store, "empty")
    assert await store.offset_for_time("empty", 0) is None


async def test_offset_for_time_over_plain_messages(store: Store) -> None:
    await create(store, "s", b"a")
    await asyncio.sleep(0.01)
    info = await store.head("s")
    await append(store, "s", b"b")
    first = await store.offset_for_time("s", 0)
    assert first is not None
    assert first[0] == 0
    later = await store.offset_for_time("s", first[1] + 1)
    assert later is not None
    assert later[0] == 1
    assert info.tail == 1


# -- the batch model ------------------------------------------------------------------------------


async def test_encoded_batches_are_what_kafka_python_reads(store: Store) -> None:
    data = encode_batch(5, [b"x", None], [T0, T0 + 1], keys=[None, b"k"])
    parsed = parse_batch(data)
    assert isinstance(parsed, KafkaBatch)
    assert (parsed.record_count, parsed.first_timestamp_ms, parsed.max_timestamp_ms) == (
        2,
        T0,
        T0 + 1,
    )
    assert decode_batches([data]) == [(5, T0, None, b"x"), (6, T0 + 1, b"k", None)]
    await create(store, "t", config=BYTES)
    assert (await store.produce("t", parsed)).base_offset == 0
