"""``ConsumerRecord`` and ``RecordMetadata``: the Streamline SDK's fields and constructors, lazy
timestamps, and records fetched by aiokafka seen through the SDK's type (reads, assignment,
equality) exactly like records built by hand."""

from __future__ import annotations

from datetime import datetime

from aiokafka.structs import ConsumerRecord as AkRecord

from millstream.kafka import ConsumerRecord, RecordMetadata
from millstream.kafka._records import adopt, adopt_all, record_metadata

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


def test_fetched_records_read_like_plain_ones() -> None:
    [record] = messages = [_fetched()]
    assert adopt_all(messages) == 2  # serialized key + value bytes
    record = messages[0]
    assert isinstance(record, ConsumerRecord)
    assert (record.topic, record.partition, record.offset) == ("t", 1, 3)
    assert (record.key, record.value, record.timestamp_ms) == (b"k", b"v", STAMP)
    assert record.timestamp == datetime.fromtimestamp(STAMP / 1000)
    assert record == ConsumerRecord("t", 1, 3, b"k", b"v", STAMP, {"h": b"1"})
    assert "headers={'h': b'1'}" in repr(record)


def test_fetched_records_can_be_changed() -> None:
    record = adopt(_fetched())
    record.headers["added"] = b"2"  # the dict is the record's own
    assert record.headers == {"h": b"1", "added": b"2"}
    other = adopt(_fetched(offset=9))
    other.value = b"new"
    other.timestamp = 5
    assert (other.value, other.offset, other.timestamp_ms, other.key) == (b"new", 9, 5, b"k")
    third = adopt(_fetched(headers=()))
    third.timestamp = datetime.fromtimestamp(1)
    assert third.timestamp_ms == 1000
    assert third.headers == {}


def test_record_metadata() -> None:
    meta = RecordMetadata("t", 0, 7, datetime.fromtimestamp(STAMP / 1000), 1, 2)
    fast = record_metadata("t", 0, 7, STAMP, 1, 2)
    assert meta == fast
    assert fast.timestamp == datetime.fromtimestamp(STAMP / 1000)
    assert fast.timestamp_ms == STAMP
    assert "offset=7" in repr(fast)
    assert RecordMetadata("t", 0, 7, STAMP, 1, 2).timestamp_ms == STAMP
