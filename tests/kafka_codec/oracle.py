"""kafka-python's encoders as the oracle for millstream's Kafka codec.

``values(cls, version)`` draws any message of ours that is valid at ``version``;
``to_kafka_python`` / ``from_kafka_python`` carry a value across, field by field by name, so a
test can encode with one codec and decode with the other. kafka-python patches three fields of
its schemas (authorized-operations bitfields, decoded as sets of bit numbers and renamed in
Metadata); ``_RENAMED`` and ``_BITFIELDS`` undo that.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import typing
from functools import cache
from typing import Any

import kafka.protocol
from hypothesis import strategies as st
from kafka.protocol.api_message import ApiMessage

from millstream.server.kafka.codec._fields import Field

INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint16": (0, 2**16 - 1),
}
INT32_MIN = -(2**31)

# (our class name, our field name) → kafka-python's field name
_RENAMED = {
    ("MetadataResponse", "cluster_authorized_operations"): "authorized_operations",
    ("MetadataResponseTopic", "topic_authorized_operations"): "authorized_operations",
}
_BITFIELDS = {
    ("MetadataResponse", "cluster_authorized_operations"),
    ("MetadataResponseTopic", "topic_authorized_operations"),
    ("DescribedGroup", "authorized_operations"),
}


def fields(cls: type) -> list[tuple[str, Field]]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return [(f.name, hints[f.name].__metadata__[0]) for f in dataclasses.fields(cls)]


@cache
def kafka_python_classes() -> dict[str, type]:
    """kafka-python's request/response classes by name (the same names as ours)."""
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(kafka.protocol.__path__, "kafka.protocol."):
        if ".old" in info.name or info.name.endswith("generate_stubs"):
            continue
        module = importlib.import_module(info.name)
        for name in dir(module):
            obj = getattr(module, name)
            if (
                isinstance(obj, type)
                and issubclass(obj, ApiMessage)
                and obj is not ApiMessage
                and getattr(obj, "_json", None)
            ):
                found[name] = obj
    return found


# --- drawing values ------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


def values(cls: type, version: int, *, chunks: bool = False) -> st.SearchStrategy[Any]:
    """Any ``cls`` valid at ``version``; fields absent from it keep their defaults. With
    ``chunks``, record data is sometimes a list of parts, some above the chunking threshold."""
    kwargs = {name: _field(f, version, chunks) for name, f in fields(cls) if f.present(version)}
    return st.builds(cls, **kwargs)


def _field(f: Field, version: int, chunks: bool) -> st.SearchStrategy[Any]:
    if f.kind == "array":
        assert f.element is not None
        if f.element == "struct":
            assert f.struct is not None
            element = values(f.struct, version, chunks=chunks)
        else:
            element = _primitive(f.element, chunks=False)
        strategy: st.SearchStrategy[Any] = st.lists(element, max_size=3)
    elif f.kind == "struct":
        assert f.struct is not None
        strategy = values(f.struct, version, chunks=chunks)
    else:
        strategy = _primitive(f.kind, chunks)
    if f.nullable_in(version):
        strategy = st.none() | strategy
    return strategy


def _primitive(kind: str, chunks: bool) -> st.SearchStrategy[Any]:
    if kind in INT_RANGES:
        low, high = INT_RANGES[kind]
        return st.integers(low, high)
    if kind == "bool":
        return st.booleans()
    if kind == "float64":
        return st.floats(allow_nan=False)
    if kind == "string":
        return _text
    if kind == "bytes":
        return st.binary(max_size=16)
    if kind == "uuid":
        return st.uuids()
    if kind == "records":
        small = st.binary(max_size=64)
        if not chunks:
            return small
        big = st.binary(min_size=8192, max_size=8300)
        return small | st.lists(small | big, min_size=1, max_size=3)
    raise AssertionError(kind)


# --- crossing over ------------------------------------------------------------------------------


def to_kafka_python(value: Any, target: Any, version: int) -> Any:
    """Our message as an instance of kafka-python's ``target`` class (or data class)."""
    cls = type(value)
    kwargs: dict[str, Any] = {}
    for name, f in fields(cls):
        if not f.present(version):
            continue
        kp_name = _RENAMED.get((cls.__name__, name), name)
        item = getattr(value, name)
        if (cls.__name__, name) in _BITFIELDS:
            item = _to_bits(item)
        elif f.kind == "struct" or (f.kind == "array" and f.element == "struct"):
            inner = target._struct.fields[kp_name].data_class
            if f.kind == "struct":
                item = to_kafka_python(item, inner, version)
            elif item is not None:
                item = [to_kafka_python(x, inner, version) for x in item]
        elif f.kind == "records" and item is not None:
            item = bytes(item) if isinstance(item, bytes | memoryview) else b"".join(item)
        kwargs[kp_name] = item
    if issubclass(target, ApiMessage):
        return target[version](**kwargs)
    return target(**kwargs)


def from_kafka_python(obj: Any, cls: type, version: int) -> Any:
    """kafka-python's decoded ``obj`` as our ``cls``."""
    kwargs: dict[str, Any] = {}
    for name, f in fields(cls):
        if not f.present(version):
            continue
        item = getattr(obj, _RENAMED.get((cls.__name__, name), name))
        if (cls.__name__, name) in _BITFIELDS:
            item = _from_bits(item)
        elif f.kind == "struct":
            assert f.struct is not None
            item = f.struct() if item is None else from_kafka_python(item, f.struct, version)
        elif f.kind == "array" and f.element == "struct" and item is not None:
            assert f.struct is not None
            item = [from_kafka_python(x, f.struct, version) for x in item]
        elif f.kind == "array" and item is not None:
            item = list(item)
        kwargs[name] = item
    return cls(**kwargs)


def _to_bits(value: int) -> set[int] | None:
    if value == INT32_MIN:
        return None
    unsigned = value & 0xFFFFFFFF
    return {bit for bit in range(32) if unsigned >> bit & 1}


def _from_bits(bits: set[int] | None) -> int:
    if bits is None:
        return INT32_MIN
    unsigned = sum(1 << bit for bit in bits)
    return unsigned - (1 << 32) if unsigned >= 1 << 31 else unsigned


def normalized(value: Any) -> Any:
    """A value with every array a list and record chunks joined, for comparing."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = dict(fields(type(value)))
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if hints[f.name].kind == "records" and item is not None:
                item = bytes(item) if isinstance(item, bytes | memoryview) else b"".join(item)
            out[f.name] = normalized(item)
        return (type(value).__name__, out)
    if isinstance(value, list | tuple):
        return [normalized(x) for x in value]
    return value
