"""Build a decoder and an encoder for one message at one version, from its field markers.

For each (message class, version) this writes straight-line Python source for the message and
every struct nested in it, compiles it once and caches the functions. Consecutive fixed-width
fields become one ``struct`` call; strings, arrays and tagged fields go through the small
helpers below. Generated code is what makes the codec fast in pure Python (figures in
``docs/kafka-codec.md``, from ``benchmarks/kafka_codec.py``).

Wire rules (Kafka protocol guide; KIP-482 for flexible versions):
- integers big-endian; ``bool`` one byte; ``uuid`` 16 bytes;
- non-flexible: string = int16 length (-1 = null) + UTF-8; bytes/records = int32 length
  (-1 = null); array = int32 count (-1 = null);
- flexible: the same with unsigned-varint "compact" lengths holding length + 1 (0 = null), and
  every struct ends with a tagged-fields section: uvarint count, then (uvarint tag, uvarint
  size, value) sorted by tag. Unknown tags are skipped.

Decoders are ``decode(buf: bytes, pos) -> (value, pos)``; they never slice or allocate from a
length before checking it against the bytes left, and any inconsistency raises
``DecodeError``. Encoders are ``encode(value, out: bytearray, chunks: list[bytes])``: they
append to ``out``; record data of at least ``CHUNK_MIN`` bytes is not copied but handed over
as its own chunk (``out`` is flushed to ``chunks`` first), so the caller can ``writelines``.
"""

from __future__ import annotations

import dataclasses
import struct
import typing
from collections.abc import Callable, Sequence
from typing import Any, Final
from uuid import UUID

from ._errors import DecodeError
from ._fields import INT_TYPES, Field

__all__ = ["CHUNK_MIN", "Decoder", "Encoder", "decoder", "encoder"]

Decoder = Callable[[bytes, int], tuple[Any, int]]
Encoder = Callable[[Any, bytearray, list[bytes]], None]

CHUNK_MIN: Final = 8192  # record data below this is copied into the frame: cheaper than a chunk

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_NULL16: Final = b"\xff\xff"
_NULL32: Final = b"\xff\xff\xff\xff"
_NULL_COMPACT: Final = b"\x00"


# --- decoding helpers: (buf, pos) -> (value, pos) ---------------------------------------------


def _short(what: str) -> DecodeError:
    return DecodeError(f"truncated or oversized {what}")


