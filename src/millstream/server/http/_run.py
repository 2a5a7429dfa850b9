"""The HTTP door on a socket: uvicorn (httptools, or ``_fastpath``'s protocol) inside the
caller's event loop, started and stopped by the node that owns the store.

The node handles signals and the store; this only listens, serves and drains. Stopping closes
the listener, asks every connection to finish its response, waits for in-flight requests (up to
``graceful_timeout``, then cancels them) and returns. Live readers end when the node closes the
store's notifier, which it does before stopping the doors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn

from .._tls import Tls
from ._app import DurableStreamsApp

__all__ = ["GRACEFUL_SHUTDOWN_SECONDS", "TESTED_UVICORN", "HttpDoor", "fast_path_unavailable"]

GRACEFUL_SHUTDOWN_SECONDS = 10.0  # after this, requests still running are cancelled
#: Idle keep-alive connections are closed after this long. Well above the idle timeouts of
#: clients (Node's undici: 4 s, httpx: 5 s), so a client never sends a request on a connection
#: the server is closing at the same moment (uvicorn's 5 s lost that race under load; a POST is
#: then not retried and fails with "other side closed"). An idle connection costs a few KiB.
KEEP_ALIVE_SECONDS = 30


#: uvicorn series the fast path (``_fastpath``, which subclasses uvicorn's httptools protocol
#: and uses its internals) was tested with (``tests/http/test_fastpath.py``). With any other
#: version installed, ``serve`` answers everything through uvicorn's own protocol and says so.
TESTED_UVICORN = ("0.54",)


def fast_path_unavailable() -> str | None:
    """Why the fast path cannot run with the installed uvicorn, or ``None`` when it can."""
    version = uvicorn.__version__
    if ".".join(version.split(".")[:2]) not in TESTED_UVICORN:
        tested = ", ".join(f"{v}.x" for v in TESTED_UVICORN)
        return f"uvicorn {version} is not one it was tested with ({tested})"
    try:
        import httptools  # noqa: F401

        from . import _fastpath  # noqa: F401
    except ImportError as exc:
        return f"it cannot load: {exc}"
    return None


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the node owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpDoor:
    """Serves ``app`` on ``host:port`` (``0``: any free port, see ``url``)."""

    def __init__(
        self,
        app: DurableStreamsApp,
        *,
        host: str = "127.0.0.1",
        port: int = 4437,
        fast_path: bool = True,
        graceful_timeout: float = GRACEFUL_SHUTDOWN_SECONDS,
        tls: Tls | None = None,
    ) -> None:
        self.app = app
        self.tls = tls
        #: why the fast path is off though asked for (shown on the startup line), or None
        self.note: str | None = None
        http: Any = "auto"
        if fast_path:
            self.note = fast_path_unavailable()
            if self.note is None:
                from ._fastpath import direct_protocol

                http = direct_protocol(app)
            else:
                self.note = f"HTTP fast path off: {self.note}"
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=http,
            lifespan="off",  # the node starts and closes what the app serves
            access_log=False,
            log_config=None,  # the process's logging (``node.configure_logging``) applies
            log_level="warning",
            timeout_graceful_shutdown=int(graceful_timeout),
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            server_header=False,
            backlog=4096,
        )
        self._server = _Server(config)
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen; raises ``OSError`` when the address cannot be bound."""
        server = self._server
        config = server.config
        if not config.loaded:
            config.load()
            if self.tls is not None:
                config.http_protocol_class = self.tls.wrap(config.http_protocol_class)  # type: ignore[assignment]
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup()
        except SystemExit as exc:  # uvicorn exits on a bind error (it logged the reason)
            raise OSError(f"cannot listen on {config.host}:{config.port}") from exc
        # uvicorn's tick renews the Date header once a second and watches should_exit.
        self._ticker = asyncio.ensure_future(server.main_loop())

    @property
    def port(self) -> int:
        """The port actually bound."""
        for listener in self._server.servers:
            for sock in listener.sockets or ():
                return int(sock.getsockname()[1])
        return self._server.config.port

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` with the port actually bound."""
        host = self._server.config.host
        if ":" in host:
            host = f"[{host}]"
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://{host}:{self.port}"

    def force_exit(self) -> None:
        """Stop waiting for in-flight requests (a second signal)."""
        self._server.force_exit = True

    async def aclose(self) -> None:
        """Stop listening, let in-flight requests finish, close every connection."""
        server = self._server
        if self._ticker is None:
            return
        server.should_exit = True
        await self._ticker
        self._ticker = None
        if self.tls is not None:
            self.tls.close()
        await server.shutdown()
