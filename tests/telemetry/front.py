"""A Kafka front for the SSL and SASL tests: TLS termination and SASL/PLAIN authentication in
front of a plain broker (Tansu has neither working here), so the SDK's translated settings are
checked by the real clients performing a real TLS handshake and a real SASL exchange.

Everything except SaslHandshake (17) and SaslAuthenticate (36) is forwarded byte for byte; those
two are answered here (SaslHandshake v0-1, SaslAuthenticate v0-2). A connection that fails
authentication is answered with SASL_AUTHENTICATION_FAILED (58) and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
SASL_AUTHENTICATION_FAILED = 58


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_uvarint(data: bytes, position: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


class Front:
    """Listens on ``port``; ``users`` maps PLAIN usernames to passwords (None: no SASL)."""

    def __init__(
        self,
        upstream_port: int,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.port = port
        self.tls = tls
        self.users = users
        self.authenticated: list[str] = []
        self.refused: list[str] = []
        self.mechanisms_asked: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._client, "127.0.0.1", self.port, ssl=self.tls
        )

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        pump = asyncio.create_task(self._pump(up_reader, writer))
        authenticated = self.users is None
        try:
            while True:
                size = struct.unpack(">i", await reader.readexactly(4))[0]
                frame = await reader.readexactly(size)
                api_key, version, correlation = struct.unpack_from(">hhi", frame)
                if api_key == SASL_HANDSHAKE:
                    writer.write(self._handshake(frame, version, correlation))
                elif api_key == SASL_AUTHENTICATE:
                    answer, ok = self._authenticate(frame, version, correlation)
                    writer.write(answer)
                    if not ok:
                        await writer.drain()
                        break
                    authenticated = True
                elif not authenticated and api_key != 18:  # ApiVersions comes first
                    break
                else:
                    up_writer.write(struct.pack(">i", size) + frame)
                    await up_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            pump.cancel()
            for w in (writer, up_writer):
                w.close()
            with contextlib.suppress(Exception):
                await pump

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    @staticmethod
    def _body_start(frame: bytes, flexible: bool) -> int:
        (client_id_length,) = struct.unpack_from(">h", frame, 8)
        position = 10 + max(client_id_length, 0)
        if flexible:
            tags, position = _read_uvarint(frame, position)
            assert tags == 0
        return position

    def _handshake(self, frame: bytes, version: int, correlation: int) -> bytes:
        position = self._body_start(frame, flexible=False)
        (length,) = struct.unpack_from(">h", frame, position)
        mechanism = frame[position + 2 : position + 2 + length].decode()
        self.mechanisms_asked.append(mechanism)
        error = 0 if mechanism == "PLAIN" else UNSUPPORTED_SASL_MECHANISM
        body = struct.pack(">ihi", correlation, error, 1) + struct.pack(">h", 5) + b"PLAIN"
        return struct.pack(">i", len(body)) + body

    def _authenticate(self, frame: bytes, version: int, correlation: int) -> tuple[bytes, bool]:
        flexible = version >= 2
        position = self._body_start(frame, flexible)
        if flexible:
            length, position = _read_uvarint(frame, position)
            length -= 1
        else:
            (length,) = struct.unpack_from(">i", frame, position)
            position += 4
        token = frame[position : position + length]
        _, user, password = token.split(b"\0", 2)
        name = user.decode()
        ok = self.users is not None and self.users.get(name) == password.decode()
        (self.authenticated if ok else self.refused).append(name)
        error = 0 if ok else SASL_AUTHENTICATION_FAILED
        message = None if ok else b"Authentication failed: invalid credentials"
        if flexible:
            body = struct.pack(">i", correlation) + _uvarint(0) + struct.pack(">h", error)
            body += _uvarint(0) if message is None else _uvarint(len(message) + 1) + message
            body += _uvarint(1) + struct.pack(">q", 0) + _uvarint(0)
        else:
            body = struct.pack(">ih", correlation, error)
            body += struct.pack(">h", -1) if message is None else struct.pack(">h", len(message))
            body += b"" if message is None else message
            body += struct.pack(">i", 0)
            if version >= 1:
                body += struct.pack(">q", 0)
        return struct.pack(">i", len(body)) + body, ok


@contextmanager
def front(
    upstream_port: int,
    port: int,
    *,
    tls: ssl.SSLContext | None = None,
    users: dict[str, str] | None = None,
) -> Iterator[Front]:
    running = Front(upstream_port, port, tls=tls, users=users)
    running.start()
    try:
        yield running
    finally:
        running.stop()
