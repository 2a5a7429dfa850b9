"""The one routing table of the HTTP door, used by the ASGI route and ``serve``'s fast path.

Paths: ``/v1/stream/<path>`` is a stream, except that a path whose first segment starts with
``__`` is millstream's internal state (``log.is_internal``: 404 unless a service's route serves
it, as subscriptions serve ``__ds``), and a path ``T:k`` is partition ``k`` of Kafka topic ``T``
(``log.is_partition_path``): read and append it like any stream, but only the topic layer
creates or deletes it (PUT and DELETE answer 409 ``reserved_path``).

A request is located first (``locate``): a mounted service route, ``/health``, or a stream; then
a stream request is prepared by its method's entry in ``STREAM_METHODS``. Preparing validates
everything that can be checked before the body arrives (a 4xx raises ``HttpError`` here) and
returns a ``Prepared`` request: a coroutine factory that answers given the complete body, or a
live response that needs the ASGI channels (SSE). The ASGI route runs every prepared request;
the fast path runs those marked ``direct`` and leaves the rest, and everything that raised, to
the ASGI route, which answers them with the same code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from millstream.log import is_internal, is_partition_path

from ._errors import HttpError
from ._headers import RequestHeaders, parse_query_string
from ._reads import get_answer, head_answer
from ._responses import Answer
from ._settings import STREAM_PREFIX, Settings
from ._sse import handle_sse
from ._types import ASGIApp, Receive, Send
from ._writes import (
    append_answer,
    create_answer,
    delete_answer,
    parse_append_headers,
    parse_create_headers,
)

__all__ = [
    "HEALTH_PATH",
    "STREAM_METHODS",
    "MountedRoute",
    "Prepared",
    "RequestParts",
    "locate",
    "prepare",
    "stream_url_root",
]

HEALTH_PATH = "/health"

_ALLOW = [(b"allow", b"GET, HEAD, POST, PUT, DELETE, OPTIONS")]


class MountedRoute(Protocol):
    """What the door needs of a route a service mounts (``millstream.services.Route``)."""

    @property
    def app(self) -> ASGIApp: ...

    def matches(self, path: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class RequestParts:
    """What preparing a stream request reads: the same fields on both routes."""

    stream: str
    query_string: bytes
    headers: RequestHeaders
    scheme: str
    root_path: str
    server: tuple[str, int | None] | None
    public_url: str | None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated stream request. ``answer`` gets the complete body (empty when
    ``reads_body`` is false); ``live`` requests stream their response over ASGI instead.
    ``direct``: the fast path may run it (no ASGI-only behaviour, body within ``declared``).
    ``waits``: a long-poll (a live reader). ``also_reads``: another stream the request reads
    (a fork's source), which the gate checks too."""

    answer: Callable[[bytes], Coroutine[Any, Any, Answer]] | None
    reads_body: bool = False
    declared_length: int | None = None
    direct: bool = True
    live: Callable[[Receive, Send], Awaitable[None]] | None = None
    waits: bool = False
    also_reads: str | None = None


def locate(path: str, routes: Sequence[MountedRoute]) -> tuple[ASGIApp | None, str | None]:
    """Where a request for ``path`` (below the root path) goes: ``(app, None)`` for a mounted
    route, ``(None, stream)`` for a stream, ``(None, None)`` for ``/health``. Raises the 404 or
    400 a path no route serves gets. Paths whose first segment starts with ``__`` are
    millstream's own (``log.is_internal``): only a mounted service may serve them."""
    for route in routes:
        if route.matches(path):
            return route.app, None
    if path.startswith(STREAM_PREFIX):
        stream = path[len(STREAM_PREFIX) :]
        if not stream:
            raise HttpError(404, "not_found", "a stream URL needs a path after /v1/stream/")
        if is_internal(stream):
            raise HttpError(
                404, "not_found", "stream paths starting with __ are reserved for millstream"
            )
        if not stream.isprintable():
            raise HttpError(400, "bad_path", "stream paths must not contain control characters")
        return None, stream
    if path == HEALTH_PATH:
        return None, None
    raise HttpError(404, "not_found", f"no route for {path!r}; streams live under /v1/stream/")


