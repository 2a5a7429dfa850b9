"""``millstream serve``'s own HTTP protocol (``server._fastpath``) against plain uvicorn, over raw
sockets: the same bytes for the same requests, and the connection edge cases the fast path
must get right by itself (pipelining, split bodies, disconnects, limits, HTTP/1.0, close,
malformed input, slow readers, idle timeouts).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import LiveServer, start_server, stop_server

from millstream.log import MemoryStore
from millstream.server.http import create_app
from millstream.server.http._fastpath import DirectHttpProtocol

MAX_BODY = 100_000
KEEP_ALIVE = 1.0
_DATE = re.compile(rb"\r\ndate: [^\r]*")


@dataclass
class Pair:
    direct: LiveServer
    asgi: LiveServer
    fast_answers: list[tuple[str, str]]  # (method, path) the direct server answered itself


def _port(live: LiveServer) -> int:
    return int(live.url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    started: list[tuple[LiveServer, threading.Thread]] = []
    counter: list[tuple[str, str]] = []
    try:
        for http in ("direct", "asgi"):
            store = MemoryStore()
            app = create_app(store, long_poll_timeout=0.3, max_body_size=MAX_BODY)
            if http == "direct":
                original = app.direct

                def counting(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                    handler = _original(*args, **kwargs)
                    if handler is not None:
                        counter.append((args[0], args[1]))
                    return handler

                app.direct = counting  # type: ignore[method-assign]
            started.append(start_server(app, store, http=http, timeout_keep_alive=KEEP_ALIVE))
        yield Pair(started[0][0], started[1][0], counter)
    finally:
        for live, thread in started:
            stop_server(live, thread)


def _connect(live: LiveServer, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", _port(live)))
    return sock


class Reader:
    """Reads HTTP/1.1 responses off a socket, one at a time, as raw bytes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def response(self, head: bool = False) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed mid-response: {self.buffer[:200]!r}")
        end = self.buffer.index(b"\r\n\r\n") + 4
        header = self.buffer[:end].lower()
        if header.startswith(b"http/1.1 100 "):
            self.buffer = self.buffer[end:]
            return header + self.response(head)
        status = int(header[9:12])
        length = 0
        if b"transfer-encoding: chunked" in header:
            while not self.buffer.endswith(b"0\r\n\r\n"):
                self._fill()
            length = len(self.buffer) - end
        else:
            found = re.search(rb"\r\ncontent-length: (\d+)", header)
            if found and not head and status not in (204, 304):
                length = int(found.group(1))
        while len(self.buffer) < end + length:
            if not self._fill():
                raise ConnectionError("closed mid-body")
        raw, self.buffer = self.buffer[: end + length], self.buffer[end + length :]
        return raw

    def closed(self) -> bool:
        """True once the server has closed the connection (and nothing more arrived)."""
        try:
            return not self._fill() and not self.buffer
        except ConnectionResetError:
            return True


