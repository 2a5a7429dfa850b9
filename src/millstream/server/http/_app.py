"""The Durable Streams ASGI app: lifespan, dispatch and the last line of error handling.

Streams live at ``{root_path}/v1/stream/<path>``; ``GET /health`` answers JSON. The app honours
``scope["root_path"]`` so it mounts under any prefix of a Starlette/FastAPI app. Routes that
services mount (``routes=``) are matched first; paths whose first segment starts with ``__`` are
never streams. Where a request goes and how it is validated is ``_routing``'s one table, shared
with ``serve``'s fast path (``direct``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import partial
from typing import Any

from millstream.auth import Principal
from millstream.log import LogError, Store, reclaim_forever

from ._body import BodyTooLarge, ClientDisconnected, read_body
from ._errors import HttpError, from_log_error
from ._gate import HttpGate, request_id
from ._headers import RequestHeaders, request_headers
from ._responses import Answer, error_answer, json_answer, preflight, send_answer
from ._routing import MountedRoute, RequestParts, locate, prepare
from ._settings import DEFAULT_MAX_BODY_SIZE, Settings
from ._stats import HttpStats
from ._types import Message, Receive, Scope, Send

__all__ = [
    "DIRECT_BODY_LIMIT",
    "DirectHandler",
    "DurableStreamsApp",
    "HealthProvider",
    "create_app",
    "failure_answer",
]

logger = logging.getLogger("millstream.server.http")
access_logger = logging.getLogger("millstream.access")

#: A request ``DurableStreamsApp.direct`` took: called with the complete body.
DirectHandler = Callable[[bytes], Coroutine[Any, Any, "Answer | None"]]
#: What ``GET /health`` adds to ``{"status": "ok", "store": ...}`` (e.g. ``services``); a
#: ``status`` other than ``"ok"`` makes the answer 503.
HealthProvider = Callable[[], Awaitable[dict[str, Any]]]
#: Larger bodies (and chunked ones) always take the ASGI route, with its 413 handling.
DIRECT_BODY_LIMIT = 64 << 10


class DurableStreamsApp:
    """A plain ASGI app; see ``create_app``."""

    def __init__(
        self,
        settings: Settings,
        *,
        routes: Sequence[MountedRoute] = (),
        health: HealthProvider | None = None,
        manage_store: bool = False,
        public_url: str | None = None,
        gate: HttpGate | None = None,
    ) -> None:
        self.settings = settings
        self.store = settings.store
        self.routes = tuple(routes)
        self.manage_store = manage_store
        self.public_url = public_url
        self.gate = gate
        self.stats = HttpStats()
        #: log every request to ``millstream.access`` (``--access-log``)
        self.access_log = False
        #: an OpenTelemetry tracer: one span per request (``serve --otel``); the fast path
        #: must be off, since it never enters ``_http``
        self.tracer: Any = None
        self._health = health
        self._started = False
        self._reclaimer: asyncio.Task[None] | None = None
        self._direct_body_limit = min(settings.max_body_size, DIRECT_BODY_LIMIT)

    # -- lifecycle -------------------------------------------------------------------------

    async def startup(self) -> None:
        """With ``manage_store``: start the store and reclaim expired streams (``millstream
        serve`` runs the app inside a node, which owns the store, and never calls this)."""
        if self._started:
            return
        self._started = True
        if self.manage_store:
            await self.store.start()
            self._reclaimer = asyncio.ensure_future(reclaim_forever(self.store))

    async def shutdown(self) -> None:
        """Wake every live reader; with ``manage_store`` also stop reclaiming, close the store."""
        self.store.notifier.close()
        if self._reclaimer is not None:
            self._reclaimer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reclaimer
        if self.manage_store:
            await self.store.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    logger.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:
                    logger.exception("shutdown failed")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- requests --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.tracer is not None:
            await self._traced(scope, receive, send)
            return
        await self._answer(
            scope, receive, send, _Trace(send, _ROUTES.get(scope["method"], "other"))
        )

    async def _traced(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        trace = _Trace(send, _ROUTES.get(method, "other"))
        with self.tracer.start_as_current_span(f"{method} {scope.get('path', '')}") as span:
            span.set_attribute("http.request.method", method)
            span.set_attribute("url.path", scope.get("path", ""))
            span.set_attribute("millstream.request_id", request_id(request_headers(scope)))
            await self._answer(scope, receive, send, trace)
            span.set_attribute("http.route", trace.route)
            span.set_attribute("http.response.status_code", trace.status)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, trace: _Trace) -> None:
        method: str = scope["method"]
        started = time.perf_counter()
        try:
            await self._route(scope, receive, trace.send, method, trace)
        except Exception as exc:
            reply = failure_answer(exc, method, scope.get("path"))
            if reply is not None:
                if reply[0] != 500:
                    await send_answer(trace.send, reply)
                else:
                    with contextlib.suppress(Exception):
                        await send_answer(trace.send, reply)
        finally:
            elapsed = time.perf_counter() - started
            live = trace.route in _LIVE_ROUTES
            self.stats.done(trace.route, trace.status, None if live else elapsed)
            if trace.appended:
                self.stats.appended(trace.status, trace.appended)
            if self.access_log:
                client = scope.get("client")
                log_access(
                    method,
                    scope.get("path", ""),
                    trace.status,
                    elapsed,
                    f"{client[0]}:{client[1]}" if client else None,
                    request_id(request_headers(scope)),
                )

    def direct(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: RequestHeaders,
        *,
        scheme: str = "http",
        root_path: str = "",
        server: tuple[str, int | None] | None = None,
        client: str | None = None,
    ) -> DirectHandler | None:
        """For ``millstream serve``'s own HTTP protocol (``_fastpath``): the handler of a
        request it may answer without ASGI, or ``None`` to pass the request to the app.

        Only stream requests the routing table marks ``direct`` qualify (creates, appends,
        catch-up GETs and HEADs), and only when preparing them raised nothing (any 4xx is left
        to the app). ``path`` is the decoded path without ``root_path``; ``scheme``,
        ``root_path`` and ``server`` are the scope's (a create's ``Location`` needs them),
        ``client`` the peer's address (the gate's brute-force guard). With a gate, only
        requests it admits from memory qualify (``HttpGate.admit_now``). The handler takes the
        complete body and returns what ``_http`` would have sent (``None``: nothing).
        """
        if b"transfer-encoding" in headers or b"expect" in headers:
            return None
        try:
            _, stream = locate(path, self.routes)
            if stream is None:
                return None
            parts = RequestParts(
                stream, query_string, headers, scheme, root_path, server, self.public_url
            )
            prepared = prepare(self.settings, method, parts)
        except HttpError:
            return None
        run = prepared.answer
        if run is None or not prepared.direct:
            return None
        declared = prepared.declared_length
        if declared is not None and declared > self._direct_body_limit:
            return None
        gate = self.gate
        if gate is not None and (
            gate.admit_now(method, stream, headers, client, prepared.also_reads) is None
        ):
            return None
        return partial(_answer_direct, run, method, path)

    async def _route(
        self, scope: Scope, receive: Receive, send: Send, method: str, trace: _Trace
    ) -> None:
        root_path: str = scope.get("root_path", "")
        path: str = scope["path"]
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        if method == "OPTIONS":
            trace.route = "preflight"
            await preflight(send)
            return
        app, stream = locate(path, self.routes)
        if app is not None:
            trace.route = "service"
            await app(scope, receive, send)
            return
        if stream is None:
            trace.route = "health"
            if method not in ("GET", "HEAD"):
                raise HttpError(404, "not_found", f"no route for {method} {path!r}")
            await send_answer(send, await self._health_answer(method == "HEAD"))
            return
        headers = request_headers(scope)
        gate = self.gate
        client = _client(scope)
        principal = None
        if gate is not None:
            principal = await gate.authenticate(headers, client, f"{method} {stream}")
        parts = RequestParts(
            stream,
            scope.get("query_string", b""),
            headers,
            scope.get("scheme", "http"),
            root_path,
            scope.get("server"),
            self.public_url,
        )
        prepared = prepare(self.settings, method, parts)
        if gate is not None and principal is not None:
            gate.authorize(principal, method, stream, headers, client)
            if prepared.also_reads is not None:
                what = f"fork of {prepared.also_reads}"
                gate.check(principal, "read", prepared.also_reads, headers, client, what)
        if prepared.live is not None:
            trace.route = "sse"
            self.stats.live_readers += 1
            try:
                if gate is None or principal is None:
                    await prepared.live(receive, send)
                else:
                    await _live_stream(
                        gate, principal, prepared.live, receive, send, headers, client
                    )
            finally:
                self.stats.live_readers -= 1
            return
        assert prepared.answer is not None
        body = b""
        if prepared.reads_body:
            limit = self.settings.max_body_size
            body = await read_body(receive, limit, prepared.declared_length)
            if method == "POST":
                trace.appended = len(body)
        if not prepared.waits:
            reply = await prepared.answer(body)
        else:
            trace.route = "long_poll"
            self.stats.live_readers += 1
            try:
                if gate is not None and principal is not None:
                    run = partial(prepared.answer, body)
                    reply = await gate.live_answer(principal, run, headers, client)
                else:
                    reply = await prepared.answer(body)
            finally:
                self.stats.live_readers -= 1
        await send_answer(send, reply)

    async def _health_answer(self, head: bool) -> Answer:
        body: dict[str, Any] = {"status": "ok", "store": self.store.description}
        if self._health is not None:
            body.update(await self._health())
        return json_answer(200 if body["status"] == "ok" else 503, body, head=head)


_ROUTES = {"GET": "read", "HEAD": "head", "POST": "append", "PUT": "create", "DELETE": "delete"}
_LIVE_ROUTES = frozenset(("sse", "long_poll", "service"))


class _Trace:
    """What ``_http`` records of a request: its route, status and appended bytes."""

    __slots__ = ("_send", "appended", "route", "status")

    def __init__(self, send: Send, route: str) -> None:
        self._send = send
        self.route = route
        self.status = 0
        self.appended = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)


def log_access(
    method: str, path: str, status: int, seconds: float, client: str | None, rid: str
) -> None:
    """One ``--access-log`` line (JSON logs carry the fields separately)."""
    access_logger.info(
        '%s "%s %s" %d %.1f ms',
        client,
        method,
        path,
        status,
        seconds * 1000,
        extra={
            "request_id": rid,
            "client": client,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
        },
    )


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


async def _live_stream(
    gate: HttpGate,
    principal: Principal,
    live: Callable[[Receive, Send], Awaitable[None]],
    receive: Receive,
    send: Send,
    headers: RequestHeaders,
    client: str | None,
) -> None:
    """An SSE response as a session of ``principal``: cut when the token is revoked."""
    started = False

    async def tracked(message: Message) -> None:
        nonlocal started
        started = True
        await send(message)

    async def end() -> None:
        if started:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            raise HttpError(401, "token_revoked", "the token was revoked")

    await gate.live_stream(principal, partial(live, receive, tracked), headers, client, end)


async def _answer_direct(
    run: Callable[[bytes], Coroutine[Any, Any, Answer]], method: str, path: str, body: bytes
) -> Answer | None:
    try:
        return await run(body)
    except Exception as exc:
        return failure_answer(exc, method, path)


def failure_answer(exc: Exception, method: str, path: object) -> Answer | None:
    """What a request that raised ``exc`` is answered (``None``: the client is gone)."""
    head = method == "HEAD"
    if isinstance(exc, HttpError):
        return error_answer(exc, head=head)
    if isinstance(exc, LogError):
        return error_answer(from_log_error(exc), head=head)
    if isinstance(exc, BodyTooLarge):
        return error_answer(HttpError(413, "payload_too_large", str(exc)), head=head)
    if isinstance(exc, ClientDisconnected):
        return None
    logger.error("unexpected error in %s %s", method, path, exc_info=exc)
    error = HttpError(500, "internal_error", "the server failed to handle this request")
    return error_answer(error, head=head)


def create_app(
    store: Store,
    *,
    long_poll_timeout: float = 30.0,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    sse_reconnect_seconds: float = 60.0,
    routes: Sequence[MountedRoute] = (),
    health: HealthProvider | None = None,
    manage_store: bool = False,
    public_url: str | None = None,
    gate: HttpGate | None = None,
) -> DurableStreamsApp:
    """The Durable Streams HTTP front door for ``store`` as an ASGI app.

    ``routes`` are services' routes (``millstream.services.Route``), matched before streams;
    ``health`` adds to ``GET /health``. ``gate`` checks tokens and scopes on every stream
    request (``HttpGate`` over a ``millstream.auth.Authenticator``; none: open).
    ``manage_store=True`` makes the app's lifespan start and
    close ``store`` and reclaim expired streams every 30 s, for running the app alone under an
    ASGI server; leave it off when the caller owns the store (a ``millstream.node.Node`` does).
    Mounted under Starlette, call ``await app.startup()``/``app.shutdown()`` from the parent's
    lifespan (Starlette does not forward lifespan events to mounts).

    >>> from millstream.log import MemoryStore
    >>> app = create_app(MemoryStore(), long_poll_timeout=0.5)
    """
    if long_poll_timeout <= 0 or sse_reconnect_seconds <= 0:
        raise ValueError("long_poll_timeout and sse_reconnect_seconds must be positive")
    if max_body_size <= 0:
        raise ValueError("max_body_size must be positive")
    settings = Settings(store, long_poll_timeout, max_body_size, sse_reconnect_seconds)
    return DurableStreamsApp(
        settings,
        routes=routes,
        health=health,
        manage_store=manage_store,
        public_url=public_url,
        gate=gate,
    )
