"""Sans-IO incremental Server-Sent Events parser: bytes in, ``SSEEvent`` out, no sockets.

Implements the W3C event-stream grammar as PROTOCOL.md section 5.8 uses it: lines end in CRLF,
LF or CR (a CR at the end of one chunk may pair with an LF at the start of the next); ``data:``
lines of one event join with ``\\n``; one optional space after the colon is dropped; lines
starting with ``:`` are comments; a blank line dispatches the event. Bytes after the last blank
line are an unfinished event and are dropped at end of input, as the grammar says.
"""

from __future__ import annotations

from dataclasses import dataclass

from millstream.client._errors import DurableStreamError

__all__ = ["SSEEvent", "SSEParser", "SSEProtocolError"]

DEFAULT_MAX_EVENT_BYTES = 64 * 1024 * 1024


class SSEProtocolError(DurableStreamError):
    """The event stream broke the grammar or a size bound."""

    default_code = "SSE_PROTOCOL"
    default_hint = "the server sent a malformed or oversized event stream"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its type (``message`` when unnamed) and joined data text."""

    event: str
    data: str
    id: str | None = None


class SSEParser:
    """Feed any-sized chunks with ``feed``; it returns every event completed so far."""

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._partial = b""  # an unfinished line (or a lone trailing CR)
        self._event = ""
        self._data: list[bytes] = []
        self._data_size = 0
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse ``chunk``; return the events it completes, in order."""
        buffer = self._partial + chunk if self._partial else chunk
        if not buffer:
            return []
        hold_cr = buffer.endswith(b"\r")
        if hold_cr:
            buffer = buffer[:-1]
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        rest = lines.pop()
        if hold_cr:
            # The CR ends ``rest`` as a line unless an LF follows it in the next chunk.
            self._partial = rest + b"\r"
        else:
            self._partial = rest
        if len(self._partial) + self._data_size > self._max:
            raise SSEProtocolError(f"SSE event larger than {self._max} bytes")
        events: list[SSEEvent] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SSEEvent]:
        """End of input: a held CR ends its line; an event without its blank line is dropped."""
        events: list[SSEEvent] = []
        if self._partial.endswith(b"\r"):
            event = self._line(self._partial[:-1])
            if event is not None:
                events.append(event)
        self._partial = b""
        self._event, self._data, self._data_size = "", [], 0
        return events

    def _line(self, line: bytes) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == 0x3A:  # ":" comment
            return None
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
            self._data_size += len(value) + 1
            if self._data_size > self._max:
                raise SSEProtocolError(f"SSE event larger than {self._max} bytes")
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id" and b"\x00" not in value:
            self._last_id = value.decode("utf-8", "replace")
        # "retry" and unknown fields are ignored, as the grammar says.
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = ""
            return None
        try:
            data = b"\n".join(self._data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SSEProtocolError("SSE event data is not UTF-8") from exc
        event = SSEEvent(self._event or "message", data, self._last_id)
        self._event, self._data, self._data_size = "", [], 0
        return event
