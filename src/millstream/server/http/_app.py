"""The Durable Streams ASGI app: routing, lifespan, and the last line of error handling.

Streams live at ``{root_path}/v1/stream/<path>``; ``GET /health`` answers JSON. The app honours
``scope["root_path"]`` so it mounts under any prefix of a Starlette/FastAPI app. Paths whose
first segment is ``__ds`` are reserved for subscriptions (PROTOCOL.md §6) and are routed before
any stream handling; every other path starting with ``__`` is millstream's internal state
(``millstream.log.is_internal``) and never reachable as a stream (404). A path ``T:k`` is
partition ``k`` of Kafka topic ``T`` (``millstream.log.is_partition_path``): it can be read and
appended to like any stream, but only the topic layer creates or deletes it (PUT and DELETE
answer 409 ``reserved_path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, Protocol

from millstream.log import LogError, Store, is_internal, is_partition_path

from .._body import BodyTooLarge, ClientDisconnected
from .._types import Receive, Scope, Send
from ._errors import HttpError, from_log_error
from ._headers import (
    ReadQuery,
    RequestHeaders,
    parse_query_string,
    parse_read_query,
    request_headers,
)
from ._reads import get_answer, handle_get, handle_head, head_answer
from ._responses import Answer, error_answer, preflight, send_answer, send_json
from ._settings import DEFAULT_MAX_BODY_SIZE, STREAM_PREFIX, Settings
from ._sse import handle_sse
from ._writes import (
    AppendHeaders,
    CreateHeaders,
    append_answer,
    create_answer,
    handle_create,
    handle_delete,
    handle_post,
    parse_append_headers,
    parse_create_headers,
)

__all__ = [
    "DIRECT_BODY_LIMIT",
    "DirectHandler",
    "DurableStreamsApp",
    "create_app",
    "failure_answer",
]

logger = logging.getLogger("millstream.server.http")

_RESERVED = "__ds"

#: A request ``DurableStreamsApp.direct`` took: called with the complete body.
DirectHandler = Callable[[bytes], Coroutine[Any, Any, "Answer | None"]]
_RECLAIM_INTERVAL = 30.0
#: Larger bodies (and chunked ones) always take the ASGI route, with its 413 handling.
DIRECT_BODY_LIMIT = 64 << 10


class SubscriptionHandler(Protocol):
    """What ``millstream.server.subscriptions.SubscriptionService`` offers this app."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, *, subpath: str, stream_root: str
    ) -> None: ...


