"""The read session: an I/O-free state machine deciding every read request and turning each
response into ``Chunk``s, shared by ``StreamResponse`` and ``AsyncStreamResponse``.

Exactly-once resume: ``offset`` only moves when a chunk is handed out, and a chunk is only
formed from a complete body (catch-up, long-poll) or from SSE data events *closed by their
control event* (whose ``streamNextOffset`` covers them). If a connection drops anywhere else,
the next request starts from the offset after the last chunk handed out: nothing is lost and
nothing is delivered twice.

Requests (as the official client makes them): the first request, and every request until the
read is up to date, is a plain catch-up GET (cacheable by CDNs); live modes then go on with
``live=long-poll`` or ``live=sse``.

Stopping rules (seed "Live Modes", PROTOCOL.md 5.6-5.8): ``Stream-Closed`` / ``streamClosed``
always ends the read (EOF). ``live=False`` ends at up-to-date, and so do ``read_*`` in every
mode; iteration in ``"auto"`` (``True``), ``"long-poll"`` and ``"sse"`` continues until EOF.
An idle live connection that times out is reconnected, unless the caller set ``timeout=``:
then the timeout ends the read (``FetchTimeoutError``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from millstream.client import _core
from millstream.client._errors import (
    DurableStreamError,
    FetchTimeoutError,
    SSEEncodingError,
    SSENotSupportedError,
)
from millstream.client._sse import SSEParser, SSEProtocolError
from millstream.client._types import HeadersLike, LiveMode, ParamsLike, TimeoutLike

__all__ = ["Chunk", "ReadSession"]

Kind = Literal["body", "sse"]
SPECIAL_OFFSETS = frozenset({"-1", "now"})


@dataclass(slots=True)
class Chunk:
    """Data handed out with the position after it: raw bytes, or for SSE text streams the
    text of each data event (``parts``), parsed only when the consumer asks for JSON."""

    data: bytes
    next_offset: str
    up_to_date: bool
    closed: bool
    cursor: str | None
    parts: list[str] | None = None

    @property
    def empty(self) -> bool:
        return not self.parts if self.parts is not None else not self.data

    def json(self) -> list[Any]:
        """The JSON messages (``PARSE_ERROR`` when the data is not JSON)."""
        if self.parts is None:
            return _core.json_items(self.data)
        items: list[Any] = []
        for part in self.parts:
            items.extend(_core.json_items(part.encode()))
        return items

    def text(self, encoding: str = "utf-8") -> str:
        if self.parts is not None:
            return "".join(self.parts)
        return self.data.decode(encoding)


class ReadSession:
    """Decides the next GET and interprets responses; performs no I/O."""

    def __init__(
        self,
        url: str,
        *,
        offset: str | None,
        live: LiveMode,
        headers: HeadersLike | None,
        params: ParamsLike | None,
        timeout: TimeoutLike,
        cursor: str | None = None,
    ) -> None:
        if live not in (False, True, "auto", "long-poll", "sse"):
            raise ValueError(f"live must be False, True, 'long-poll' or 'sse', not {live!r}")
        self.url = url
        self.offset = offset if offset is not None else "-1"
        self.start_offset = self.offset
        self.live: LiveMode = "auto" if live is True else live
        self.headers: dict[str, Any] = dict(headers or {})
        self.params: dict[str, Any] = dict(params or {})
        # A timeout the caller chose ends a live read; the default one is reconnected around.
        self.timeout_given = timeout is not None
        self.timeout = _core.make_timeout(timeout, _core.DEFAULT_TIMEOUT)
        self.cursor = cursor
        self.up_to_date = False
        self.closed = False
        self.content_type: str | None = None
        self.stop_at_up_to_date = live is False
        self.done = False
        self.went_live = False
        # The most recent response's status line and headers (StreamResponse.status, ...).
        self.status = 0
        self.reason = ""
        self.response_headers: dict[str, str] = {}
        self._sse: SSEParser | None = None
        self._base64 = False
        self._pending: list[str] = []

    @property
    def is_sse(self) -> bool:
        return self.live == "sse"

    def for_read_all(self) -> None:
        """``read_*`` stop once up to date, in every mode (SSE reads refuse them)."""
        self.stop_at_up_to_date = True
        if self.up_to_date:
            self.done = True

    def finished(self) -> bool:
        """True once the read is over (a method, so type checkers re-read it after I/O)."""
        return self.done

    def apply_fix(self, headers: Mapping[str, str], params: Mapping[str, str]) -> None:
        """What an ``on_error`` callback returned: merged into every later request."""
        self.headers.update(headers)
        self.params.update(params)

    def next_request(self) -> _core.Request:
        params = dict(self.params)
        params["offset"] = self.offset
        timeout = self.timeout
        headers = self.headers
        live = self.live_request
        if live:
            self.went_live = True
            params["live"] = "sse" if self.is_sse else "long-poll"
            if not self.timeout_given:
                timeout = _core.live_timeout(timeout)
            if self.is_sse:
                headers = {"Accept": "text/event-stream", **headers}
        if self.cursor is not None:
            params["cursor"] = self.cursor
        # Sorted query keys help CDN cache hits (PROTOCOL.md 10.1).
        return _core.Request(
            "GET",
            self.url,
            headers=headers,
            params=dict(sorted(params.items())),
            timeout=timeout,
            long_lived=live,
        )

    @property
    def live_request(self) -> bool:
        """The next request waits for data (fetch-then-live: only once caught up)."""
        return self.live is not False and (self.up_to_date or self.went_live)

    def error_for(self, status: int, headers: Mapping[str, str], body: bytes) -> Exception:
        if status == 400 and self.is_sse and self.went_live:
            return SSENotSupportedError(self.content_type, url=self.url)
        return _core.error_from_response(status, headers, body, self.url, "read")

    def on_head(self, status: int, reason: str, headers: Mapping[str, str]) -> Kind:
        """A 2xx response's status line and headers arrived."""
        self.status, self.reason = status, reason
        self.response_headers = dict(headers)
        content_type = headers.get("content-type")
        if _core.media_type(content_type) == "text/event-stream":
            self._sse = SSEParser()
            self._pending = []
            self._base64 = (headers.get(_core.SSE_ENCODING) or "").strip().lower() == "base64"
            return "sse"
        if content_type and status != 204:
            self.content_type = content_type
        return "body"

    def on_body(self, status: int, headers: Mapping[str, str], body: bytes) -> Chunk:
        """A catch-up or long-poll response completed (204 = long-poll timeout, no data)."""
        next_offset = headers.get(_core.NEXT_OFFSET)
        if next_offset is None:
            raise DurableStreamError(
                "Read response has no Stream-Next-Offset header",
                code="PROTOCOL",
                hint="the URL does not look like a Durable Streams server",
                url=self.url,
            )
        cursor = headers.get(_core.CURSOR)
        closed = _core.is_true(headers.get(_core.CLOSED))
        up_to_date = closed or _core.is_true(headers.get(_core.UP_TO_DATE)) or status == 204
        return self._deliver(
            body if status != 204 else b"", None, next_offset, up_to_date, closed, cursor
        )

    def feed_sse(self, data: bytes) -> list[Chunk]:
        """Bytes of an SSE body; returns the chunks completed by control events."""
        assert self._sse is not None
        chunks: list[Chunk] = []
        for event in self._sse.feed(data):
            if event.event == "data":
                self._pending.append(event.data)
            elif event.event == "control":
                chunks.append(self._control(event.data))
                if self.done:
                    break
        return chunks

    def end_sse(self) -> None:
        """The SSE connection ended: data not closed by a control event is dropped (it will be
        read again from ``offset``)."""
        self._sse = None
        self._pending = []

    def _control(self, text: str) -> Chunk:
        try:
            control = orjson.loads(text)
            next_offset = str(control["streamNextOffset"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise SSEProtocolError(
                f"Failed to parse SSE control event: {text[:200]!r}", code="PARSE_ERROR"
            ) from exc
        closed = control.get("streamClosed") is True
        up_to_date = closed or control.get("upToDate") is True
        cursor = control.get("streamCursor")
        pending, self._pending = self._pending, []
        parts: list[str] | None = None
        data = b""
        if self._base64:
            try:
                data = b"".join(
                    base64.b64decode(p.replace("\n", "").replace("\r", ""), validate=True)
                    for p in pending
                )
            except (binascii.Error, ValueError) as exc:
                raise SSEEncodingError(f"Failed to decode base64 SSE data: {exc}") from exc
        else:
            parts = pending
        return self._deliver(
            data,
            parts,
            next_offset,
            up_to_date,
            closed,
            cursor if isinstance(cursor, str) else None,
        )

    def _deliver(
        self,
        data: bytes,
        parts: list[str] | None,
        next_offset: str,
        up_to_date: bool,
        closed: bool,
        cursor: str | None,
    ) -> Chunk:
        if not data and not parts and self._behind(next_offset):
            # Offsets sort lexicographically (PROTOCOL.md section 2). An empty answer naming an
            # offset before the one we asked from is a stale tail (seen from the Node
            # reference server answering a long-poll right after a restart, test_faults
            # test_server_killed_and_restarted_reader_resumes): moving back would deliver the
            # messages in between twice, so keep our position.
            next_offset = self.offset
        self.offset = next_offset
        if cursor is not None:
            self.cursor = cursor
        self.up_to_date = up_to_date
        self.closed = self.closed or closed
        if closed or (up_to_date and self.stop_at_up_to_date):
            self.done = True
        return Chunk(data, next_offset, up_to_date, closed, cursor, parts)

    def _behind(self, next_offset: str) -> bool:
        """True when ``next_offset`` sorts before our real (not ``-1``/``now``) offset."""
        return self.offset not in SPECIAL_OFFSETS and next_offset < self.offset

    def reconnect_now(self, error: DurableStreamError) -> bool:
        """An idle live connection timing out is not a failure: reconnect at once (unless
        the caller set the timeout: then it ends the read)."""
        return isinstance(error, FetchTimeoutError) and self.live_request and not self.timeout_given

    def timed_out(self, error: DurableStreamError) -> bool:
        """The caller's own timeout expired on a live request: the read ends with it."""
        return isinstance(error, FetchTimeoutError) and self.live_request and self.timeout_given
