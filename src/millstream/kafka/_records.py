"""``RecordMetadata`` and ``ConsumerRecord``: one is made per record sent or received, so
both keep epoch milliseconds and compute ``timestamp`` (a naive local ``datetime``, as the
Streamline SDK returns it) only when asked (that conversion costs more than the rest), and a
received record's headers become a dict only when read. ``RecordFactory`` makes received
records in place of aiokafka's own (``_fetch_hook``), so consuming through the SDK allocates
no more per record than aiokafka does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["ConsumerRecord", "RecordFactory", "RecordMetadata", "record_metadata"]

_new = object.__new__


def _to_ms(timestamp: datetime | int | float | None) -> int:
    if timestamp is None:
        return -1
    if isinstance(timestamp, datetime):
        return round(timestamp.timestamp() * 1000)
    return int(timestamp)


class _Stamped:
    """A ``timestamp`` derived from ``timestamp_ms`` on first access."""

    __slots__ = ("_timestamp", "timestamp_ms")

    _timestamp: datetime | None
    timestamp_ms: int

    @property
    def timestamp(self) -> datetime:
        stamp = self._timestamp
        if stamp is None:
            stamp = self._timestamp = datetime.fromtimestamp(self.timestamp_ms / 1000)
        return stamp

    @timestamp.setter
    def timestamp(self, value: datetime) -> None:
        self._timestamp = value
        self.timestamp_ms = _to_ms(value)

    def _fields(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Stamped)
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclasses they replace


class RecordMetadata(_Stamped):
    """Where the broker stored a record: ``topic``, ``partition``, ``offset``, ``timestamp``
    (naive local ``datetime``; ``timestamp_ms`` is exact) and the serialized sizes. A record
    buffered in a client-side transaction has ``partition == offset == -1``."""

    __slots__ = ("offset", "partition", "serialized_key_size", "serialized_value_size", "topic")

    __match_args__ = ("topic", "partition", "offset", "timestamp")

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp: datetime | int,
        serialized_key_size: int,
        serialized_value_size: int,
        timestamp_ms: int | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.serialized_key_size = serialized_key_size
        self.serialized_value_size = serialized_value_size
        self._timestamp = timestamp if isinstance(timestamp, datetime) else None
        self.timestamp_ms = _to_ms(timestamp) if timestamp_ms is None else timestamp_ms

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.topic,
            self.partition,
            self.offset,
            self.timestamp_ms,
            self.serialized_key_size,
            self.serialized_value_size,
        )

    def __repr__(self) -> str:
        return (
            f"RecordMetadata(topic={self.topic!r}, partition={self.partition}, "
            f"offset={self.offset}, timestamp={self.timestamp!r}, "
            f"serialized_key_size={self.serialized_key_size}, "
            f"serialized_value_size={self.serialized_value_size})"
        )


def record_metadata(
    topic: str, partition: int, offset: int, timestamp_ms: int, key_size: int, value_size: int
) -> RecordMetadata:
    """The fast constructor the producer uses (no checks, no ``datetime``)."""
    meta: RecordMetadata = _new(RecordMetadata)
    meta.topic = topic
    meta.partition = partition
    meta.offset = offset
    meta.timestamp_ms = timestamp_ms
    meta._timestamp = None
    meta.serialized_key_size = key_size
    meta.serialized_value_size = value_size
    return meta


class ConsumerRecord:
    """One received record: ``topic``, ``partition``, ``offset``, ``key``, ``value`` (bytes
    unless the consumer deserializes them), ``timestamp`` (naive local ``datetime``;
    ``timestamp_ms`` is exact) and ``headers`` (each name's last value)."""

    # ``_headers``: the dict, or until first read the (name, value) pairs aiokafka decoded.
    __slots__ = ("_headers", "key", "offset", "partition", "timestamp_ms", "topic", "value")

    topic: str
    partition: int
    offset: int
    key: Any
    value: Any
    timestamp_ms: int
    _headers: Any

    __match_args__ = ("topic", "partition", "offset", "key", "value", "timestamp", "headers")

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: Any,
        value: Any,
        timestamp: datetime | int,
        headers: dict[str, bytes] | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestamp_ms = _to_ms(timestamp) if timestamp_ms is None else timestamp_ms
        self._headers = {} if headers is None else headers

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000)

    @timestamp.setter
    def timestamp(self, value: datetime | int) -> None:
        self.timestamp_ms = _to_ms(value)

    @property
    def headers(self) -> dict[str, bytes]:
        headers = self._headers
        if type(headers) is not dict:
            headers = self._headers = dict(headers)
        return headers

    @headers.setter
    def headers(self, value: dict[str, bytes]) -> None:
        self._headers = value

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.topic,
            self.partition,
            self.offset,
            self.key,
            self.value,
            self.timestamp_ms,
            self.headers,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConsumerRecord):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return (
            f"ConsumerRecord(topic={self.topic!r}, partition={self.partition}, "
            f"offset={self.offset}, key={self.key!r}, value={self.value!r}, "
            f"timestamp={self.timestamp!r}, headers={self.headers!r})"
        )


class RecordFactory:
    """Makes ``ConsumerRecord``s from the records aiokafka decodes, and counts their key and
    value bytes (``take_bytes``) for the metrics.

    ``build`` stands in for aiokafka's own record constructor (see ``_fetch_hook``), so a
    received record is one object, made once; ``convert`` copies one aiokafka already made.
    """

    __slots__ = ("build", "nbytes")

    def __init__(self) -> None:
        self.nbytes = 0
        new = _new
        cls = ConsumerRecord

        def build(tp: Any, record: Any) -> ConsumerRecord:
            # The hot path of every consumer: attribute stores on a fresh object, no call.
            made: ConsumerRecord = new(cls)
            made.topic = tp.topic
            made.partition = tp.partition
            made.offset = record.offset
            key = made.key = record.key
            value = made.value = record.value
            made.timestamp_ms = record.timestamp
            made._headers = record.headers
            self.nbytes += (0 if key is None else len(key)) + (0 if value is None else len(value))
            return made

        self.build = build

    def convert(self, message: Any) -> ConsumerRecord:
        """A record aiokafka made (fetched before the hook was in place, or without it)."""
        made: ConsumerRecord = _new(ConsumerRecord)
        made.topic = message.topic
        made.partition = message.partition
        made.offset = message.offset
        made.key = message.key
        made.value = message.value
        made.timestamp_ms = message.timestamp
        made._headers = message.headers
        key, value = message.serialized_key_size, message.serialized_value_size
        self.nbytes += (key if key > 0 else 0) + (value if value > 0 else 0)
        return made

    def take_bytes(self) -> int:
        """The bytes counted since the last call."""
        nbytes, self.nbytes = self.nbytes, 0
        return nbytes
