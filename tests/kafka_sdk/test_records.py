"""``ConsumerRecord`` and ``RecordMetadata``: the Streamline SDK's fields and constructors, lazy
timestamps, and received records (made inside aiokafka's fetcher by the SDK's factory, or
converted from aiokafka's) reading, changing and comparing exactly like records built by hand."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

from aiokafka.consumer.fetcher import READ_UNCOMMITTED, FetchResult, PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord as AkRecord
from aiokafka.structs import TopicPartition as AkTopicPartition

from millstream.kafka import ConsumerRecord, RecordMetadata, _fetch_hook
from millstream.kafka._fetch_hook import _HookedRecords
from millstream.kafka._records import RecordFactory, record_metadata

STAMP = 1_700_000_000_123


def _fetched(offset: int = 3, headers: tuple[tuple[str, bytes], ...] = (("h", b"1"),)) -> AkRecord:  # type: ignore[type-arg]
    return AkRecord("t", 1, offset, STAMP, 0, b"k", b"v", None, 1, 1, headers)


def test_consumer_record_fields_and_constructor() -> None:
    by_datetime = ConsumerRecord(
        "t", 1, 3, b"k", b"v", datetime.fromtimestamp(STAMP / 1000), {"h": b"1"}
    )
    by_ms = ConsumerRecord("t", 1, 3, b"k", b"v", STAMP, {"h": b"1"})
    assert by_datetime == by_ms
    assert by_ms.timestamp == datetime.fromtimestamp(STAMP / 1000)
    assert by_ms.timestamp_ms == STAMP
    assert ConsumerRecord("t", 0, 0, None, None, STAMP).headers == {}
    assert repr(by_ms).startswith("ConsumerRecord(topic='t', partition=1, offset=3, key=b'k'")
    by_ms.value = b"changed"
    assert by_ms != by_datetime


def _partition_records(hooked: OrderedDict[Any, Any]) -> list[Any]:
    """Three records decoded by aiokafka's own fetcher classes, stored in ``hooked`` as its
    fetcher stores them, then iterated as ``getmany`` does."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    builder.append(0, timestamp=STAMP, key=b"k", value=b"v", headers=[("h", b"1")])
    builder.append(1, timestamp=STAMP + 1, key=None, value=b"xyz", headers=[])
    builder.append(
        2, timestamp=STAMP + 2, key=b"tomb", value=None, headers=[("a", b"1"), ("a", b"2")]
    )
    tp = AkTopicPartition("t", 1)
    records = PartitionRecords(
        tp, MemoryRecords(bytes(builder.build())), None, 0, None, None, True, READ_UNCOMMITTED
    )
    hooked[tp] = FetchResult(tp, assignment=None, partition_records=records, backoff=0)
    return list(hooked[tp]._partition_records)


def test_the_factory_makes_records_inside_aiokafkas_fetcher() -> None:
    factory = RecordFactory()
    made = _partition_records(_HookedRecords(factory.build))
    assert all(type(record) is ConsumerRecord for record in made)
    assert made == [
        ConsumerRecord("t", 1, 0, b"k", b"v", STAMP, {"h": b"1"}),
        ConsumerRecord("t", 1, 1, None, b"xyz", STAMP + 1),
        ConsumerRecord("t", 1, 2, b"tomb", None, STAMP + 2, {"a": b"2"}),  # the last value
    ]
    assert factory.take_bytes() == 2 + 3 + 4  # keys and values; a null counts 0
    assert factory.take_bytes() == 0
    assert made[0].timestamp == datetime.fromtimestamp(STAMP / 1000)
    assert "headers={'h': b'1'}" in repr(made[0])


def test_without_the_hook_aiokafkas_records_are_converted() -> None:
    factory = RecordFactory()
    fetched = _partition_records(OrderedDict())  # a fetcher without the hook
    assert all(type(record) is AkRecord for record in fetched)
    hooked = RecordFactory()
    assert [factory.convert(m) for m in fetched] == _partition_records(_HookedRecords(hooked.build))
    assert factory.take_bytes() == hooked.take_bytes() == 9


def test_received_records_can_be_changed() -> None:
    factory = RecordFactory()
    record = factory.convert(_fetched())
    record.headers["added"] = b"2"  # the dict is the record's own
    assert record.headers == {"h": b"1", "added": b"2"}
    other = factory.convert(_fetched(offset=9))
    other.value = b"new"
    other.timestamp = 5
    assert (other.value, other.offset, other.timestamp_ms, other.key) == (b"new", 9, 5, b"k")
    third = factory.convert(_fetched(headers=()))
    third.timestamp = datetime.fromtimestamp(1)
    assert third.timestamp_ms == 1000
    assert third.headers == {}
    third.headers = {"x": b"y"}
    assert third == ConsumerRecord("t", 1, 3, b"k", b"v", 1000, {"x": b"y"})


def test_the_hook_leaves_what_it_does_not_know_alone() -> None:
    """An aiokafka without the internals the hook needs: nothing changes (records are then
    converted). That it does install on this aiokafka is checked on real consumers in
    ``test_roundtrip.py``."""
    assert not _fetch_hook.install(object(), RecordFactory().build)
    stopped = type("Consumer", (), {"_fetcher": None})()
    assert not _fetch_hook.install(stopped, RecordFactory().build)


def test_record_metadata() -> None:
    meta = RecordMetadata("t", 0, 7, datetime.fromtimestamp(STAMP / 1000), 1, 2)
    fast = record_metadata("t", 0, 7, STAMP, 1, 2)
    assert meta == fast
    assert fast.timestamp == datetime.fromtimestamp(STAMP / 1000)
    assert fast.timestamp_ms == STAMP
    assert "offset=7" in repr(fast)
    assert RecordMetadata("t", 0, 7, STAMP, 1, 2).timestamp_ms == STAMP
