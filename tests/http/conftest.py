"""A real uvicorn server in a background thread, on 127.0.0.1 port 0, for the HTTP tests.

httpx's ASGITransport buffers whole responses, so live reads (long-poll, SSE) need a socket.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from millstream.log import MemoryStore
from millstream.server.http import create_app
from millstream.server.http._fastpath import direct_protocol

# tests/servers.py (real server processes) lives one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@dataclass
class LiveServer:
    url: str
    store: MemoryStore
    server: uvicorn.Server
    loop: asyncio.AbstractEventLoop

    def stream_url(self, path: str) -> str:
        return f"{self.url}/v1/stream/{path}"


def start_server(
    app: Any, store: MemoryStore, *, http: Any = "auto", **options: Any
) -> tuple[LiveServer, threading.Thread]:
    """``http="direct"`` serves through ``millstream serve``'s own protocol (the fast path),
    ``http="asgi"`` through uvicorn's httptools protocol (what ``--no-http-fast-path`` runs)."""
    if http == "direct":
        http = direct_protocol(app)
    elif http == "asgi":
        http = "httptools"
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        loop="asyncio",
        lifespan="on",
        log_level="warning",
        access_log=False,  # as ``millstream serve``; with an access log the fast path stands down
        http=http,
        **options,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    holder: dict[str, asyncio.AbstractEventLoop] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        loop.run_until_complete(server.serve())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    return LiveServer(f"http://127.0.0.1:{port}", store, server, holder["loop"]), thread


def stop_server(live: LiveServer, thread: threading.Thread) -> None:
    live.loop.call_soon_threadsafe(live.store.notifier.close)
    live.server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module", params=["asgi", "direct"])
def live(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """Every test using it runs twice: plain uvicorn, and ``millstream serve``'s fast path."""
    store = MemoryStore()
    app = create_app(store, long_poll_timeout=0.5, max_body_size=1 << 20, manage_store=True)
    server, thread = start_server(app, store, http=request.param)
    try:
        yield server
    finally:
        stop_server(server, thread)


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=10) as http:
        yield http
