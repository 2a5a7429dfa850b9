"""Running the HTTP app under uvicorn (uvloop + httptools) with a graceful SIGTERM.

With ``http_fast_path`` (the default) the protocol is ``_fastpath``'s, which answers appends,
catch-up GETs and HEADs without ASGI and passes everything else to the app.

uvicorn waits for open connections before it sends the lifespan shutdown, so live readers would
keep it waiting until their timeouts. On SIGTERM/SIGINT we therefore wake them at once: the
store's notifier closes, long-polls answer 204 and SSE streams send a last control event and end.
In-flight appends finish normally; then the lifespan closes the store, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from types import FrameType

import uvicorn

from millstream.log import Store

from ._fastpath import direct_protocol
from .http import DEFAULT_MAX_BODY_SIZE, create_app

__all__ = ["GRACEFUL_SHUTDOWN_SECONDS", "ServeOptions", "serve"]

GRACEFUL_SHUTDOWN_SECONDS = 10  # after this, uvicorn cancels whatever still runs
#: Idle keep-alive connections are closed after this long. Well above the idle timeouts of
#: clients (Node's undici: 4 s, httpx: 5 s), so a client never sends a request on a connection
#: the server is closing at the same moment (uvicorn's 5 s lost that race under load; a POST is
#: then not retried and fails with "other side closed"). An idle connection costs a few KiB.
KEEP_ALIVE_SECONDS = 30


class _Server(uvicorn.Server):
    """uvicorn's server that wakes live readers on exit and announces its real address."""

    def __init__(self, config: uvicorn.Config, store: Store, announce: bool) -> None:
        super().__init__(config)
        self._store = store
        self._announce = announce
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.started and self._announce:
            print(
                f"millstream listening on {self.url()} (store: {self._store.description})",
                flush=True,
            )

    def url(self) -> str:
        """``http://HOST:PORT`` with the port actually bound (``--port 0`` picks any)."""
        host = self.config.host
        port = self.config.port
        for server in getattr(self, "servers", []):
            for sock in server.sockets or ():
                port = sock.getsockname()[1]
                break
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not recorded in _captured_signals on purpose: uvicorn would re-raise the signal after
        # shutting down, and the default SIGTERM action would turn a clean exit into -15.
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._store.notifier.close)


class ServeOptions:
    """Everything ``millstream serve`` passes to ``serve``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 4437,
        long_poll_timeout: float = 30.0,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        subscriptions: bool = True,
        sse_reconnect_seconds: float = 60.0,
        http_fast_path: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.long_poll_timeout = long_poll_timeout
        self.max_body_size = max_body_size
        self.subscriptions = subscriptions
        self.sse_reconnect_seconds = sse_reconnect_seconds
        self.http_fast_path = http_fast_path


def serve(store: Store, options: ServeOptions, *, announce: bool = True) -> None:
    """Serve ``store`` over HTTP until SIGTERM/SIGINT; the app starts and closes the store."""
    app = create_app(
        store,
        long_poll_timeout=options.long_poll_timeout,
        max_body_size=options.max_body_size,
        sse_reconnect_seconds=options.sse_reconnect_seconds,
        subscriptions=options.subscriptions,
        manage_store=True,
    )
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        loop="uvloop",
        http=direct_protocol(app) if options.http_fast_path else "httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        server_header=False,
        backlog=4096,
    )
    server = _Server(config, store, announce)
    server.run()
    if not server.started:
        sys.exit(1)
