"""The sans-IO SSE parser: one table of cases, each parsed whole and one byte at a time."""

from __future__ import annotations

import pytest

from millstream.client import SSEEvent, SSEParser, SSEProtocolError

CASES = [
    (b"event: data\ndata: [1]\n\n", [SSEEvent("data", "[1]")]),
    (b"event:data\ndata:[1]\n\n", [SSEEvent("data", "[1]")]),
    (b"event: data\r\ndata: a\r\ndata: b\r\n\r\n", [SSEEvent("data", "a\nb")]),
    (b"event: data\rdata: a\r\r", [SSEEvent("data", "a")]),
    (b": comment\ndata: x\n\n", [SSEEvent("message", "x")]),
    (b"data:  two spaces\n\n", [SSEEvent("message", " two spaces")]),
    (b"event: control\n\n", []),  # no data: nothing dispatched
    (b"data: unfinished", []),
    (
        b'event: data\ndata: [\ndata: {"k":"v"}\ndata: ]\n\nevent: control\n'
        b'data: {"streamNextOffset":"1"}\n\n',
        [SSEEvent("data", '[\n{"k":"v"}\n]'), SSEEvent("control", '{"streamNextOffset":"1"}')],
    ),
    (b"id: 7\ndata: x\n\n", [SSEEvent("message", "x", "7")]),
    ("data: é€\n\n".encode(), [SSEEvent("message", "é€")]),
]


@pytest.mark.parametrize(("wire", "events"), CASES)
def test_whole(wire: bytes, events: list[SSEEvent]) -> None:
    parser = SSEParser()
    assert parser.feed(wire) + parser.flush() == events


@pytest.mark.parametrize(("wire", "events"), CASES)
def test_byte_at_a_time(wire: bytes, events: list[SSEEvent]) -> None:
    parser = SSEParser()
    got: list[SSEEvent] = []
    for i in range(len(wire)):
        got += parser.feed(wire[i : i + 1])
    assert got + parser.flush() == events


def test_oversized_event_is_an_error() -> None:
    parser = SSEParser(max_event_bytes=16)
    with pytest.raises(SSEProtocolError):
        parser.feed(b"data: " + b"x" * 32 + b"\n")


def test_bad_utf8_is_an_error() -> None:
    with pytest.raises(SSEProtocolError):
        SSEParser().feed(b"data: \xff\n\n")