def read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    """An unsigned varint of at most 5 bytes (Kafka's uint32 varint)."""
    value = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise _short("varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise DecodeError("varint longer than 5 bytes")


def _read_string(buf: bytes, pos: int) -> tuple[str | None, int]:
    (n,) = _I16.unpack_from(buf, pos)
    pos += 2
    if n < 0:
        if n == -1:
            return None, pos
        raise DecodeError(f"negative string length {n}")
    end = pos + n
    if end > len(buf):
        raise _short("string")
    return buf[pos:end].decode(), end


def _read_compact_string(buf: bytes, pos: int) -> tuple[str | None, int]:
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        return None, pos
    end = pos + n - 1
    if end > len(buf):
        raise _short("string")
    return buf[pos:end].decode(), end


def _read_bytes(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    (n,) = _I32.unpack_from(buf, pos)
    pos += 4
    if n < 0:
        if n == -1:
            return None, pos
        raise DecodeError(f"negative bytes length {n}")
    end = pos + n
    if end > len(buf):
        raise _short("bytes")
    return buf[pos:end], end


def _read_compact_bytes(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    n, pos = read_uvarint(buf, pos)
    if n == 0:
        return None, pos
    end = pos + n - 1
    if end > len(buf):
        raise _short("bytes")
    return buf[pos:end], end


def _read_uuid(buf: bytes, pos: int) -> tuple[UUID, int]:
    end = pos + 16
    if end > len(buf):
        raise _short("uuid")
    return UUID(bytes=buf[pos:end]), end


def _read_count(buf: bytes, pos: int) -> tuple[int, int]:
    (n,) = _I32.unpack_from(buf, pos)
    return n, pos + 4


def _read_compact_count(buf: bytes, pos: int) -> tuple[int, int]:
    n, pos = read_uvarint(buf, pos)
    return n - 1, pos


def _not_null(reader: Decoder, what: str) -> Decoder:
    def read(buf: bytes, pos: int) -> tuple[Any, int]:
        value, pos = reader(buf, pos)
        if value is None:
            raise DecodeError(f"null {what} where the version allows none")
        return value, pos

    return read


def _skip_tags(buf: bytes, pos: int) -> int:
    count, pos = read_uvarint(buf, pos)
    if count > len(buf) - pos:
        raise _short("tagged fields")
    for _ in range(count):
        _, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        pos += size
        if pos > len(buf):
            raise _short("tagged field")
    return pos


# --- encoding helpers: (value, out) -> None ----------------------------------------------------


def write_uvarint(n: int, out: bytearray) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _write_string(s: str | None, out: bytearray) -> None:
    if s is None:
        out += _NULL16
        return
    b = s.encode()
    out += _I16.pack(len(b))
    out += b


def _write_compact_string(s: str | None, out: bytearray) -> None:
    if s is None:
        out.append(0)
        return
    b = s.encode()
    write_uvarint(len(b) + 1, out)
    out += b


def _write_bytes(b: bytes | None, out: bytearray) -> None:
    if b is None:
        out += _NULL32
        return
    out += _I32.pack(len(b))
    out += b


def _write_compact_bytes(b: bytes | None, out: bytearray) -> None:
    if b is None:
        out.append(0)
        return
    write_uvarint(len(b) + 1, out)
    out += b


def _write_records(
    data: bytes | Sequence[bytes] | None, out: bytearray, chunks: list[bytes], compact: bool
) -> None:
    if data is None:
        out += b"\x00" if compact else _NULL32
        return
    parts = (data,) if isinstance(data, bytes) else data
    size = sum(map(len, parts)) if len(parts) != 1 else len(parts[0])
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


def _write_uuid(u: UUID, out: bytearray) -> None:
    out += u.bytes


# --- code generation ----------------------------------------------------------------------------

_FIXED_SIZES: Final = {kind: size for kind, (_, size) in INT_TYPES.items()}


def _fields(cls: type) -> list[tuple[str, Field]]:
    """(name, marker) of each dataclass field, in declaration (= wire) order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        marker = hints[f.name].__metadata__[0]
        out.append((f.name, marker))
    return out


class _Unit:
    """The source and namespace of one compiled (message, version): its structs' functions."""

    def __init__(self, version: int, flexible: bool) -> None:
        self.version = version
        self.flexible = flexible
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {
            "DecodeError": DecodeError,
            "read_uvarint": read_uvarint,
            "write_uvarint": write_uvarint,
            "_skip_tags": _skip_tags,
            "_write_records": _write_records,
        }
        self.done: dict[tuple[str, type], str] = {}
        self.min_sizes: dict[type, int] = {}
        self._consts = 0

    def const(self, value: object) -> str:
        name = f"_k{self._consts}"
        self._consts += 1
        self.ns[name] = value
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
        if f.kind in _FIXED_SIZES:
            return _FIXED_SIZES[f.kind]
        if f.kind == "uuid":
            return 16
        if f.kind == "struct":
            assert f.struct is not None
            return self.min_size(f.struct)
        if self.flexible:
            return 1
        return 2 if f.kind == "string" else 4

    # -- decoding --

    def reader(self, f: Field, what: str) -> str:
        """Name of a (buf, pos) -> (value, pos) reader for a non-array, non-fixed field."""
        v = self.version
        flex = self.flexible
        if f.kind == "struct":
            assert f.struct is not None
            base = self.decoder(f.struct)
        elif f.kind == "string":
            base = self.const(_read_compact_string if flex else _read_string)
        elif f.kind in ("bytes", "records"):
            base = self.const(_read_compact_bytes if flex else _read_bytes)
        elif f.kind == "uuid":
            return self.const(_read_uuid)
        elif f.kind in INT_TYPES:
            unpack = struct.Struct(">" + INT_TYPES[f.kind][0]).unpack_from
            size = INT_TYPES[f.kind][1]
            return self.const(lambda buf, pos: (unpack(buf, pos)[0], pos + size))
        else:
            raise TypeError(f"no reader for {f.kind}")
        if f.kind == "struct":
            if f.nullable_in(v):
                raise TypeError("nullable structs are not used by any supported message")
            return base
        if f.nullable_in(v):
            return base
        return self.const(_not_null(self.ns[base], what))

    def decoder(self, cls: type) -> str:
        key = ("d", cls)
        if key in self.done:
            return self.done[key]
        name = f"d_{cls.__name__}"
        self.done[key] = name
        untagged, tagged = self.layout(cls)
        body: list[str] = []
        run: list[tuple[str, Field]] = []
        assigned: list[tuple[str, str]] = []  # (field name, local)

        def flush() -> None:
            if not run:
                return
            fmt = ">" + "".join(INT_TYPES[f.kind][0] for _, f in run)
            size = sum(INT_TYPES[f.kind][1] for _, f in run)
            unpack = self.const(struct.Struct(fmt).unpack_from)
            locals_ = [f"v_{n}" for n, _ in run]
            body.append(f"{', '.join(locals_)}, = {unpack}(buf, pos)")
            body.append(f"pos += {size}")
            assigned.extend((n, f"v_{n}") for n, _ in run)
            run.clear()

        for fname, f in untagged:
            if f.kind in INT_TYPES:
                run.append((fname, f))
                continue
            flush()
            body.extend(self._decode_field(fname, f, f"v_{fname}", cls.__name__))
            assigned.append((fname, f"v_{fname}"))
        flush()
        if self.flexible:
            if tagged:
                body.extend(self._decode_tags(cls, tagged))
                assigned.extend((n, f"v_{n}") for n, _ in tagged)
            else:
                body.append("pos = _skip_tags(buf, pos)")
        cls_name = self.const(cls)
        args = ", ".join(f"{n}={local}" for n, local in assigned)
        body.append(f"return {cls_name}({args}), pos")
        self.lines.append(f"def {name}(buf, pos):")
        self.lines.extend("    " + line for line in body)
        self.lines.append("")
        return name

    def _decode_field(self, fname: str, f: Field, target: str, owner: str) -> list[str]:
        what = f"{owner}.{fname}"
        if f.kind != "array":
            return [f"{target}, pos = {self.reader(f, what)}(buf, pos)"]
        count = self.const(_read_compact_count if self.flexible else _read_count)
        lines = [f"n, pos = {count}(buf, pos)"]
        null = "None" if f.nullable_in(self.version) else None
        lines.append("if n < 0:")
        if null is not None:
            lines.append("    if n != -1:")
            lines.append(f"        raise DecodeError('negative count in {what}')")
            lines.append(f"    {target} = None")
        else:
            lines.append(f"    raise DecodeError('null or negative count in {what}')")
        lines.append("else:")
        element = f.element
        assert element is not None
        if element == "struct":
            assert f.struct is not None
            least = max(1, self.min_size(f.struct))
            read = self.decoder(f.struct)
        elif element in INT_TYPES:
            least = INT_TYPES[element][1]
            read = ""
        else:
            least = 1 if self.flexible else (2 if element == "string" else 4)
            read = self.reader(Field(element, (0, 0x7FFF)), what)
        lines.append(f"    if n * {least} > len(buf) - pos:")
        lines.append(f"        raise DecodeError('count {{}} too large in {what}'.format(n))")
        if element in INT_TYPES:
            code = INT_TYPES[element][0]
            lines.append(f"    {target} = list(_unpack_from('>%d{code}' % n, buf, pos))")
            lines.append(f"    pos += n * {least}")
            self.ns["_unpack_from"] = struct.unpack_from
        else:
            lines.append(f"    {target} = []")
            lines.append(f"    append = {target}.append")
            lines.append("    for _ in range(n):")
            lines.append(f"        x, pos = {read}(buf, pos)")
            lines.append("        append(x)")
        return lines

    def _decode_tags(self, cls: type, tagged: list[tuple[str, Field]]) -> list[str]:
        owner = cls.__name__
        lines = [f"v_{n} = {self.const(_default_of(cls, n))}" for n, _ in tagged]
        lines.append("ntags, pos = read_uvarint(buf, pos)")
        lines.append("if ntags > len(buf) - pos:")
        lines.append(f"    raise DecodeError('too many tagged fields in {owner}')")
        lines.append("for _ in range(ntags):")
        lines.append("    tag, pos = read_uvarint(buf, pos)")
        lines.append("    size, pos = read_uvarint(buf, pos)")
        lines.append("    end = pos + size")
        lines.append("    if end > len(buf):")
        lines.append(f"        raise DecodeError('truncated tagged field in {owner}')")
        for i, (fname, f) in enumerate(tagged):
            # a value that runs past its declared size is caught by the check below
            lines.append(f"    {'if' if i == 0 else 'elif'} tag == {f.tag}:")
            lines.extend(
                "        " + line for line in self._decode_field(fname, f, f"v_{fname}", owner)
            )
            lines.append("        if pos != end:")
            lines.append(f"            raise DecodeError('tagged field {fname} size mismatch')")
        lines.append("    pos = end")
        return lines

    # -- encoding --

    def writer_expr(self, f: Field, value: str, out: str) -> list[str]:
        """Statements that append ``value`` (an expression) as field ``f`` to ``out``."""
        flex = self.flexible
        if f.kind in INT_TYPES:
            pack = self.const(struct.Struct(">" + INT_TYPES[f.kind][0]).pack)
            return [f"{out} += {pack}({value})"]
        if f.kind == "string":
            return [
                f"{self.const(_write_compact_string if flex else _write_string)}({value}, {out})"
            ]
        if f.kind == "bytes":
            return [f"{self.const(_write_compact_bytes if flex else _write_bytes)}({value}, {out})"]
        if f.kind == "records":
            return [f"_write_records({value}, {out}, chunks, {flex})"]
        if f.kind == "uuid":
            return [f"{self.const(_write_uuid)}({value}, {out})"]
        if f.kind == "struct":
            assert f.struct is not None
            return [f"{self.encoder(f.struct)}({value}, {out}, chunks)"]
        if f.kind == "array":
            return self._encode_array(f, value, out)
        raise TypeError(f"no writer for {f.kind}")

    def _encode_array(self, f: Field, value: str, out: str) -> list[str]:
        lines = [f"a = {value}"]
        if f.nullable_in(self.version):
            lines.append("if a is None:")
            null = self.const(_NULL_COMPACT if self.flexible else _NULL32)
            lines.append(f"    {out} += {null}")
            lines.append("else:")
            pad = "    "
        else:
            pad = ""
        if self.flexible:
            lines.append(f"{pad}write_uvarint(len(a) + 1, {out})")
        else:
            lines.append(f"{pad}{out} += {self.const(_I32.pack)}(len(a))")
        element = f.element
        assert element is not None
        if element in INT_TYPES:
            self.ns["_pack"] = struct.pack
            code = INT_TYPES[element][0]
            lines.append(f"{pad}{out} += _pack('>%d{code}' % len(a), *a)")
            return lines
        if element == "struct":
            assert f.struct is not None
            item = Field("struct", (0, 0x7FFF), struct=f.struct)
        else:
            item = Field(element, (0, 0x7FFF))
        lines.append(f"{pad}for x in a:")
        lines.extend(f"{pad}    {line}" for line in self.writer_expr(item, "x", out))
        return lines

    def encoder(self, cls: type) -> str:
        key = ("e", cls)
        if key in self.done:
            return self.done[key]
        name = f"e_{cls.__name__}"
        self.done[key] = name
        untagged, tagged = self.layout(cls)
        body: list[str] = []
        run: list[str] = []

        def flush() -> None:
            if not run:
                return
            fmt = ">" + "".join(INT_TYPES[_kind(cls, n)][0] for n in run)
            pack = self.const(struct.Struct(fmt).pack)
            body.append(f"out += {pack}({', '.join(f'o.{n}' for n in run)})")
            run.clear()

        for fname, f in untagged:
            if f.kind in INT_TYPES:
                run.append(fname)
                continue
            flush()
            body.extend(self.writer_expr(f, f"o.{fname}", "out"))
        flush()
        if self.flexible:
            if not tagged:
                body.append("out.append(0)")
            else:
                body.extend(self._encode_tags(cls, tagged))
        self.lines.append(f"def {name}(o, out, chunks):")
        self.lines.extend("    " + line for line in (body or ["pass"]))
        self.lines.append("")
        return name

    def _encode_tags(self, cls: type, tagged: list[tuple[str, Field]]) -> list[str]:
        lines = ["tags = []"]
        for fname, f in tagged:
            if f.kind == "records":
                raise TypeError("tagged records are not supported")
            default = self.const(_default_of(cls, fname))
            lines.append(f"if o.{fname} != {default}:")
            lines.append("    t = bytearray()")
            lines.extend("    " + line for line in self.writer_expr(f, f"o.{fname}", "t"))
            lines.append(f"    tags.append(({f.tag}, t))")
        lines.append("write_uvarint(len(tags), out)")
        lines.append("for tag, t in tags:")
        lines.append("    write_uvarint(tag, out)")
        lines.append("    write_uvarint(len(t), out)")
        lines.append("    out += t")
        return lines

    def compile(self) -> None:
        source = "\n".join(self.lines)
        exec(compile(source, f"<kafka codec v{self.version}>", "exec"), self.ns)


def _kind(cls: type, fname: str) -> str:
    return next(f.kind for n, f in _fields(cls) if n == fname)


def _default_of(cls: type, fname: str) -> object:
    return next(f.default for f in dataclasses.fields(cls) if f.name == fname)


def _is_flexible(cls: type, version: int) -> bool:
    first: int | None = getattr(cls, "FLEXIBLE_FROM", None)
    return first is not None and version >= first


_decoders: dict[tuple[type, int], Decoder] = {}
_encoders: dict[tuple[type, int], Encoder] = {}


def decoder(cls: type, version: int) -> Decoder:
    """The decoder of message ``cls`` at ``version`` (compiled on first use)."""
    try:
        return _decoders[(cls, version)]
    except KeyError:
        unit = _Unit(version, _is_flexible(cls, version))
        name = unit.decoder(cls)
        unit.compile()
        fn: Decoder = unit.ns[name]
        _decoders[(cls, version)] = fn
        return fn


def encoder(cls: type, version: int) -> Encoder:
    """The encoder of message ``cls`` at ``version`` (compiled on first use)."""
    try:
        return _encoders[(cls, version)]
    except KeyError:
        unit = _Unit(version, _is_flexible(cls, version))
        name = unit.encoder(cls)
        unit.compile()
        fn: Encoder = unit.ns[name]
        _encoders[(cls, version)] = fn
        return fn