class DurableStreamsApp:
    """A plain ASGI app; see ``create_app``."""

    def __init__(
        self,
        settings: Settings,
        *,
        subscriptions: bool = False,
        manage_store: bool = False,
        public_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = settings.store
        self.manage_store = manage_store
        self.public_url = public_url
        self._subscriptions_enabled = subscriptions
        self._subscriptions: SubscriptionHandler | None = None
        self._started = False
        self._reclaimer: asyncio.Task[None] | None = None
        self._direct_body_limit = min(settings.max_body_size, DIRECT_BODY_LIMIT)

    # -- lifecycle -------------------------------------------------------------------------

    async def startup(self) -> None:
        """Start what the app owns: the store (if managed), reclaiming, subscriptions."""
        if self._started:
            return
        self._started = True
        if self.manage_store:
            await self.store.start()
            self._reclaimer = asyncio.ensure_future(self._reclaim_forever())
        if self._subscriptions_enabled:
            try:
                await self._subscription_service()
            except HttpError as exc:
                logger.warning("%s", exc.message)

    async def shutdown(self) -> None:
        """Stop in the reverse order; wakes every live reader first."""
        self.store.notifier.close()
        if self._reclaimer is not None:
            self._reclaimer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reclaimer
        if self._subscriptions is not None:
            await self._subscriptions.aclose()
        if self.manage_store:
            await self.store.aclose()

    async def _reclaim_forever(self) -> None:
        while True:
            await asyncio.sleep(_RECLAIM_INTERVAL)
            try:
                reclaimed = await self.store.reclaim_expired()
            except Exception:
                logger.exception("reclaiming expired streams failed")
            else:
                if reclaimed:
                    logger.info("reclaimed %d expired streams", reclaimed)

    async def _subscription_service(self) -> SubscriptionHandler:
        if self._subscriptions is None:
            # Imported lazily: the app works (with subscriptions off) without that module.
            try:
                module = importlib.import_module("millstream.server.subscriptions")
                factory = module.SubscriptionService
            except (ImportError, AttributeError) as exc:
                raise HttpError(
                    501, "not_implemented", f"subscriptions are not available here: {exc}"
                ) from exc
            try:
                service: Any = factory(self.store, public_url_root_hint=self.public_url)
                await service.start()
            except Exception as exc:
                logger.exception("starting subscriptions failed")
                raise HttpError(
                    501, "not_implemented", f"subscriptions failed to start: {exc}"
                ) from exc
            self._subscriptions = service
        return self._subscriptions

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
        method: str = scope["method"]
        try:
            await self._route(scope, receive, send, method)
        except Exception as exc:
            reply = failure_answer(exc, method, scope.get("path"))
            if reply is None:
                return
            if reply[0] != 500:
                await send_answer(send, reply)
                return
            with contextlib.suppress(Exception):
                await send_answer(send, reply)

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
    ) -> DirectHandler | None:
        """For ``millstream serve``'s own HTTP protocol (``server._fastpath``): the handler of
        a request it may answer without ASGI, or ``None`` to pass the request to the app.

        Only creates, appends, catch-up GETs and HEADs of a stream qualify, and only when the
        checks ``_route`` makes before touching the store all pass (any 4xx they would raise is
        left to the app). ``path`` is the decoded path without ``root_path``; ``scheme``,
        ``root_path`` and ``server`` are the scope's (a create's ``Location`` needs them). The
        handler takes the complete body and returns what ``_http`` would have sent (``None``:
        nothing).
        """
        if b"transfer-encoding" in headers or b"expect" in headers:
            return None
        if not path.startswith(STREAM_PREFIX):
            return None
        stream = path[len(STREAM_PREFIX) :]
        if not stream or is_internal(stream) or not stream.isprintable():
            return None
        try:
            if method == "POST":
                parsed = parse_append_headers(headers)
                declared = parsed.declared_length
                if declared is not None and declared > self._direct_body_limit:
                    return None
                return partial(self._direct_post, stream, parsed, path)
            if method == "GET":
                query = parse_query_string(query_string)
                if query.live:
                    return None
                return partial(self._direct_get, stream, query, headers, path)
            if method == "HEAD":
                return partial(self._direct_head, stream, path)
            if method == "PUT":
                if is_partition_path(stream):
                    return None  # refused by _route
                if b"x-forwarded-proto" in headers and not self.public_url:
                    return None  # uvicorn's proxy middleware may change the Location scheme
                created = parse_create_headers(headers, root_path + STREAM_PREFIX)
                declared = created.declared_length
                if declared is not None and declared > self._direct_body_limit:
                    return None
                root = self._stream_url_root(headers.get(b"host"), scheme, server, root_path)
                return partial(self._direct_put, stream, created, root + stream, path)
        except HttpError:
            return None
        return None

    async def _direct_get(
        self, stream: str, query: ReadQuery, headers: RequestHeaders, path: str, body: bytes
    ) -> Answer | None:
        try:
            return await get_answer(self.settings, stream, query, headers)
        except Exception as exc:
            return failure_answer(exc, "GET", path)

    async def _direct_head(self, stream: str, path: str, body: bytes) -> Answer | None:
        try:
            return await head_answer(self.settings, stream)
        except Exception as exc:
            return failure_answer(exc, "HEAD", path)

    async def _direct_post(
        self, stream: str, parsed: AppendHeaders, path: str, body: bytes
    ) -> Answer | None:
        try:
            return await append_answer(self.settings, stream, parsed, body)
        except Exception as exc:
            return failure_answer(exc, "POST", path)

    async def _direct_put(
        self, stream: str, parsed: CreateHeaders, location: str, path: str, body: bytes
    ) -> Answer | None:
        try:
            return await create_answer(self.settings, stream, parsed, body, location)
        except Exception as exc:
            return failure_answer(exc, "PUT", path)

    async def _route(self, scope: Scope, receive: Receive, send: Send, method: str) -> None:
        root_path: str = scope.get("root_path", "")
        path: str = scope["path"]
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        if method == "OPTIONS":
            await preflight(send)
            return
        if not path.startswith(STREAM_PREFIX):
            if path == "/health" and method in ("GET", "HEAD"):
                body = {"status": "ok", "store": self.store.description}
                await send_json(send, 200, body, head=method == "HEAD")
                return
            raise HttpError(
                404, "not_found", f"no route for {path!r}; streams live under /v1/stream/"
            )
        stream = path[len(STREAM_PREFIX) :]
        if stream.startswith(_RESERVED) and stream.partition("/")[0] == _RESERVED:
            await self._reserved(scope, receive, send, stream, root_path)
            return
        if not stream:
            raise HttpError(404, "not_found", "a stream URL needs a path after /v1/stream/")
        if not stream.isprintable():
            raise HttpError(400, "bad_path", "stream paths must not contain control characters")
        if is_internal(stream):
            raise HttpError(
                404, "not_found", "paths starting with __ hold millstream's internal state"
            )
        if method in ("PUT", "DELETE") and is_partition_path(stream):
            topic, _, partition = stream.rpartition(":")
            raise HttpError(
                409,
                "reserved_path",
                f"{stream!r} is partition {partition} of topic {topic!r}: partitions are"
                " created and deleted with their topic (Kafka CreateTopics, CreatePartitions,"
                " DeleteTopics); reading and appending work",
            )
        settings = self.settings
        if method == "GET":
            headers = request_headers(scope)
            query = parse_read_query(scope)
            if query.live == "sse":
                await handle_sse(settings, stream, query, receive, send)
            else:
                await handle_get(settings, stream, query, headers, send)
        elif method == "POST":
            await handle_post(settings, stream, request_headers(scope), receive, send)
        elif method == "PUT":
            location = self._stream_root(scope, root_path) + stream
            await handle_create(
                settings,
                stream,
                request_headers(scope),
                receive,
                send,
                location,
                root_path + STREAM_PREFIX,
            )
        elif method == "HEAD":
            await handle_head(settings, stream, send)
        elif method == "DELETE":
            await handle_delete(settings, stream, send)
        else:
            raise HttpError(
                405,
                "method_not_allowed",
                f"{method} is not a stream operation",
                [(b"allow", b"GET, HEAD, POST, PUT, DELETE, OPTIONS")],
            )

    async def _reserved(
        self, scope: Scope, receive: Receive, send: Send, stream: str, root_path: str
    ) -> None:
        """``__ds/...``: subscriptions when enabled, otherwise 404 (and never a stream)."""
        if not self._subscriptions_enabled:
            raise HttpError(
                404, "not_found", "paths starting with __ds are reserved (subscriptions are off)"
            )
        service = await self._subscription_service()
        subpath = stream[len(_RESERVED) + 1 :]
        await service(
            scope, receive, send, subpath=subpath, stream_root=self._stream_root(scope, root_path)
        )

    def _stream_root(self, scope: Scope, root_path: str) -> str:
        """Absolute URL of the stream root, e.g. ``http://127.0.0.1:4437/v1/stream/``."""
        host = request_headers(scope).get(b"host")
        server = scope.get("server")
        return self._stream_url_root(host, scope.get("scheme", "http"), server, root_path)

    def _stream_url_root(self, host: bytes | None, scheme: str, server: Any, root_path: str) -> str:
        """The stream root from its parts: ``public_url``, else the request's ``Host`` (the
        last one sent, as ``request_headers`` keeps), else the address the server listens on."""
        if self.public_url:
            return self.public_url.rstrip("/") + root_path + STREAM_PREFIX
        if host:
            authority = host.decode("latin-1")
        elif server:
            server_host, server_port = server
            authority = f"{server_host}:{server_port}"
        else:
            authority = "localhost"
        return f"{scheme}://{authority}{root_path}{STREAM_PREFIX}"


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
    subscriptions: bool = False,
    manage_store: bool = False,
    public_url: str | None = None,
) -> DurableStreamsApp:
    """The Durable Streams HTTP front door for ``store`` as an ASGI app.

    ``manage_store=True`` makes the app's lifespan start and close ``store`` and reclaim expired
    streams every 30 s (what ``millstream serve`` uses); leave it off when the caller owns the
    store. Mounted under Starlette, call ``await app.startup()``/``app.shutdown()`` from the
    parent's lifespan (Starlette does not forward lifespan events to mounts).

    >>> from millstream.log import MemoryStore
    >>> app = create_app(MemoryStore(), long_poll_timeout=0.5)
    """
    if long_poll_timeout <= 0 or sse_reconnect_seconds <= 0:
        raise ValueError("long_poll_timeout and sse_reconnect_seconds must be positive")
    if max_body_size <= 0:
        raise ValueError("max_body_size must be positive")
    settings = Settings(store, long_poll_timeout, max_body_size, sse_reconnect_seconds)
    return DurableStreamsApp(
        settings, subscriptions=subscriptions, manage_store=manage_store, public_url=public_url
    )
