"""Build a decoder and an encoder for one message at one version, from its field markers.

For each (message class, version) this writes straight-line Python source for the message and
every struct nested in it, compiles it once and caches the functions. Consecutive fixed-width
fields, and the length or count that follows them, become one ``struct`` call; string, bytes
and varint handling is inlined. Generated code is what makes a pure-Python codec fast enough
(figures in ``docs/kafka-codec.md``, from ``benchmarks/kafka_codec.py``); read the source a
unit produces with ``_Unit(version, flexible)``, ``.decoder(cls)``, ``"\\n".join(.lines)``.

Wire rules (Kafka protocol guide; KIP-482 for flexible versions):
- integers big-endian; ``bool`` one byte; ``uuid`` 16 bytes;
- non-flexible: string = int16 length (-1 = null) + UTF-8; bytes/records = int32 length
  (-1 = null); array = int32 count (-1 = null);
- flexible: the same with unsigned-varint "compact" lengths holding length + 1 (0 = null), and
  every struct ends with a tagged-fields section: uvarint count, then (uvarint tag, uvarint
  size, value) sorted by tag. Unknown tags are skipped.

Decoders are ``decode(buf: bytes, pos) -> (value, pos)``; they check every length and count
against the bytes left before slicing or allocating, and raise ``DecodeError`` (or, for a
read past the end, ``IndexError``/``struct.error``, which ``_api`` turns into ``DecodeError``).
Encoders are ``encode(value, out: bytearray, chunks: list)``: they append to ``out``; record
data of at least ``CHUNK_MIN`` bytes is not copied but handed over as chunks of its own (``out``
is flushed to ``chunks`` first), so the caller can ``writelines`` the lot.
"""

from __future__ import annotations

import dataclasses
import struct
import typing
from collections.abc import Callable
from typing import Any, Final
from uuid import UUID

from ._errors import DecodeError
from ._fields import INT_TYPES, LAST_VERSION, Field
from ._primitives import RecordData

__all__ = ["CHUNK_MIN", "Decoder", "Encoder", "decoder", "encoder", "read_uvarint", "skip_tags"]

Decoder = Callable[[bytes, int], tuple[Any, int]]
Encoder = Callable[[Any, bytearray, list[bytes | memoryview]], None]

CHUNK_MIN: Final = 8192  # record data below this is copied into the frame: cheaper than a chunk

_I32 = struct.Struct(">i")
_NULL32: Final = b"\xff\xff\xff\xff"
_VAR_KINDS: Final = frozenset({"string", "bytes", "records", "array"})
_SLICES: Final = {
    "string": "buf[pos:end].decode()",
    "bytes": "buf[pos:end]",
    "records": "memoryview(buf)[pos:end]",  # record batches: a view of the frame, not a copy
}


# --- helpers the generated code calls -----------------------------------------------------------


def read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    """An unsigned varint of at most 5 bytes (Kafka's uint32 varint) at ``pos``."""
    return _uvarint_tail(buf, pos + 1, buf[pos])


