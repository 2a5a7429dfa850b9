"""Answers: the headers every response carries (CORS, §12.7 browser security), whole responses
as values (``Answer``), and helpers that send one as two ASGI messages.

Handlers compute an ``Answer``; the ASGI app sends it with ``send_answer`` and ``millstream
serve``'s own HTTP protocol (``_fastpath``) writes the same value in one ``write()``.
"""

from __future__ import annotations

import orjson

from ._errors import HttpError
from ._types import Headers, Send

__all__ = [
    "COMMON_HEADERS",
    "JSON_CONTENT_TYPE",
    "NO_CONTENT_LENGTH",
    "Answer",
    "answer",
    "content_length",
    "error_answer",
    "json_answer",
    "next_offset_header",
    "preflight",
    "send_answer",
    "send_error",
    "send_json",
    "send_response",
]

# Request headers a browser may send cross-origin (preflight answer) and response headers its
# scripts may read; PROTOCOL.md §5 names them all.
_ALLOW_HEADERS = (
    b"content-type, authorization, if-none-match, last-event-id, stream-seq, stream-ttl, "
    b"stream-expires-at, stream-closed, producer-id, producer-epoch, producer-seq, "
    b"stream-forked-from, stream-fork-offset, stream-fork-sub-offset"
)
_EXPOSE_HEADERS = (
    b"stream-next-offset, stream-cursor, stream-up-to-date, stream-closed, stream-ttl, "
    b"stream-expires-at, stream-sse-data-encoding, producer-epoch, producer-seq, "
    b"producer-expected-seq, producer-received-seq, etag, location, content-type, retry-after"
)

#: Sent on every response, errors included (PROTOCOL.md §12.7 and CORS).
COMMON_HEADERS: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-resource-policy", b"cross-origin"),
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", _EXPOSE_HEADERS),
]

JSON_CONTENT_TYPE = (b"content-type", b"application/json")
NO_CONTENT_LENGTH = (b"content-length", b"0")


def content_length(body: bytes) -> tuple[bytes, bytes]:
    return (b"content-length", b"%d" % len(body)) if body else NO_CONTENT_LENGTH


def next_offset_header(position: int) -> tuple[bytes, bytes]:
    """``Stream-Next-Offset`` for ``position``: ``log.format_offset``'s text, built as bytes in
    one step (every answer carries one; a test pins the two together)."""
    return (b"stream-next-offset", b"%016d_0000000000000000" % position)


_PREFLIGHT: Headers = [
    *COMMON_HEADERS,
    (b"access-control-allow-methods", b"GET, POST, PUT, DELETE, HEAD, OPTIONS"),
    (b"access-control-allow-headers", _ALLOW_HEADERS),
    (b"access-control-max-age", b"86400"),
    (b"content-length", b"0"),
]


#: A whole response: status, the headers after ``COMMON_HEADERS``, and the body exactly as sent
#: (empty for HEAD, whose headers still give the length a GET would have).
Answer = tuple[int, Headers, bytes]


def answer(status: int, headers: Headers, body: bytes = b"") -> Answer:
    """An answer carrying ``body`` with its ``Content-Length``; ``headers`` is extended."""
    headers.append(content_length(body))
    return (status, headers, body)


async def send_answer(send: Send, reply: Answer) -> None:
    """Send ``reply`` as ``http.response.start`` + ``http.response.body``."""
    status, headers, body = reply
    await send(
        {"type": "http.response.start", "status": status, "headers": COMMON_HEADERS + headers}
    )
    await send({"type": "http.response.body", "body": body})


async def send_response(send: Send, status: int, headers: Headers, body: bytes = b"") -> None:
    """Send a complete response; ``headers`` must not repeat ``COMMON_HEADERS``."""
    await send_answer(send, answer(status, headers, body))


def json_answer(status: int, value: object, *, head: bool = False) -> Answer:
    body = orjson.dumps(value)
    headers: Headers = [JSON_CONTENT_TYPE, (b"cache-control", b"no-store")]
    reply = answer(status, headers, body)
    return (status, headers, b"") if head else reply


async def send_json(send: Send, status: int, value: object, *, head: bool = False) -> None:
    await send_answer(send, json_answer(status, value, head=head))


def error_answer(error: HttpError, *, head: bool = False) -> Answer:
    """``error`` as JSON (no body for HEAD, where HTTP forbids one)."""
    body = orjson.dumps({"error": {"code": error.code, "message": error.message}})
    headers: Headers = [JSON_CONTENT_TYPE, (b"cache-control", b"no-store"), *error.headers]
    reply = answer(error.status, headers, body)
    return (error.status, headers, b"") if head else reply


async def send_error(send: Send, error: HttpError, *, head: bool = False) -> None:
    """Answer ``error`` as JSON (no body for HEAD, where HTTP forbids one)."""
    await send_answer(send, error_answer(error, head=head))


async def preflight(send: Send) -> None:
    """Answer a CORS preflight (``OPTIONS``) for any path."""
    await send({"type": "http.response.start", "status": 204, "headers": _PREFLIGHT})
    await send({"type": "http.response.body", "body": b""})
