"""Helpers for the dualmode suite: a real uvicorn serving an app on 127.0.0.1 port 0, in the
test's own event loop (httpx's ASGITransport buffers whole bodies, so streams need a socket)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn

from millstream.client import SSEEvent, SSEParser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@asynccontextmanager
async def serving(app: Any, **options: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn (httptools, as in production) until the block ends."""
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "log_level": "warning",
        "lifespan": "off",
        "access_log": False,
        "http": "httptools",
        "timeout_graceful_shutdown": 2,
        **options,
    }
    config = uvicorn.Config(app, **settings)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def parse_sse(body: bytes) -> list[SSEEvent]:
    """Events of a whole SSE body, by millstream's own parser."""
    parser = SSEParser()
    return [*parser.feed(body), *parser.flush()]


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` is true (a condition, never a fixed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met in {timeout} s: {predicate}")
        await asyncio.sleep(0.005)


class RawClient:
    """A bare HTTP/1.1 connection: send one request, read as much as we choose, close at will.
    (An HTTP library would read ahead; these tests need to stop reading or hang up exactly.)"""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received = b""

    @classmethod
    async def get(cls, url: str, path: str, headers: dict[str, str] | None = None) -> RawClient:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        return cls(reader, writer)

    async def read_until(self, marker: bytes, timeout: float = 10.0) -> bytes:
        async with asyncio.timeout(timeout):
            while marker not in self.received:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise AssertionError(f"connection closed before {marker!r}: {self.received!r}")
                self.received += chunk
        return self.received

    async def read_to_eof(self, timeout: float = 10.0) -> bytes:
        async with asyncio.timeout(timeout):
            while chunk := await self.reader.read(65536):
                self.received += chunk
        return self.received

    def close(self) -> None:
        self.writer.close()
