"""``millstream serve``'s HTTP/1.1 protocol: uvicorn's httptools protocol, answering the hottest
requests itself.

Creates, appends, catch-up GETs and HEADs of a stream (what ``DurableStreamsApp.direct``
accepts) skip ASGI: no scope dict, no ``receive``/``send`` messages, no ``asyncio.Event``, no
``Task`` when the handler finishes without waiting, and the whole response goes out in one
``write()``.
Everything else (long-poll, SSE, DELETE, OPTIONS, subscriptions, ``/health``, chunked or
large bodies, ``Expect``, upgrades, a request pipelined behind one still running, a paused
writer, ``limit_concurrency``) takes uvicorn's own path to the app, unchanged. With an access
log configured, direct answers log the same line uvicorn would. Answers are the app's own ``Answer``
values, serialised the way uvicorn serialises them (same header order, ``Date``,
``connection: close``), so the bytes on the wire are the same either way.

Keep-alive timeouts are a periodic sweep of idle connections instead of a timer per response.
"""

from __future__ import annotations

import asyncio
import logging
import time
import types
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any, ClassVar, cast
from urllib.parse import unquote

import httptools
from uvicorn.protocols.http.httptools_impl import (
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
)
from uvicorn.protocols.utils import get_path_with_query_string

from ._app import DurableStreamsApp

if TYPE_CHECKING:
    from uvicorn._types import HTTPScope
from ._app import DirectHandler, log_access
from ._gate import request_id
from ._responses import COMMON_HEADERS, Answer
from ._stats import RouteStats

__all__ = ["direct_protocol"]

logger = logging.getLogger("millstream.server.http")

_DIRECT_METHODS = {b"GET": "GET", b"POST": "POST", b"HEAD": "HEAD", b"PUT": "PUT"}
_ROUTES = {"GET": "read", "POST": "append", "HEAD": "head", "PUT": "create"}
_clock = time.perf_counter
_COMMON_BLOCK = b"".join(name + b": " + value + b"\r\n" for name, value in COMMON_HEADERS)
_CLOSE = b"connection: close\r\n"


class _NoEvent:
    """``RequestResponseCycle.message_event`` stand-in: nothing waits on a direct request."""

    __slots__ = ()

    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()


class _Direct:
    """A request the protocol answers itself. It sits in ``self.cycle`` where uvicorn keeps
    its ``RequestResponseCycle``, so pipelining, shutdown and connection loss (which read
    ``response_complete``, ``keep_alive``, ``disconnected``, ``message_event``) work as is."""

    __slots__ = (
        "access",
        "append",
        "body",
        "disconnected",
        "handler",
        "head",
        "keep_alive",
        "request_id",
        "response_complete",
        "size",
        "started",
        "stats",
        "target",
    )

    message_event: ClassVar[_NoEvent] = _NO_EVENT

    def __init__(
        self,
        handler: DirectHandler | None,
        keep_alive: bool,
        method: str | None = None,
        stats: RouteStats | None = None,
    ) -> None:
        self.handler = handler  # None: ignore this request (the connection is closing)
        self.keep_alive = keep_alive
        self.head = method == "HEAD"
        self.append = method == "POST"
        self.stats = stats
        self.body: list[bytes] = []
        self.size = 0  # appends (POST): the body's length
        self.started = _clock()
        self.response_complete = False
        self.disconnected = False
        self.access: tuple[str, str, str] | None = None  # method, path, query (access log on)
        self.request_id = ""  # with --access-log
        self.target: tuple[str, str] | None = None  # method, request target (--access-log)


@types.coroutine
def _resume(
    coro: Coroutine[Any, Any, Answer | None], yielded: Any
) -> Generator[Any, Any, Answer | None]:
    """Finish a coroutine that was started by hand and suspended on ``yielded``: hand that to
    the running Task, then relay sends and throws (``yield from`` for a started coroutine)."""
    while True:
        try:
            value = yield yielded
        except BaseException as exc:  # cancellation: the coroutine decides
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
        else:
            try:
                yielded = coro.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]


