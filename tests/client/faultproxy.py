"""A real HTTP/1.1 fault-injection proxy for client tests: an asyncio server on 127.0.0.1 port 0,
in its own thread, in front of a real Durable Streams server.

Each request is read whole (head + Content-Length body), matched against the queued ``Fault``
rules, then answered by the proxy (``status``), forwarded and cut after ``cut_after`` response
bytes, forwarded with the response dropped (``drop_response``: the server applied it, the
client never hears), or forwarded after ``delay`` seconds. Requests go upstream with
``Connection: close`` so a response simply ends at EOF; the proxy does not parse responses.
``kill_connections()`` cuts every open connection (a crashed server, seen from the client), and
``upstream`` may be changed at any time (a restarted server on a new port).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = ["Fault", "FaultProxy", "running_proxy"]


@dataclass
class Fault:
    """One rule: applies to requests ``match`` accepts (method, target), ``times`` times."""

    match: Callable[[str, str], bool] = lambda method, target: True
    times: int = 1
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None
    drop_response: bool = False
    delay: float = 0.0
    hits: int = 0


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream  # "http://127.0.0.1:PORT"
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)
        assert self._server is not None
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def kill_connections(self) -> None:
        """Abort every open client and upstream connection (like a crashed server)."""

        def abort() -> None:
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(abort)

    def close(self) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    # --- inside the proxy thread ---------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)

        self._loop.run_until_complete(start())
        self._started.set()
        self._loop.run_forever()

    def _pick(self, method: str, target: str) -> Fault | None:
        with self._lock:
            self.requests.append((method, target))
            for fault in self.faults:
                if fault.times > 0 and fault.match(method, target):
                    fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                length = 0
                kept = [lines[0]]
                for line in lines[1:]:
                    if not line:
                        continue
                    name = line.split(":", 1)[0].strip().lower()
                    if name == "content-length":
                        length = int(line.split(":", 1)[1])
                    if name in ("connection", "keep-alive"):
                        continue
                    kept.append(line)
                body = await reader.readexactly(length) if length else b""
                fault = self._pick(method, target)
                if fault and fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault and fault.status is not None:
                    extra = "".join(f"{k}: {v}\r\n" for k, v in fault.headers.items())
                    payload = b'{"error":"injected"}'
                    writer.write(
                        f"HTTP/1.1 {fault.status} Injected\r\n{extra}"
                        f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
                        "\r\n".encode("latin-1")
                        + payload
                    )
                    await writer.drain()
                    continue
                request = ("\r\n".join(kept) + "\r\nConnection: close\r\n\r\n").encode("latin-1")
                await self._forward(request + body, writer, fault)
                return  # upstream closed: close the client side too (its response ended)
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _forward(
        self, request: bytes, writer: asyncio.StreamWriter, fault: Fault | None
    ) -> None:
        host, port = self.upstream.rsplit("/", 1)[-1].split(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.transport.abort()  # the upstream is down: the client sees a reset
            return
        self._writers.add(up_writer)
        try:
            up_writer.write(request)
            await up_writer.drain()
            if fault and fault.drop_response:
                await up_reader.read()  # let the server finish, then hang up on the client
                writer.transport.abort()
                return
            sent = 0
            while data := await up_reader.read(65536):
                if fault and fault.cut_after is not None and sent + len(data) >= fault.cut_after:
                    writer.write(data[: max(fault.cut_after - sent, 0)])
                    await writer.drain()
                    writer.transport.abort()
                    return
                sent += len(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            writer.transport.abort()
        finally:
            self._writers.discard(up_writer)
            up_writer.transport.abort()


@contextlib.contextmanager
def running_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