def _request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"", **kw: Any
) -> bytes:
    version = kw.get("version", "1.1")
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if (body or method in ("POST", "PUT")) and "Transfer-Encoding" not in (headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _exchange(live: LiveServer, requests: list[bytes], heads: list[bool]) -> list[bytes]:
    with _connect(live) as sock:
        reader = Reader(sock)
        answers = []
        for raw, head in zip(requests, heads, strict=True):
            sock.sendall(raw)
            answers.append(_DATE.sub(b"", reader.response(head)))
        return answers


S = "/v1/stream/"
TEXT = {"Content-Type": "text/plain"}
JSON = {"Content-Type": "application/json"}
PRODUCER = {"Producer-Id": "p", "Producer-Epoch": "1", "Producer-Seq": "0", **TEXT}
#: (method, path, headers, body): run in order on both servers, answers compared byte by byte.
TABLE: list[tuple[str, str, dict[str, str], bytes]] = [
    ("PUT", S + "t", TEXT, b""),
    ("PUT", S + "j", JSON, b""),
    ("PUT", S + "c", TEXT, b""),
    ("PUT", S + "t", TEXT, b""),  # idempotent: 200
    ("PUT", S + "t", JSON, b""),  # another config: 409
    ("POST", S + "t", TEXT, b"hello"),
    ("POST", S + "t", {"Content-Type": "Text/Plain; Charset=utf-8"}, b"x" * 300),
    ("POST", S + "t", PRODUCER, b"p0"),
    ("POST", S + "t", PRODUCER, b"p0"),
    ("POST", S + "t", {**PRODUCER, "Producer-Epoch": "0"}, b"stale"),
    ("POST", S + "t", {**PRODUCER, "Producer-Seq": "5"}, b"gap"),
    ("POST", S + "t", {**PRODUCER, "Producer-Seq": "x"}, b"bad"),
    ("POST", S + "t", {**TEXT, "Stream-Seq": "a"}, b"s1"),
    ("POST", S + "t", {**TEXT, "Stream-Seq": "a"}, b"s2"),
    ("POST", S + "t", {}, b"no type"),
    ("POST", S + "t", TEXT, b""),
    ("POST", S + "t", JSON, b"[1]"),
    ("POST", S + "t", {"Content-Type": "not a type"}, b"x"),
    ("POST", S + "j", JSON, b'[{"a": 1}, 2]'),
    ("POST", S + "j", JSON, b"[]"),
    ("POST", S + "j", JSON, b"{bad"),
    ("POST", S + "nope", TEXT, b"x"),
    ("POST", S + "c", {**TEXT, "Stream-Closed": "true"}, b"last"),
    ("POST", S + "c", TEXT, b"after close"),
    ("POST", S + "c", {"Stream-Closed": "true"}, b""),
    ("POST", S + "t", {**TEXT, "Expect": "100-continue"}, b"continued"),
    ("POST", S + "t", {**TEXT, "Transfer-Encoding": "chunked"}, b"5\r\nchunk\r\n0\r\n\r\n"),
    ("POST", S + "t", TEXT, b"y" * (70 << 10)),  # above the direct limit: ASGI
    ("POST", S + "__ds/x", TEXT, b"x"),
    ("POST", S, TEXT, b"x"),
    ("GET", S + "t?offset=-1", {}, b""),
    ("GET", S + "t", {}, b""),
    ("GET", S + "%74?offset=-1", {}, b""),
    ("GET", S + "t?offset=now", {}, b""),
    ("GET", S + "t?offset=0000000000000001_0000000000000000", {}, b""),
    ("GET", S + "t?offset=bogus", {}, b""),
    ("GET", S + "t?offset=-1&offset=-1", {}, b""),
    ("GET", S + "t?offset=-1&cursor=abc", {}, b""),
    ("GET", S + "t?offset=-1", {"If-None-Match": "*"}, b""),
    ("GET", S + "j?offset=-1", {}, b""),
    ("GET", S + "j?offset=now", {}, b""),
    ("GET", S + "c?offset=-1", {}, b""),
    ("GET", S + "c?offset=now&live=long-poll", {}, b""),
    ("GET", S + "t?offset=now&live=long-poll", {}, b""),
    ("GET", S + "nope?offset=-1", {}, b""),
    ("GET", S + "t?offset=-1", {}, b"ignored body"),
    ("GET", "/health", {}, b""),
    ("GET", "/elsewhere", {}, b""),
    ("HEAD", S + "t", {}, b""),
    ("HEAD", S + "c", {}, b""),
    ("HEAD", S + "nope", {}, b""),
    ("OPTIONS", S + "t", {}, b""),
    ("PATCH", S + "t", {}, b""),
    ("DELETE", S + "j", {}, b""),
    ("GET", S + "j?offset=-1", {}, b""),
    ("POST", S + "j", JSON, b"[3]"),
    ("GET", S + "t?offset=-1", {"Connection": "close"}, b""),
]


FORK = "Stream-Forked-From"
ZERO = "0000000000000000_0000000000000000"
#: Creates: (path, headers, body, fast?, status). ``fast``: whether ``direct`` takes it (bad
#: headers and bodies it refuses go to the app); ``expect`` shows 100 before its 201.
CREATES: list[tuple[str, dict[str, str], bytes, bool, int]] = [
    ("plain", {}, b"", True, 201),
    ("ttl", {**TEXT, "Stream-TTL": "3600"}, b"", True, 201),
    ("ttl", {**TEXT, "Stream-TTL": "60"}, b"", True, 409),
    ("exp", {**TEXT, "Stream-Expires-At": "2099-01-01T00:00:00Z"}, b"", True, 201),
    ("exp", {**TEXT, "Stream-Expires-At": "2099-01-01T00:00:00Z"}, b"", True, 200),
    ("shut", {**TEXT, "Stream-Closed": "true"}, b"", True, 201),
    ("shut", {**TEXT, "Stream-Closed": "TRUE"}, b"", True, 200),
    ("body", TEXT, b"first", True, 201),
    ("jbody", JSON, b'[{"a": 1}, 2]', True, 201),
    ("jempty", JSON, b"[]", True, 201),
    ("jbad", JSON, b"{bad", True, 400),  # 400 from the body, found on the fast path
    ("shutbody", {**TEXT, "Stream-Closed": "true"}, b"only", True, 201),
    ("fork", {FORK: S + "n/body"}, b"", True, 201),
    ("fork", {FORK: S + "n/body"}, b"", True, 200),
    (
        "fork0",
        {FORK: "http://127.0.0.1" + S + "n/jbody", "Stream-Fork-Offset": ZERO},
        b"",
        True,
        201,
    ),
    ("forkj", {FORK: S + "n/jbody"}, b"[3]", True, 201),  # JSON mode inherited from the source
    ("forkt", {FORK: "n/body", **TEXT, "Stream-Fork-Sub-Offset": "0"}, b"more", True, 201),
    ("forkshut", {FORK: S + "n/shut"}, b"", True, 201),
    ("forkmiss", {FORK: S + "n/missing"}, b"", True, 404),
    (
        "forkfar",
        {FORK: S + "n/body", "Stream-Fork-Offset": "0000000000000099_0000000000000000"},
        b"",
        True,
        400,
    ),
    ("forkbad", {FORK: S + "n/body", "Stream-Fork-Offset": "bogus"}, b"", False, 400),
    ("forkempty", {FORK: S}, b"", False, 400),
    ("forksub", {FORK: S + "n/body", "Stream-Fork-Sub-Offset": "-1"}, b"", False, 400),
    ("orphan", {**TEXT, "Stream-Fork-Offset": ZERO}, b"", False, 400),
    ("badttl", {**TEXT, "Stream-TTL": "abc"}, b"", False, 400),
    ("badttl", {**TEXT, "Stream-TTL": "010"}, b"", False, 400),
    (
        "both",
        {**TEXT, "Stream-TTL": "1", "Stream-Expires-At": "2099-01-01T00:00:00Z"},
        b"",
        False,
        400,
    ),
    ("badexp", {**TEXT, "Stream-Expires-At": "tomorrow"}, b"", False, 400),
    ("badtype", {"Content-Type": "not a type"}, b"", False, 400),
    ("chunked", {**TEXT, "Transfer-Encoding": "chunked"}, b"3\r\nabc\r\n0\r\n\r\n", False, 201),
    ("expect", {**TEXT, "Expect": "100-continue"}, b"e", False, 100),
    ("large", TEXT, b"L" * (70 << 10), False, 201),
    ("__ds/x", TEXT, b"", False, 404),
    ("proxied", {**TEXT, "X-Forwarded-Proto": "https"}, b"", False, 201),  # Location: https
]


def test_creates_take_the_fast_path_with_byte_identical_answers(pair: Pair) -> None:
    table = [("PUT", S + "n/" + path, h, b) for path, h, b, _, _ in CREATES]
    table += [
        ("GET", S + "n/" + path + "?offset=-1", {}, b"") for path, _, _, fast, _ in CREATES if fast
    ]
    table += [("HEAD", S + "n/" + path, {}, b"") for path, _, _, _, _ in CREATES]
    requests = [_request(m, p.replace("n/__ds", "__ds"), h, b) for m, p, h, b in table]
    heads = [m == "HEAD" for m, _, _, _ in table]
    before = len(pair.fast_answers)
    direct = _exchange(pair.direct, requests, heads)
    asgi = _exchange(pair.asgi, requests, heads)
    for (method, path, _, _), one, other in zip(table, direct, asgi, strict=True):
        assert one == other, f"{method} {path}"
    fast_puts = [p for m, p in pair.fast_answers[before:] if m == "PUT"]
    assert fast_puts == ["/v1/stream/n/" + path for path, _, _, fast, _ in CREATES if fast]
    statuses = [int(answer[9:12]) for answer in direct[: len(CREATES)]]
    assert statuses == [status for _, _, _, _, status in CREATES]
    assert b"\r\nlocation: http://127.0.0.1/v1/stream/n/plain\r\n" in direct[0]


def test_direct_and_asgi_answers_are_byte_identical(pair: Pair) -> None:
    requests = [_request(m, p, h, b) for m, p, h, b in TABLE]
    heads = [m == "HEAD" for m, _, _, _ in TABLE]
    before = len(pair.fast_answers)
    direct = _exchange(pair.direct, requests, heads)
    asgi = _exchange(pair.asgi, requests, heads)
    for (method, path, _, _), one, other in zip(TABLE, direct, asgi, strict=True):
        assert one == other, f"{method} {path}"
    # The table really went through the fast path (most of it), and the ETag case matched.
    assert len(pair.fast_answers) - before >= 30
    assert any(answer.startswith(b"HTTP/1.1 304 ") for answer in direct)
    assert direct[-1].endswith(b"hellox" + b"x" * 299 + b"p0s1continuedchunk" + b"y" * (70 << 10))


def test_http_10_and_connection_close_end_the_connection(pair: Pair) -> None:
    for live in (pair.direct, pair.asgi):
        for raw in (
            _request("GET", S + "t?offset=-1", version="1.0"),
            _request("GET", S + "t?offset=-1", {"Connection": "close"}),
            _request("HEAD", S + "t", version="1.0"),
        ):
            with _connect(live) as sock:
                sock.sendall(raw)
                reader = Reader(sock)
                answer = reader.response(head=raw.startswith(b"HEAD"))
                assert answer.startswith(b"HTTP/1.1 200 ")
                assert b"\r\nconnection: close\r\n" in answer
                assert reader.closed()


def _responses(live: LiveServer, raw: bytes) -> list[bytes]:
    """Send ``raw`` at once; read until the server closes; split on status lines."""
    with _connect(live) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return [b"HTTP/1.1 " + part for part in _DATE.sub(b"", data).split(b"HTTP/1.1 ") if part]


def test_pipelined_requests_are_answered_in_order(pair: Pair) -> None:
    stream = S + "pipe"
    raw = b"".join(
        [
            _request("PUT", stream, TEXT),
            _request("POST", stream, TEXT, b"a"),
            _request("POST", stream, TEXT, b"b"),
            _request("OPTIONS", stream),
            _request("POST", stream, TEXT, b"c"),
            _request("GET", stream + "?offset=-1&live=long-poll"),  # waits nothing: data
            _request("HEAD", stream),
            _request("GET", stream + "?offset=-1", {"Connection": "close"}),
            _request("POST", stream, TEXT, b"never"),  # behind close: never run
            _request("PUT", S + "never", TEXT),  # nor this one
        ]
    )
    direct = _responses(pair.direct, raw)
    assert direct == _responses(pair.asgi, raw)
    for live in (pair.direct, pair.asgi):
        [head] = _exchange(live, [_request("HEAD", S + "never")], [True])
        assert head.startswith(b"HTTP/1.1 404 ")
    statuses = [answer[9:12] for answer in direct]
    assert statuses == [b"201", b"204", b"204", b"204", b"204", b"200", b"200", b"200"]
    assert direct[-1].endswith(b"\r\n\r\nabc")


def test_body_split_across_many_segments(pair: Pair) -> None:
    body = bytes(range(256)) * 8
    for live in (pair.direct, pair.asgi):
        with _connect(live) as sock:
            reader = Reader(sock)
            sock.sendall(_request("PUT", S + "split", {"Content-Type": "application/x-bin"}))
            assert reader.response().startswith(b"HTTP/1.1 201 ")
            raw = _request("POST", S + "split", {"Content-Type": "application/x-bin"}, body)
            for start in range(0, len(raw), 97):
                sock.sendall(raw[start : start + 97])
                time.sleep(0.001)
            assert reader.response().startswith(b"HTTP/1.1 204 ")
            sock.sendall(_request("GET", S + "split?offset=-1"))
            assert reader.response().endswith(b"\r\n\r\n" + body)


def test_client_gone_mid_body_stores_nothing(pair: Pair) -> None:
    for live in (pair.direct, pair.asgi):
        with _connect(live) as sock:
            reader = Reader(sock)
            sock.sendall(_request("PUT", S + "gone", TEXT))
            assert reader.response().startswith(b"HTTP/1.1 201 ")
            sock.sendall(_request("POST", S + "gone", TEXT, b"x" * 100)[:-60])
        time.sleep(0.1)
        [head] = _exchange(live, [_request("HEAD", S + "gone")], [True])
        assert b"stream-next-offset: 0000000000000000_0000000000000000" in head


def test_oversized_bodies_get_413_and_the_connection_survives(pair: Pair) -> None:
    big = b"z" * (MAX_BODY + 1)
    answers = []
    for live in (pair.direct, pair.asgi):
        with _connect(live) as sock:
            reader = Reader(sock)
            sock.sendall(_request("PUT", S + "big", TEXT))
            reader.response()
            sock.sendall(_request("POST", S + "big", TEXT, big))
            too_large = _DATE.sub(b"", reader.response())
            assert too_large.startswith(b"HTTP/1.1 413 ")
            assert b'"code":"payload_too_large"' in too_large
            sock.sendall(_request("POST", S + "big", TEXT, b"fits"))
            assert reader.response().startswith(b"HTTP/1.1 204 ")
            answers.append(too_large)
    assert answers[0] == answers[1]


MALFORMED = [
    b"NOT A REQUEST\r\n\r\n",
    b"GET /v1/stream/t HTTP/1.1\r\nBad Header\r\n\r\n",
    b"GET /v1/stream/t HTTP/9.9\r\n\r\n",
    b"POST /v1/stream/t HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"POST /v1/stream/t HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"GET /v1/stream/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/stream/t\x01 HTTP/1.1\r\n\r\n",
    b"GET /v1/stream/t?offset=%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/stream/t?offset=-1 HTTP/1.1\r\nContent-Type: \x7f\r\n\r\n",
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_requests_answer_like_uvicorn_without_tracebacks(
    pair: Pair, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        direct = _responses(pair.direct, raw + _request("GET", S + "t", {"Connection": "close"}))
        asgi = _responses(pair.asgi, raw + _request("GET", S + "t", {"Connection": "close"}))
    assert direct == asgi
    assert direct
    assert direct[0][9:10] == b"4"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _server_write_buffer(live: LiveServer) -> int:
    connections = list(live.server.server_state.connections)
    return max((c.transport.get_write_buffer_size() for c in connections), default=0)  # type: ignore[union-attr]


def test_slow_reader_is_flow_controlled(pair: Pair) -> None:
    """200 pipelined 60 KB reads the client does not read: the server must not queue them."""
    live = pair.direct
    body = b"r" * 60_000
    _exchange(live, [_request("PUT", S + "slow", TEXT, body)], [False])
    count = 200
    with _connect(live, rcvbuf=8192) as sock:
        sock.sendall(b"".join(_request("GET", S + "slow?offset=-1") for _ in range(count)))
        time.sleep(0.5)
        assert _server_write_buffer(live) < 1 << 20
        reader = Reader(sock)
        for _ in range(count):
            assert reader.response().endswith(body)


def test_idle_connections_close_after_the_keep_alive_timeout(pair: Pair) -> None:
    for live in (pair.direct, pair.asgi):
        with _connect(live) as sock:
            reader = Reader(sock)
            sock.sendall(_request("HEAD", S + "t"))
            reader.response(head=True)
            started = time.monotonic()
            assert reader.closed()
            waited = time.monotonic() - started
            assert KEEP_ALIVE * 0.9 <= waited <= KEEP_ALIVE + 1.0
        with _connect(live) as sock:  # kept busy: stays open past the timeout
            reader = Reader(sock)
            for _ in range(4):
                sock.sendall(_request("HEAD", S + "t"))
                reader.response(head=True)
                time.sleep(KEEP_ALIVE / 2)


def test_direct_protocol_is_what_serve_uses() -> None:
    from millstream.server.http import HttpDoor

    assert "direct_protocol" in HttpDoor.__init__.__code__.co_names
    assert issubclass(DirectHttpProtocol, object)