class _Sweeper:
    """Closes connections idle longer than the keep-alive timeout, checked periodically."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: DirectHttpProtocol) -> None:
        self._loop = loop
        self._connections = protocol.connections
        self._timeout = float(protocol.timeout_keep_alive)
        self._interval = min(1.0, max(self._timeout, 0.01) / 4)
        self._handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        if self._handle is None:
            self._handle = self._loop.call_later(self._interval, self._sweep)

    def _sweep(self) -> None:
        self._handle = None
        now = self._loop.time()
        waiting = False
        for connection in list(self._connections):
            if not isinstance(connection, DirectHttpProtocol):
                continue
            since = connection.idle_since
            if since is None:
                continue
            if now - since >= self._timeout:
                connection.idle_since = None
                if not connection.transport.is_closing():
                    connection.transport.close()
            else:
                waiting = True
        if waiting:
            self.arm()


class DirectHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the direct route; see the module docstring."""

    direct_app: ClassVar[DurableStreamsApp]
    sweeper: ClassVar[_Sweeper | None] = None
    idle_since: float | None = None
    _direct: _Direct | None = None
    _path = ""  # the request target as the access log shows it (only with an access log)

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        # The scope dict is built only if the request goes to the app (``_to_app``).
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._direct = None

    def on_headers_complete(self) -> None:
        parser = self.parser
        keep_alive = parser.get_http_version() != "1.0" and parser.should_keep_alive()
        if self.transport.is_closing():
            # Pipelined behind ``Connection: close``: uvicorn never runs such a request either.
            self._direct = _Direct(None, keep_alive)  # swallows its body, answers nothing
            return
        method = _DIRECT_METHODS.get(parser.get_method())
        cycle = self.cycle
        if (
            method is None
            or (cycle is not None and not cycle.response_complete)
            or self.flow.write_paused
            or self.limit_concurrency is not None
            or parser.should_upgrade()
        ):
            self._to_app()
            return
        handler = self._handler(method)
        if handler is None:
            self._to_app()
            return
        app = self.direct_app
        stats = app.stats.route(_ROUTES[method])
        direct = self._direct = _Direct(handler, keep_alive, method, stats)
        self.cycle = direct  # type: ignore[assignment]
        if app.access_log:
            direct.request_id = request_id(dict(self.headers))
            direct.target = (method, self.url.decode("latin-1"))
        if self.access_log:
            direct.access = (method, self._path, parser.get_http_version())

    def _handler(self, method: str) -> DirectHandler | None:
        try:
            parsed = httptools.parse_url(self.url)
            path = parsed.path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return None
        if "%" in path:
            path = unquote(path)
        query = parsed.query or b""
        if self.access_log:
            scope = {"path": self.root_path + path, "query_string": query}
            self._path = get_path_with_query_string(cast("HTTPScope", scope))
        return self.direct_app.direct(
            method,
            path,
            query,
            dict(self.headers),
            scheme=self.scheme or "http",
            root_path=self.root_path,
            server=self.server,
            client=self.client[0] if self.client else None,
        )

    def _to_app(self) -> None:
        """Hand the request to uvicorn's ASGI machinery, as if it had parsed it alone."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect
        self.headers = headers
        self.scope["headers"] = headers
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        direct = self._direct
        if direct is None:
            super().on_body(body)
        else:
            direct.body.append(body)

    def on_message_complete(self) -> None:
        direct = self._direct
        if direct is None:
            super().on_message_complete()
            return
        self._direct = None
        handler = direct.handler
        if handler is None:
            return
        chunks = direct.body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if direct.append:
            direct.size = len(body)
        coro = handler(body)
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            self._respond(direct, stop.value)
            return
        # The handler waits (a disk write, a lock): finish it in a Task, as uvicorn would.
        task = self.loop.create_task(self._finish(direct, coro, yielded))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _finish(
        self, direct: _Direct, coro: Coroutine[Any, Any, Answer | None], yielded: Any
    ) -> None:
        self._respond(direct, await _resume(coro, yielded))

    # -- responses ---------------------------------------------------------------------------

    def _respond(self, direct: _Direct, reply: Answer | None) -> None:
        direct.response_complete = True
        transport = self.transport
        if direct.disconnected or transport.is_closing():
            return
        if reply is None:
            transport.close()
            return
        elapsed = _clock() - direct.started
        stats = direct.stats
        if stats is not None:
            stats.done(reply[0], elapsed)
            if direct.size:
                self.direct_app.stats.appended(reply[0], direct.size)
        if direct.target is not None:
            client = f"{self.client[0]}:{self.client[1]}" if self.client else None
            method, target = direct.target
            log_access(method, target, reply[0], elapsed, client, direct.request_id)
        data = self._render(direct, reply)
        if data is None:
            transport.close()
            return
        transport.write(data)
        if direct.access is not None:
            method, path, version = direct.access
            client = f"{self.client[0]}:{self.client[1]}" if self.client else ""
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d', client, method, path, version, reply[0]
            )
        if not direct.keep_alive:
            transport.close()
        self.on_response_complete()

    def _render(self, direct: _Direct, reply: Answer) -> bytes | None:
        """The response bytes uvicorn's ``RequestResponseCycle.send`` would write for
        ``reply`` (``None``: a header value uvicorn would refuse)."""
        status, headers, body = reply
        parts = [STATUS_LINE[status], _date_block(self.server_state.default_headers)]
        parts.append(_COMMON_BLOCK)
        sized = False
        for name, value in headers:
            if HEADER_VALUE_RE.search(value):
                logger.error("refusing to send header %r with a control character", name)
                return None
            if name == b"content-length":
                sized = True
            parts += (name, b": ", value, b"\r\n")
        if not direct.keep_alive:
            parts.append(_CLOSE)
        if direct.head:
            parts.append(b"\r\n")
        elif sized or status in (204, 304):
            parts += (b"\r\n", body)
        else:
            parts.append(b"transfer-encoding: chunked\r\n\r\n")
            if body:
                parts += (b"%x\r\n" % len(body), body, b"\r\n")
            parts.append(b"0\r\n\r\n")
        return b"".join(parts)

    # -- connection state ------------------------------------------------------------------------

    def on_response_complete(self) -> None:
        """uvicorn's, with the keep-alive timer replaced by a stamp the sweeper reads."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.idle_since = None
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self.idle_since = self.loop.time()
        sweeper = type(self).sweeper
        if sweeper is None:
            sweeper = type(self).sweeper = _Sweeper(self.loop, self)
        sweeper.arm()

    def _unset_keepalive_if_required(self) -> None:
        self.idle_since = None
        super()._unset_keepalive_if_required()


_date_cache: tuple[list[tuple[bytes, bytes]], bytes] | None = None


def _date_block(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's default headers (``Date``, renewed once a second as a new list) as bytes."""
    global _date_cache
    cached = _date_cache
    if cached is not None and cached[0] is default_headers:
        return cached[1]
    block = b"".join(name + b": " + value + b"\r\n" for name, value in default_headers)
    _date_cache = (default_headers, block)
    return block


def direct_protocol(app: DurableStreamsApp) -> type[DirectHttpProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` answering ``app``'s direct requests."""
    return type("DirectHttpProtocol", (DirectHttpProtocol,), {"direct_app": app})
