"""Writing Server-Sent Events: the seed's ``SSEEvent`` and ``format_sse_*``, sans-IO.

The grammar is the W3C event-stream format (the one ``millstream.client._sse`` parses): each
line of data becomes its own ``data:`` line, where a line ends at CRLF, LF or CR and nowhere
else (``str.splitlines`` would also split at form feeds and U+2028, changing the data), and a
blank line ends the event. An ``event`` or ``id`` containing CR or LF would end its field early
and let the rest pose as fields of its own (newline injection), so both are refused, as is NUL
in an id (browsers ignore such ids).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from ._errors import SSEFormatError

__all__ = [
    "HEARTBEAT",
    "SSEEvent",
    "comment",
    "data_text",
    "encode_frame",
    "format_sse_data",
    "format_sse_event",
    "to_json",
]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS

#: A comment line: proxies see traffic, clients ignore it.
HEARTBEAT = b": keep-alive\n\n"


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> bytes:
    """``value`` as compact JSON (dataclasses, datetimes, UUIDs and pydantic models included;
    dict keys that are not strings become strings, as with ``json.dumps``)."""
    try:
        return orjson.dumps(value, default=_default)
    except TypeError:  # non-str dict keys: the option is slower, so only when needed
        return orjson.dumps(value, default=_default, option=_JSON_OPTIONS)


def data_text(data: Any) -> str:
    """The text an event carries: strings as they are, bytes as UTF-8, anything else as JSON."""
    if isinstance(data, str):
        return data
    if isinstance(data, bytes | bytearray):
        return bytes(data).decode("utf-8")
    return to_json(data).decode("utf-8")


def _check_field(name: str, value: str) -> None:
    if "\n" in value or "\r" in value or (name == "id" and "\0" in value):
        raise SSEFormatError(f"SSE {name} {value!r} contains a line break or NUL")


def _check_retry(retry: int) -> None:
    if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
        raise SSEFormatError(f"SSE retry must be a non-negative int of milliseconds, not {retry!r}")


def encode_frame(
    text: str, event: str | None = None, id: str | None = None, retry: int | None = None
) -> str:
    """One event from already-validated fields; ``text`` is split into ``data:`` lines."""
    head = ""
    if event is not None:
        head = f"event: {event}\n"
    if id is not None:
        head += f"id: {id}\n"
    if retry is not None:
        head += f"retry: {retry}\n"
    if "\n" in text or "\r" in text:
        return head + "".join(f"data: {line}\n" for line in _LINE_BREAK.split(text)) + "\n"
    return f"{head}data: {text}\n\n"


def comment(text: str = "") -> str:
    """A comment line (``: text``), e.g. a heartbeat; it must be a single line."""
    _check_field("comment", text)
    return f": {text}\n\n" if text else ":\n\n"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One event to send: ``data`` (dicts and lists as JSON), and optionally its ``event`` type,
    ``id`` (what the browser sends back as ``Last-Event-ID``) and ``retry`` (milliseconds)."""

    data: Any
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def __post_init__(self) -> None:
        if self.event is not None:
            _check_field("event", self.event)
        if self.id is not None:
            _check_field("id", self.id)
        if self.retry is not None:
            _check_retry(self.retry)

    def format(self) -> str:
        """The event as SSE text: event, id and retry lines, one data line per line, blank line."""
        return encode_frame(data_text(self.data), self.event, self.id, self.retry)


def format_sse_event(
    data: Any, event: str | None = None, id: str | None = None, retry: int | None = None
) -> str:
    """``SSEEvent(data, event, id, retry).format()``: validated, multi-line data split."""
    return SSEEvent(data, event, id, retry).format()


def format_sse_data(data: Any) -> str:
    """An unnamed event carrying only ``data`` (``data: ...`` lines and the blank line)."""
    return encode_frame(data_text(data))
