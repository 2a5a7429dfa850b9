"""Field markers: how one dataclass field of a Kafka message is laid out on the wire.

Each message field is written ``name: Annotated[<python type>, <marker>] = <default>``; the
marker names the wire type and the versions the field exists in, the way Kafka's JSON message
schemas do (``"versions": "3+"``, ``"nullableVersions"``, ``"tag"``/``"taggedVersions"``).
``_compile`` reads the markers once per (message, version) and builds a decoder and an encoder.

Version strings: ``"3+"`` (3 and later), ``"0-2"``, ``"5"`` or ``"none"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

__all__ = [
    "INT_TYPES",
    "Array",
    "Bool",
    "Bytes",
    "Field",
    "Float64",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Records",
    "String",
    "Struct",
    "Uint16",
    "Uuid",
    "VersionRange",
    "parse_versions",
]

NO_VERSIONS: Final = (1, 0)  # an empty range: low > high
LAST_VERSION: Final = 0x7FFF

VersionRange = tuple[int, int]

# struct format character and size of each fixed-width wire type
INT_TYPES: Final[dict[str, tuple[str, int]]] = {
    "int8": ("b", 1),
    "int16": ("h", 2),
    "int32": ("i", 4),
    "int64": ("q", 8),
    "uint16": ("H", 2),
    "float64": ("d", 8),
    "bool": ("?", 1),
}


def parse_versions(spec: str) -> VersionRange:
    """``"3+"`` → (3, 32767); ``"0-2"`` → (0, 2); ``"4"`` → (4, 4); ``"none"`` → empty."""
    if spec == "none":
        return NO_VERSIONS
    if spec.endswith("+"):
        return (int(spec[:-1]), LAST_VERSION)
    low, _, high = spec.partition("-")
    return (int(low), int(high or low))


@dataclass(frozen=True, slots=True)
class Field:
    """Wire layout of one field: its type, the versions it exists in, nullability and tag."""

    kind: str
    versions: VersionRange
    nullable: VersionRange = NO_VERSIONS
    tag: int | None = None
    tagged: VersionRange = NO_VERSIONS
    # arrays: the element's kind ("struct" or a primitive kind); structs and struct arrays: class
    element: str | None = None
    struct: type | None = None

    def present(self, version: int) -> bool:
        return self.versions[0] <= version <= self.versions[1]

    def nullable_in(self, version: int) -> bool:
        return self.nullable[0] <= version <= self.nullable[1]

    def tagged_in(self, version: int) -> bool:
        return self.tag is not None and self.tagged[0] <= version <= self.tagged[1]


def _field(
    kind: str,
    versions: str,
    nullable: str,
    tag: int | None,
    tagged: str | None,
    element: str | None = None,
    struct: type | None = None,
) -> Field:
    return Field(
        kind=kind,
        versions=parse_versions(versions),
        nullable=parse_versions(nullable),
        tag=tag,
        tagged=parse_versions(tagged if tagged is not None else versions)
        if tag is not None
        else NO_VERSIONS,
        element=element,
        struct=struct,
    )


class _Marker(Protocol):
    def __call__(
        self,
        versions: str,
        *,
        nullable: str = ...,
        tag: int | None = ...,
        tagged: str | None = ...,
    ) -> Field: ...


def _simple(kind: str) -> _Marker:
    def marker(
        versions: str, *, nullable: str = "none", tag: int | None = None, tagged: str | None = None
    ) -> Field:
        return _field(kind, versions, nullable, tag, tagged)

    marker.__name__ = marker.__qualname__ = kind.capitalize()
    marker.__doc__ = f"A ``{kind}`` field present in ``versions``."
    return marker


Int8 = _simple("int8")
Int16 = _simple("int16")
Int32 = _simple("int32")
Int64 = _simple("int64")
Uint16 = _simple("uint16")
Float64 = _simple("float64")
Bool = _simple("bool")
String = _simple("string")
Bytes = _simple("bytes")
Uuid = _simple("uuid")
Records = _simple("records")


def Array(
    versions: str,
    element: type | str,
    *,
    nullable: str = "none",
    tag: int | None = None,
    tagged: str | None = None,
) -> Field:
    """An array of structs (``element`` a message class) or of a primitive kind (``"int32"``)."""
    if isinstance(element, str):
        return _field("array", versions, nullable, tag, tagged, element=element)
    return _field("array", versions, nullable, tag, tagged, element="struct", struct=element)


def Struct(
    versions: str,
    struct: type,
    *,
    nullable: str = "none",
    tag: int | None = None,
    tagged: str | None = None,
) -> Field:
    """A single nested struct (Kafka schemas use these mostly as tagged fields)."""
    return _field("struct", versions, nullable, tag, tagged, struct=struct)
