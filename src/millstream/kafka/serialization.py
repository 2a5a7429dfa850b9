"""Turning the values people send into record bytes, and record bytes back into values.

Kafka records carry bytes. The producer's default serializer keeps ``bytes`` (and
``bytearray``/``memoryview``) as they are, encodes ``str`` as UTF-8, and encodes anything else
JSON-able (dicts, lists, numbers, booleans, dataclasses, datetimes) as JSON, so
``await client.produce("events", {"user": 1})`` works. ``None`` stays ``None`` (a null value:
a tombstone on compacted topics). Pass ``value_serializer=``/``key_serializer=`` in
``ProducerConfig`` for anything else; consumers return bytes unless given a
``value_deserializer=``/``key_deserializer=`` such as ``json_deserializer``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

__all__ = [
    "Deserializer",
    "Serializer",
    "default_serializer",
    "json_deserializer",
    "json_serializer",
    "string_deserializer",
    "string_serializer",
]

#: Turns a value into record bytes; called for every non-``None`` key or value.
Serializer = Callable[[Any], bytes]
#: Turns record bytes back into a value; called for every non-``None`` key or value.
Deserializer = Callable[[bytes], Any]


def default_serializer(value: Any) -> bytes:
    """bytes-like as is, ``str`` as UTF-8, anything else as JSON."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return orjson.dumps(value)


def json_serializer(value: Any) -> bytes:
    """Every value as JSON, strings included (``"hi"`` becomes ``b'"hi"'``)."""
    return orjson.dumps(value)


def string_serializer(value: Any) -> bytes:
    """``str(value)`` as UTF-8."""
    return str(value).encode()


def json_deserializer(data: bytes) -> Any:
    """Parse JSON record bytes."""
    return orjson.loads(data)


def string_deserializer(data: bytes) -> str:
    """Decode UTF-8 record bytes."""
    return data.decode()
