"""Reads: HEAD (§5.5), catch-up GET (§5.6) and long-poll (§5.7), with ETag/304 and caching (§10).

A read joins the stored payloads in one call (JSON streams: one array); no per-byte Python work.
"""

from __future__ import annotations

import time

from millstream.log import ReadResult, StreamConfig, StreamInfo, is_json_content_type

from ._cursor import response_cursor
from ._headers import ReadQuery, RequestHeaders
from ._jsonmode import wrap_json
from ._responses import Answer, content_length, next_offset_header
from ._settings import Settings
from ._types import Headers
from ._writes import stream_info_headers

__all__ = ["get_answer", "head_answer"]

_NO_STORE = (b"cache-control", b"no-store")
_UP_TO_DATE = (b"stream-up-to-date", b"true")
_CLOSED = (b"stream-closed", b"true")
_PUBLIC_MAX_AGE = 60
_CONFIG_CACHE_SIZE = 100_000


async def head_answer(settings: Settings, path: str) -> Answer:
    info = await settings.store.head(path)
    headers = stream_info_headers(info)
    headers.append(_NO_STORE)
    return (200, headers, b"")


def _cache_control(info_expires_at: float | None) -> tuple[bytes, bytes]:
    """Catch-up chunks are immutable: cacheable for a minute, never past an absolute expiry."""
    max_age = _PUBLIC_MAX_AGE
    if info_expires_at is not None:
        max_age = max(0, min(max_age, int(info_expires_at - time.time())))
    return (
        b"cache-control",
        f"public, max-age={max_age}, stale-while-revalidate=300".encode(),
    )


def _etag(read: ReadResult, closed_at_tail: bool) -> bytes:
    suffix = ":c" if closed_at_tail else ""
    return f'"{read.stream_id}:{read.start}:{read.next}{suffix}"'.encode()


def _etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    if if_none_match.strip() == b"*":
        return True
    for candidate in if_none_match.split(b","):
        candidate = candidate.strip()
        if candidate.startswith(b"W/"):
            candidate = candidate[2:]
        if candidate == etag or b'"' + candidate + b'"' == etag:
            return True
    return False


def _empty_live(info_closed: bool, tail: int, query: ReadQuery) -> Answer:
    """A long-poll that ends without data: 204 with the tail, up-to-date, EOF if closed."""
    headers: Headers = [
        next_offset_header(tail),
        _UP_TO_DATE,
        _NO_STORE,
    ]
    if info_closed:
        headers.append(_CLOSED)
    else:
        headers.append((b"stream-cursor", response_cursor(query.cursor).encode()))
    return (204, headers, b"")


async def get_answer(
    settings: Settings, path: str, query: ReadQuery, headers: RequestHeaders
) -> Answer:
    """A catch-up or long-poll GET (§5.6-5.7); long-polls wait here for data."""
    store = settings.store
    start = query.offset
    info: StreamInfo | None = None
    if start is None:  # offset=now
        info = await store.head(path)
        start = info.tail
        if not query.live or info.closed:
            read = await store.read(path, start)  # renews a sliding TTL
            return _now(info, read, query)
    read = await store.read(path, start)
    if query.live == "long-poll" and not read.payloads:
        if read.closed:
            return _empty_live(True, read.tail, query)
        await store.wait(path, start, settings.long_poll_timeout)
        read = await store.read(path, start)
        if not read.payloads:
            return _empty_live(read.closed, read.tail, query)
    config = settings.configs.get(read.stream_id)
    if config is None:
        info = info if info is not None else await store.head(path)
        config = info.config
        if info.stream_id == read.stream_id:
            if len(settings.configs) >= _CONFIG_CACHE_SIZE:
                settings.configs.clear()
            settings.configs[read.stream_id] = config
    return _read_answer(config, read, query, headers)


def _now(info: StreamInfo, read: ReadResult, query: ReadQuery) -> Answer:
    """``offset=now`` in catch-up mode (or on a closed stream): no data, the tail (§8)."""
    if query.live == "long-poll":
        return _empty_live(read.closed, read.tail, query)
    content_type = info.config.content_type
    body = b"[]" if is_json_content_type(content_type) else b""
    answer: Headers = [
        (b"content-type", content_type.encode()),
        next_offset_header(read.tail),
        _UP_TO_DATE,
        _NO_STORE,
        content_length(body),
    ]
    if read.closed:
        answer.append(_CLOSED)
    return (200, answer, body)


def _read_answer(
    config: StreamConfig, read: ReadResult, query: ReadQuery, headers: RequestHeaders
) -> Answer:
    at_tail = read.next >= read.tail
    closed_at_tail = read.closed and at_tail
    etag = _etag(read, closed_at_tail)
    answer: Headers = [
        next_offset_header(read.next),
        (b"etag", etag),
    ]
    if at_tail:
        answer.append(_UP_TO_DATE)
    if closed_at_tail:
        answer.append(_CLOSED)
    if query.live and not closed_at_tail:
        answer.append((b"stream-cursor", response_cursor(query.cursor).encode()))
    if read.payloads:
        expires = config.expires_at.timestamp() if config.expires_at is not None else None
        answer.append(_cache_control(expires))
    else:
        answer.append(_NO_STORE)
    if_none_match = headers.get(b"if-none-match")
    if if_none_match is not None and _etag_matches(if_none_match, etag):
        return (304, answer, b"")
    if is_json_content_type(config.content_type):
        body = wrap_json(read.payloads)
    elif len(read.payloads) == 1:
        body = read.payloads[0]
    else:
        body = b"".join(read.payloads)
    answer.append((b"content-type", config.content_type.encode()))
    answer.append(content_length(body))
    return (200, answer, body)