def stream_url_root(
    host: bytes | None,
    scheme: str,
    server: tuple[str, int | None] | None,
    root_path: str,
    public_url: str | None = None,
) -> str:
    """Absolute URL of the stream root (``http://127.0.0.1:4437/v1/stream/``): ``public_url``,
    else the request's ``Host`` (the last one sent), else the address the server listens on."""
    if public_url:
        return public_url.rstrip("/") + root_path + STREAM_PREFIX
    if host:
        authority = host.decode("latin-1")
    elif server:
        server_host, server_port = server
        authority = f"{server_host}:{server_port}"
    else:
        authority = "localhost"
    return f"{scheme}://{authority}{root_path}{STREAM_PREFIX}"


def _get(settings: Settings, parts: RequestParts) -> Prepared:
    query = parse_query_string(parts.query_string)
    if query.live == "sse":
        return Prepared(None, live=partial(handle_sse, settings, parts.stream, query))
    stream, headers = parts.stream, parts.headers

    async def run(body: bytes) -> Answer:
        return await get_answer(settings, stream, query, headers)

    return Prepared(run, direct=not query.live, waits=query.live == "long-poll")


def _head(settings: Settings, parts: RequestParts) -> Prepared:
    stream = parts.stream

    async def run(body: bytes) -> Answer:
        return await head_answer(settings, stream)

    return Prepared(run)


def _post(settings: Settings, parts: RequestParts) -> Prepared:
    parsed = parse_append_headers(parts.headers)
    run = partial(append_answer, settings, parts.stream, parsed)
    return Prepared(run, reads_body=True, declared_length=parsed.declared_length)


def _reserved(stream: str) -> HttpError:
    topic, _, partition = stream.rpartition(":")
    return HttpError(
        409,
        "reserved_path",
        f"{stream!r} is partition {partition} of topic {topic!r}: partitions are created and"
        " deleted with their topic (Kafka CreateTopics, CreatePartitions, DeleteTopics);"
        " reading and appending work",
    )


def _put(settings: Settings, parts: RequestParts) -> Prepared:
    if is_partition_path(parts.stream):
        raise _reserved(parts.stream)
    headers = parts.headers
    root = stream_url_root(
        headers.get(b"host"), parts.scheme, parts.server, parts.root_path, parts.public_url
    )
    parsed = parse_create_headers(headers, parts.root_path + STREAM_PREFIX)
    run = partial(create_answer, settings, parts.stream, parsed, location=root + parts.stream)
    # uvicorn's proxy middleware may change the scheme of the Location: keep those on ASGI.
    direct = b"x-forwarded-proto" not in headers or bool(parts.public_url)
    source = parsed.fork.source if parsed.fork is not None else None
    return Prepared(
        run,
        reads_body=True,
        declared_length=parsed.declared_length,
        direct=direct,
        also_reads=source,
    )


def _delete(settings: Settings, parts: RequestParts) -> Prepared:
    stream = parts.stream
    if is_partition_path(stream):
        raise _reserved(stream)

    async def run(body: bytes) -> Answer:
        return await delete_answer(settings, stream)

    return Prepared(run, direct=False)


def _not_allowed(method: str) -> HttpError:
    return HttpError(405, "method_not_allowed", f"{method} is not a stream operation", _ALLOW)


#: Stream methods: how each is prepared (``OPTIONS`` is answered before routing).
STREAM_METHODS: dict[str, Callable[[Settings, RequestParts], Prepared]] = {
    "GET": _get,
    "HEAD": _head,
    "POST": _post,
    "PUT": _put,
    "DELETE": _delete,
}


def prepare(settings: Settings, method: str, parts: RequestParts) -> Prepared:
    """The stream request ``method`` on ``parts``; 405 for other methods."""
    entry = STREAM_METHODS.get(method)
    if entry is None:
        raise _not_allowed(method)
    return entry(settings, parts)
