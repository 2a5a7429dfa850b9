"""Live reads over Server-Sent Events (PROTOCOL.md §5.8).

Each batch is one ``event: data`` followed by one ``event: control`` (camelCase JSON), sent in a
single write. Text and JSON streams carry UTF-8 text; every other content type is base64 with
``stream-sse-data-encoding: base64``. A connection ends after a closure event, after about
``sse_reconnect_seconds`` (so CDNs can collapse readers, §10.2), on shutdown, or when the client
goes away.
"""

from __future__ import annotations

import asyncio
import base64
import time

import orjson

from millstream.log import (
    LogError,
    ReadResult,
    format_offset,
    is_json_content_type,
    normalize_content_type,
)

from ._cursor import response_cursor
from ._headers import ReadQuery
from ._jsonmode import wrap_json
from ._responses import COMMON_HEADERS
from ._settings import Settings
from ._types import Headers, Receive, Send

__all__ = ["handle_sse"]


def _data_lines(text: bytes) -> bytes:
    """``text`` as SSE ``data:`` lines; line breaks inside the payload start new lines.

    Parsers drop one space after ``data:``; we add one only when a line itself starts with a
    space, so such payloads survive (the conformance suite expects ``data:`` without it).
    """
    if b"\n" in text or b"\r" in text:
        text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        prefix = b"data: " if text.startswith(b" ") or b"\n " in text else b"data:"
        return prefix + text.replace(b"\n", b"\n" + prefix) + b"\n"
    return (b"data: " if text.startswith(b" ") else b"data:") + text + b"\n"


def _control(next_position: int, *, closed: bool, up_to_date: bool, cursor: str | None) -> bytes:
    fields: dict[str, object] = {"streamNextOffset": format_offset(next_position)}
    if closed:
        fields["streamClosed"] = True
        fields["upToDate"] = True
    else:
        fields["streamCursor"] = response_cursor(cursor)
        if up_to_date:
            fields["upToDate"] = True
    return b"event: control\ndata:" + orjson.dumps(fields) + b"\n\n"


async def _watch_disconnect(receive: Receive, task: asyncio.Task[None] | None) -> None:
    """Cancel the streaming task when the client disconnects."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if task is not None:
                task.cancel()
            return


async def handle_sse(
    settings: Settings, path: str, query: ReadQuery, receive: Receive, send: Send
) -> None:
    store = settings.store
    info = await store.head(path)  # 404/410 before the response starts
    content_type = info.config.content_type
    media = normalize_content_type(content_type)
    json_mode = is_json_content_type(content_type)
    binary = not (json_mode or media.startswith("text/"))
    headers: Headers = [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ]
    if binary:
        headers.append((b"stream-sse-data-encoding", b"base64"))
    position = info.tail if query.offset is None else query.offset
    read = await store.read(path, position)  # validates the offset before the response starts
    await send({"type": "http.response.start", "status": 200, "headers": COMMON_HEADERS + headers})
    watcher = asyncio.ensure_future(_watch_disconnect(receive, asyncio.current_task()))
    try:
        await _stream(settings, path, query, send, read, json_mode=json_mode, binary=binary)
    except asyncio.CancelledError:
        if not watcher.done():
            raise
        return  # the client went away
    except LogError:
        pass  # deleted or expired mid-stream: end the response
    finally:
        watcher.cancel()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _stream(
    settings: Settings,
    path: str,
    query: ReadQuery,
    send: Send,
    read: ReadResult,
    *,
    json_mode: bool,
    binary: bool,
) -> None:
    store = settings.store
    frames = settings.sse_frames
    deadline = time.monotonic() + settings.sse_reconnect_seconds
    position = read.start
    while True:
        chunk = b""
        if read.payloads:
            cached = frames.get(read.stream_id, read.start, read.next)
            if cached is None:
                payload = wrap_json(read.payloads) if json_mode else b"".join(read.payloads)
                if binary:
                    payload = base64.b64encode(payload)
                cached = b"event: data\n" + _data_lines(payload) + b"\n"
                frames.put(read.stream_id, read.start, read.next, cached)
            chunk = cached
            position = read.next
        at_tail = read.next >= read.tail
        closed = read.closed and at_tail
        chunk += _control(position, closed=closed, up_to_date=at_tail, cursor=query.cursor)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if closed:
            return
        if not at_tail:
            read = await store.read(path, position)
            continue
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            changed = await store.wait(path, position, min(remaining, settings.long_poll_timeout))
            if store.notifier.closing:
                # Shutdown: tell the reader where it stands, then end the response cleanly.
                read = await store.read(path, position)
                last = _control(
                    position,
                    closed=read.closed and read.tail <= position,
                    up_to_date=read.tail <= position,
                    cursor=query.cursor,
                )
                await send({"type": "http.response.body", "body": last, "more_body": True})
                return
            if changed:
                break
            keepalive = _control(position, closed=False, up_to_date=True, cursor=query.cursor)
            await send({"type": "http.response.body", "body": keepalive, "more_body": True})
        read = await store.read(path, position)
