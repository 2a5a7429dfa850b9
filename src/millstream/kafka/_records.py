"""``RecordMetadata`` and ``ConsumerRecord``: one is made per record sent or received, so
both keep epoch milliseconds and compute ``timestamp`` (a naive local ``datetime``, as the
Streamline SDK returns it) only when asked (that conversion costs more than the rest), and a
received record is a thin view of the object aiokafka already built (``_Fetched``).
"""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter
from typing import Any

__all__ = [
    "ConsumerRecord",
    "RecordMetadata",
    "adopt",
    "adopt_all",
    "record_bytes",
    "record_metadata",
]

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

    # ``_m``: the fetched record a ``_Fetched`` reads from; ``None`` in a plain record.
    __slots__ = ("__dict__", "_m")

    _m: Any
    topic: str
    partition: int
    offset: int
    key: Any
    value: Any

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
        self._m = None
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestamp = timestamp if timestamp_ms is None else timestamp_ms
        self.headers = {} if headers is None else headers

    @property
    def timestamp_ms(self) -> int:
        return self.__dict__["timestamp_ms"]  # type: ignore[no-any-return]

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000)

    @timestamp.setter
    def timestamp(self, value: datetime | int) -> None:
        self.__dict__["timestamp_ms"] = _to_ms(value)

    @property
    def headers(self) -> dict[str, bytes]:
        return self.__dict__["headers"]  # type: ignore[no-any-return]

    @headers.setter
    def headers(self, value: dict[str, bytes]) -> None:
        self.__dict__["headers"] = value

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


def _materialize(record: ConsumerRecord) -> None:
    """Turn a ``_Fetched`` into a plain ``ConsumerRecord`` holding the same values (the two
    classes have one layout), before one of its fields is assigned."""
    m = record._m
    record.__class__ = ConsumerRecord
    ConsumerRecord.__init__(
        record,
        m.topic,
        m.partition,
        m.offset,
        m.key,
        m.value,
        m.timestamp,
        dict(m.headers) if m.headers else {},
    )


def _view(name: str) -> Any:
    """A ``_Fetched`` field read from the fetched record (by a C-level getter: fields are read
    once per record); assigning it materializes."""

    def set_(self: ConsumerRecord, value: Any) -> None:
        _materialize(self)
        setattr(self, name, value)

    return property(attrgetter(f"_m.{name}"), set_)


class _Fetched(ConsumerRecord):
    """A ``ConsumerRecord`` over the record aiokafka fetched, read on access: receiving a
    record costs one small object, whatever the application then looks at."""

    __slots__ = ()

    topic = _view("topic")
    partition = _view("partition")
    offset = _view("offset")
    key = _view("key")
    value = _view("value")

    timestamp_ms = property(attrgetter("_m.timestamp"))

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self._m.timestamp / 1000)

    @timestamp.setter
    def timestamp(self, value: datetime | int) -> None:
        _materialize(self)
        self.timestamp = value

    @property
    def headers(self) -> dict[str, bytes]:
        _materialize(self)  # once: the dict returned is the record's own, as for a plain one
        return self.headers

    @headers.setter
    def headers(self, value: dict[str, bytes]) -> None:
        _materialize(self)
        self.headers = value


def record_bytes(message: Any) -> int:
    """Serialized key and value bytes of a fetched record (aiokafka says -1 for a null)."""
    key, value = message.serialized_key_size, message.serialized_value_size
    return (key if key > 0 else 0) + (value if value > 0 else 0)


def adopt_all(messages: list[Any]) -> int:
    """Wrap aiokafka's fetched records as ``ConsumerRecord``s, in place in ``messages``;
    returns their serialized key and value bytes, for the metrics."""
    nbytes = 0
    new = _new
    cls = _Fetched
    for index, m in enumerate(messages):
        nbytes += record_bytes(m)
        record = new(cls)
        record._m = m
        messages[index] = record
    return nbytes


def adopt(message: Any) -> ConsumerRecord:
    """One fetched record as a ``ConsumerRecord``."""
    record: _Fetched = _new(_Fetched)
    record._m = message
    return record
