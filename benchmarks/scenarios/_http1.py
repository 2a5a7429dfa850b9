"""A lean HTTP/1.1 keep-alive client for the throughput scenarios, about 4x cheaper than aiohttp.

At 10k+ requests per second on a 2-core machine a general client spends as much CPU as the
server under test; this one does only what the benchmark needs: one request at a time per
connection, bodies framed by Content-Length or chunked encoding (RFC 9112 section 6-7), no
redirects, no compression. Live readers (SSE, long-poll) keep using aiohttp.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

__all__ = ["Connection", "HTTPError", "Response"]


class HTTPError(Exception):
    """The connection broke or the server sent something this client cannot frame."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


class _Protocol(asyncio.Protocol):
    """Parses one response at a time out of the bytes received; the head is parsed once."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.head_only = False
        self._head: tuple[int, dict[str, str], int] | None = None  # status, headers, body start
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HTTPError(f"connection lost: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            try:
                response = self._parse()
            except (ValueError, IndexError) as exc:
                self.waiter.set_exception(HTTPError(f"unparseable response: {exc!r}"))
                return
            if response is not None:
                self.waiter.set_result(response)

    def _parse(self) -> Response | None:
        if self._head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return None
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self._head = (int(lines[0].split(" ", 2)[1]), headers, end + 4)
        status, headers, start = self._head
        if self.head_only or status in (204, 304) or status < 200:
            body, consumed = b"", start
        elif "content-length" in headers:
            consumed = start + int(headers["content-length"])
            if len(self.buffer) < consumed:
                return None
            body = bytes(self.buffer[start:consumed])
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            found = self._chunked(start)
            if found is None:
                return None
            body, consumed = found
        else:
            raise ValueError("response without Content-Length or chunked framing")
        del self.buffer[:consumed]
        self._head = None
        return Response(status, headers, body)

    def _chunked(self, position: int) -> tuple[bytes, int] | None:
        parts: list[bytes] = []
        buffer = self.buffer
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(buffer[position:line_end]).split(b";", 1)[0], 16)
            data_start = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n\r\n", line_end)  # no trailers expected
                if trailer_end < 0:
                    return None
                return b"".join(parts), trailer_end + 4
            if len(buffer) < data_start + size + 2:
                return None
            parts.append(bytes(buffer[data_start : data_start + size]))
            position = data_start + size + 2


class Connection:
    """One keep-alive connection to ``base_url``'s host; reconnects after the server closes.
    An ``https`` URL needs ``ssl_context`` (the server's CA)."""

    def __init__(self, base_url: str, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        tls = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if tls else 80)
        self.prefix = parts.path.rstrip("/")
        self._ssl = (ssl_context or ssl.create_default_context()) if tls else None
        self._host_header = f"Host: {parts.netloc}\r\n"
        self._protocol: _Protocol | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Protocol, self.host, self.port, ssl=self._ssl)
        return protocol

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Response:
        """Send one request for ``prefix + path`` and return the whole response."""
        if self._protocol is None or self._protocol.closed:
            self._protocol = await self._connect()
        protocol = self._protocol
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"{method} {self.prefix}{path} HTTP/1.1\r\n{self._host_header}"
            f"Content-Length: {len(body)}\r\n{extra}\r\n"
        ).encode("latin-1")
        protocol.waiter = asyncio.get_running_loop().create_future()
        protocol.head_only = method == "HEAD"
        assert protocol.transport is not None
        if len(body) > 65536:
            protocol.transport.write(head)
            protocol.transport.write(body)
        else:
            protocol.transport.write(head + body)
        try:
            response = await protocol.waiter
        finally:
            protocol.waiter = None
        if response.headers.get("connection", "").lower() == "close":
            protocol.closed = True
            protocol.transport.close()
        return response

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