def _uvarint_tail(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """The rest of a varint whose first byte ``first`` was read (``pos`` is just after it)."""
    value = first & 0x7F
    shift = 7
    b = first
    while b & 0x80:
        if shift > 28:
            raise DecodeError("varint longer than 5 bytes")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
    return value, pos


def skip_tags(buf: bytes, pos: int) -> int:
    """Skip a tagged-fields section of tags this version does not know (or a header's)."""
    count, pos = read_uvarint(buf, pos)
    if count > len(buf) - pos:
        raise DecodeError("more tagged fields than bytes")
    for _ in range(count):
        _, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        pos += size
    if pos > len(buf):
        raise DecodeError("tagged field runs past the end")
    return pos


def write_uvarint(n: int, out: bytearray) -> None:
    if n < 0:
        raise ValueError(f"negative varint {n}")
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _write_records(
    data: RecordData | None, out: bytearray, chunks: list[bytes | memoryview], compact: bool
) -> None:
    if data is None:
        out += b"\x00" if compact else _NULL32
        return
    parts = (data,) if isinstance(data, bytes | memoryview) else data
    size = sum(map(len, parts))
    if compact:
        write_uvarint(size + 1, out)
    else:
        out += _I32.pack(size)
    if size < CHUNK_MIN:
        for part in parts:
            out += part
        return
    chunks.append(bytes(out))
    out.clear()
    chunks.extend(parts)


# --- code generation ----------------------------------------------------------------------------


def _fields(cls: type) -> list[tuple[str, Field]]:
    """(name, marker) of each dataclass field, in declaration (= wire) order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return [(f.name, hints[f.name].__metadata__[0]) for f in dataclasses.fields(cls)]


def _default_of(cls: type, fname: str) -> object:
    return next(f.default for f in dataclasses.fields(cls) if f.name == fname)


def _indent(lines: list[str], pad: str = "    ") -> list[str]:
    return [pad + line for line in lines]


class _Unit:
    """The source and namespace of one compiled (message, version): its structs' functions."""

    def __init__(self, version: int, flexible: bool) -> None:
        self.version = version
        self.flexible = flexible
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {
            "DecodeError": DecodeError,
            "UUID": UUID,
            "_uvarint_tail": _uvarint_tail,
            "read_uvarint": read_uvarint,
            "write_uvarint": write_uvarint,
            "skip_tags": skip_tags,
            "_write_records": _write_records,
            "_unpack_from": struct.unpack_from,
            "_pack": struct.pack,
            "_new": object.__new__,
        }
        self.done: dict[tuple[str, type], str] = {}
        self.min_sizes: dict[type, int] = {}
        self._consts: dict[object, str] = {}

    def const(self, value: object) -> str:
        """A name in the generated code's namespace bound to ``value``."""
        key = (type(value), value) if _hashable(value) else id(value)
        name = self._consts.get(key)
        if name is None:
            name = self._consts[key] = f"_k{len(self._consts)}"
            self.ns[name] = value
        return name

    def unpacker(self, fmt: str) -> str:
        return self._struct(fmt, "unpack_from")

    def packer(self, fmt: str) -> str:
        return self._struct(fmt, "pack")

    def _struct(self, fmt: str, method: str) -> str:
        name = self._consts.get((method, fmt))
        if name is None:
            name = self.const(getattr(struct.Struct(fmt), method))
            self._consts[(method, fmt)] = name
        return name

    def layout(self, cls: type) -> tuple[list[tuple[str, Field]], list[tuple[str, Field]]]:
        """(untagged fields present in this version, tagged fields of this version by tag)."""
        v = self.version
        present = [(n, f) for n, f in _fields(cls) if f.present(v)]
        if not self.flexible:
            return present, []
        tagged = sorted((p for p in present if p[1].tagged_in(v)), key=lambda p: p[1].tag or 0)
        return [p for p in present if not p[1].tagged_in(v)], tagged

    def min_size(self, cls: type) -> int:
        """The fewest bytes an encoded ``cls`` takes: bounds array counts before allocating."""
        if cls not in self.min_sizes:
            untagged, _ = self.layout(cls)
            self.min_sizes[cls] = sum(self._field_min(f) for _, f in untagged) + self.flexible
        return self.min_sizes[cls]

    def _field_min(self, f: Field) -> int:
        if f.kind in INT_TYPES:
            return INT_TYPES[f.kind][1]
        if f.kind == "uuid":
            return 16
        if f.kind == "struct":
            assert f.struct is not None
            return self.min_size(f.struct)
        return self._length_size(f.kind)

    def _length_size(self, kind: str) -> int:
        if self.flexible:
            return 1
        return 2 if kind == "string" else 4

    def compile(self) -> None:
        source = "\n".join(self.lines)
        exec(compile(source, f"<kafka codec v{self.version}>", "exec"), self.ns)

    # -- decoding --------------------------------------------------------------------------------

    def decoder(self, cls: type) -> str:
        """Name of the generated ``d_<cls>(buf, pos) -> (value, pos)``."""
        key = ("d", cls)
        if key in self.done:
            return self.done[key]
        name = self.done[key] = f"d_{cls.__name__}"
        untagged, tagged = self.layout(cls)
        body: list[str] = ["blen = len(buf)"]
        run: list[tuple[str, int, str]] = []  # pending fixed reads: (code, size, target)

        def flush() -> None:
            if run:
                fmt = ">" + "".join(code for code, _, _ in run)
                targets = "".join(f"{t}, " for _, _, t in run)
                body.append(f"{targets}= {self.unpacker(fmt)}(buf, pos)")
                body.append(f"pos += {sum(size for _, size, _ in run)}")
                run.clear()

        for fname, f in untagged:
            target = f"v_{fname}"
            what = f"{cls.__name__}.{fname}"
            if f.kind in INT_TYPES:
                run.append((INT_TYPES[f.kind][0], INT_TYPES[f.kind][1], target))
            elif f.kind in _VAR_KINDS and not self.flexible:
                size = self._length_size(f.kind)
                run.append(("h" if size == 2 else "i", size, "n"))
                flush()
                body.extend(self._var_body(f, target, what, "n"))
            else:
                flush()
                body.extend(self._decode_one(f, target, what, "n"))
        flush()
        if self.flexible:
            body.extend(self._decode_tags(cls, tagged) if tagged else self._no_tags())
        body.extend(self._construct(cls, {n for n, _ in untagged + tagged}))
        body.append("return o, pos")
        self.lines.append(f"def {name}(buf, pos):")
        self.lines.extend(_indent(body))
        self.lines.append("")
        return name

    def _construct(self, cls: type, decoded: set[str]) -> list[str]:
        """Build ``o`` by storing into its slots: a third of the time of the frozen dataclass
        ``__init__`` (measured), which goes through ``object.__setattr__`` per field."""
        lines = [f"o = _new({self.const(cls)})"]
        for f in dataclasses.fields(cls):
            setter = self.const(cls.__dict__[f.name].__set__)
            value = f"v_{f.name}" if f.name in decoded else self.const(f.default)
            lines.append(f"{setter}(o, {value})")
        return lines

    def _read_length(self, f: Field, var: str) -> list[str]:
        """Read a length or count into ``var``, -1 meaning null (compact lengths are +1)."""
        if not self.flexible:
            size = self._length_size(f.kind)
            return [
                f"{var}, = {self.unpacker('>h' if size == 2 else '>i')}(buf, pos)",
                f"pos += {size}",
            ]
        return [
            f"{var} = buf[pos]",
            "pos += 1",
            f"if {var} > 127:",
            f"    {var}, pos = _uvarint_tail(buf, pos, {var})",
            f"{var} -= 1",
        ]

    def _decode_one(self, f: Field, target: str, what: str, var: str) -> list[str]:
        """Statements decoding one field at ``pos`` into ``target``."""
        if f.kind in INT_TYPES:
            code, size = INT_TYPES[f.kind]
            return [f"{target}, = {self.unpacker('>' + code)}(buf, pos)", f"pos += {size}"]
        if f.kind == "uuid":
            return [
                "if pos + 16 > blen:",
                f"    raise DecodeError('{what} runs past the end')",
                f"{target} = UUID(bytes=buf[pos:pos + 16])",
                "pos += 16",
            ]
        if f.kind == "struct":
            assert f.struct is not None
            if f.nullable_in(self.version):
                raise TypeError("nullable structs are not used by any supported message")
            return [f"{target}, pos = {self.decoder(f.struct)}(buf, pos)"]
        return self._read_length(f, var) + self._var_body(f, target, what, var)

    def _var_body(self, f: Field, target: str, what: str, var: str) -> list[str]:
        """Statements after a length/count was read into ``var``: null check, then content."""
        if f.nullable_in(self.version):
            head = [
                f"if {var} == -1:",
                f"    {target} = None",
                f"elif {var} < -1:",
                f"    raise DecodeError('negative length in {what}')",
                "else:",
            ]
            return head + _indent(self._content(f, target, what, var))
        return [
            f"if {var} < 0:",
            f"    raise DecodeError('null or negative length in {what}')",
            *self._content(f, target, what, var),
        ]

    def _content(self, f: Field, target: str, what: str, var: str) -> list[str]:
        if f.kind != "array":
            lines = [
                f"end = pos + {var}",
                "if end > blen:",
                f"    raise DecodeError('{what} runs past the end')",
                f"{target} = " + _SLICES[f.kind],
                "pos = end",
            ]
            return lines
        element = f.element
        assert element is not None
        if element == "struct":
            assert f.struct is not None
            least = max(1, self.min_size(f.struct))
        elif element in INT_TYPES:
            least = INT_TYPES[element][1]
        else:
            least = self._length_size(element)
        lines = [
            f"if {var} * {least} > blen - pos:",
            f"    raise DecodeError('{what}: count ' + str({var}) + ' exceeds the bytes left')",
        ]
        if element in INT_TYPES:
            code, size = INT_TYPES[element]
            return [
                *lines,
                f"{target} = list(_unpack_from('>%d{code}' % {var}, buf, pos))",
                f"pos += {var} * {size}",
            ]
        if element == "struct":
            assert f.struct is not None
            read = [f"x, pos = {self.decoder(f.struct)}(buf, pos)"]
        else:
            read = self._decode_one(Field(element, (0, LAST_VERSION)), "x", what, "m")
        return [
            *lines,
            f"{target} = []",
            "append = " + target + ".append",
            f"for _ in range({var}):",
            *_indent(read),
            "    append(x)",
        ]

    def _no_tags(self) -> list[str]:
        # the common case, a single 0 byte, without a call
        return ["if buf[pos]:", "    pos = skip_tags(buf, pos)", "else:", "    pos += 1"]

    def _decode_tags(self, cls: type, tagged: list[tuple[str, Field]]) -> list[str]:
        owner = cls.__name__
        lines = [f"v_{n} = {self.const(_default_of(cls, n))}" for n, _ in tagged]
        lines += [
            "ntags, pos = read_uvarint(buf, pos)",
            "if ntags > blen - pos:",
            f"    raise DecodeError('more tagged fields than bytes in {owner}')",
            "for _ in range(ntags):",
            "    tag, pos = read_uvarint(buf, pos)",
            "    size, pos = read_uvarint(buf, pos)",
            "    tag_end = pos + size",
            "    if tag_end > blen:",
            f"        raise DecodeError('tagged field runs past the end of {owner}')",
        ]
        for i, (fname, f) in enumerate(tagged):
            lines.append(f"    {'if' if i == 0 else 'elif'} tag == {f.tag}:")
            decode = self._decode_one(f, f"v_{fname}", f"{owner}.{fname}", "n")
            lines.extend(_indent(decode, "        "))
            lines.append("        if pos != tag_end:")
            lines.append(f"            raise DecodeError('tagged {owner}.{fname}: wrong size')")
        lines.append("    pos = tag_end")
        return lines

    # -- encoding --------------------------------------------------------------------------------

    def encoder(self, cls: type) -> str:
        """Name of the generated ``e_<cls>(value, out, chunks)``."""
        key = ("e", cls)
        if key in self.done:
            return self.done[key]
        name = self.done[key] = f"e_{cls.__name__}"
        untagged, tagged = self.layout(cls)
        body: list[str] = []
        run: list[tuple[str, str]] = []  # pending fixed writes: (code, expression)

        def flush() -> None:
            if run:
                fmt = ">" + "".join(code for code, _ in run)
                body.append(f"out += {self.packer(fmt)}({', '.join(e for _, e in run)})")
                run.clear()

        for fname, f in untagged:
            value = f"o.{fname}"
            if f.kind in INT_TYPES:
                run.append((INT_TYPES[f.kind][0], value))
            elif f.kind == "array" and not self.flexible and not f.nullable_in(self.version):
                # the count joins the fixed fields before it
                body.append(f"a_{fname} = {value}")
                run.append(("i", f"len(a_{fname})"))
                flush()
                body.extend(self._array_items(f, f"a_{fname}", "out"))
            else:
                flush()
                body.extend(self._encode_one(f, value, "out"))
        flush()
        if self.flexible:
            body.extend(self._encode_tags(cls, tagged) if tagged else ["out.append(0)"])
        self.lines.append(f"def {name}(o, out, chunks):")
        self.lines.extend(_indent(body or ["pass"]))
        self.lines.append("")
        return name

    def _write_length(self, kind: str, expr: str, out: str) -> list[str]:
        if self.flexible:
            return [
                f"n = {expr} + 1",
                "if n < 128:",
                f"    {out}.append(n)",
                "else:",
                f"    write_uvarint(n, {out})",
            ]
        fmt = ">h" if self._length_size(kind) == 2 else ">i"
        return [f"{out} += {self.packer(fmt)}({expr})"]

    def _encode_one(self, f: Field, value: str, out: str) -> list[str]:
        """Statements appending ``value`` (an expression) as field ``f`` to ``out``."""
        if f.kind in INT_TYPES:
            return [f"{out} += {self.packer('>' + INT_TYPES[f.kind][0])}({value})"]
        if f.kind == "uuid":
            return [f"{out} += {value}.bytes"]
        if f.kind == "struct":
            assert f.struct is not None
            return [f"{self.encoder(f.struct)}({value}, {out}, chunks)"]
        if f.kind == "records":
            return [f"_write_records({value}, {out}, chunks, {self.flexible})"]
        null = self.const(b"\x00" if self.flexible else b"\xff" * self._length_size(f.kind))
        if f.kind == "array":
            var = "a"
            content = [*self._write_length("array", "len(a)", out), *self._array_items(f, "a", out)]
        else:
            var = "s"
            data = "s.encode()" if f.kind == "string" else "s"
            content = [f"b = {data}", *self._write_length(f.kind, "len(b)", out), f"{out} += b"]
        if f.nullable_in(self.version):
            return [
                f"{var} = {value}",
                f"if {var} is None:",
                f"    {out} += {null}",
                "else:",
                *_indent(content),
            ]
        return [f"{var} = {value}", *content]

    def _array_items(self, f: Field, array: str, out: str) -> list[str]:
        element = f.element
        assert element is not None
        if element in INT_TYPES:
            code = INT_TYPES[element][0]
            return [f"{out} += _pack('>%d{code}' % len({array}), *{array})"]
        item = Field(element, (0, LAST_VERSION), struct=f.struct)
        return [f"for x in {array}:", *_indent(self._encode_one(item, "x", out))]

    def _encode_tags(self, cls: type, tagged: list[tuple[str, Field]]) -> list[str]:
        lines = ["tags = []"]
        for fname, f in tagged:
            if f.kind == "records":
                raise TypeError("tagged records are not supported")
            default = _default_of(cls, fname)
            if f.kind == "array" and default == ():
                lines.append(f"if o.{fname}:")  # Kafka sends a tagged array when not empty
            else:
                lines.append(f"if o.{fname} != {self.const(default)}:")
            lines.append("    t = bytearray()")
            lines.extend(_indent(self._encode_one(f, f"o.{fname}", "t")))
            lines.append(f"    tags.append(({f.tag}, t))")
        return [
            *lines,
            "write_uvarint(len(tags), out)",
            "for tag, t in tags:",
            "    write_uvarint(tag, out)",
            "    write_uvarint(len(t), out)",
            "    out += t",
        ]


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _is_flexible(cls: type, version: int) -> bool:
    first: int | None = getattr(cls, "FLEXIBLE_FROM", None)
    return first is not None and version >= first


_decoders: dict[tuple[type, int], Decoder] = {}
_encoders: dict[tuple[type, int], Encoder] = {}


def decoder(cls: type, version: int) -> Decoder:
    """The decoder of message ``cls`` at ``version`` (compiled on first use)."""
    fn = _decoders.get((cls, version))
    if fn is None:
        unit = _Unit(version, _is_flexible(cls, version))
        name = unit.decoder(cls)
        unit.compile()
        fn = _decoders[(cls, version)] = unit.ns[name]
    return fn


def encoder(cls: type, version: int) -> Encoder:
    """The encoder of message ``cls`` at ``version`` (compiled on first use)."""
    fn = _encoders.get((cls, version))
    if fn is None:
        unit = _Unit(version, _is_flexible(cls, version))
        name = unit.encoder(cls)
        unit.compile()
        fn = _encoders[(cls, version)] = unit.ns[name]
    return fn
