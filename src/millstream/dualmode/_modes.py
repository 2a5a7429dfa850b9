"""Batch or stream: the seed's ``ResponseMode`` and the ways a request chooses one.

Priority, everywhere (``negotiate_mode``, ``ModeDetector``, ``@dual_mode``): the ``stream``
query parameter, then ``format`` (``stream``/``batch``; ``auto`` defers), then the ``Accept``
header (``text/event-stream`` means stream), then batch. A value we do not know is a 400, never
a silent guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Literal

from fastapi import Query
from starlette.requests import HTTPConnection

from ._errors import InvalidModeError

__all__ = [
    "ModeDetector",
    "ResponseMode",
    "accepts_event_stream",
    "choose_mode",
    "detect_mode",
    "detect_response_mode",
    "mode_from_query",
    "negotiate_mode",
]

EVENT_STREAM = "text/event-stream"
# The spellings FastAPI (pydantic) accepts for a bool query parameter.
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


class ResponseMode(StrEnum):
    """How one request is answered: the whole result as JSON, or Server-Sent Events."""

    BATCH = "batch"
    STREAM = "stream"


def accepts_event_stream(accept: str) -> bool:
    """True when an ``Accept`` header lists ``text/event-stream`` with a quality above zero."""
    if EVENT_STREAM not in accept.lower():
        return False
    for item in accept.split(","):
        media, *params = item.split(";")
        if media.strip().lower() != EVENT_STREAM:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            return True
    return False


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidModeError(f"?stream={value!r} is not a boolean")


def mode_from_query(stream: str | bool | None, format: str | None) -> ResponseMode | None:
    """What ``?stream=`` or ``?format=`` ask for, or None when they leave it to the headers."""
    if stream is not None:
        wanted = stream if isinstance(stream, bool) else parse_bool(stream)
        return ResponseMode.STREAM if wanted else ResponseMode.BATCH
    if format is not None:
        lowered = format.strip().lower()
        if lowered in ("stream", "batch"):
            return ResponseMode(lowered)
        if lowered != "auto":
            raise InvalidModeError(f"?format={format!r} is not one of stream, batch, auto")
    return None


def choose_mode(
    stream: str | bool | None, format: str | None, accept: str, default: ResponseMode
) -> ResponseMode:
    """The rule above, on plain values (query parameters as given, or already parsed)."""
    mode = mode_from_query(stream, format)
    if mode is not None:
        return mode
    if accepts_event_stream(accept):
        return ResponseMode.STREAM
    return default


def detect_mode(request: HTTPConnection) -> ResponseMode:
    """The seed's detector: STREAM when ``Accept`` asks for ``text/event-stream``, else BATCH."""
    if accepts_event_stream(request.headers.get("accept", "")):
        return ResponseMode.STREAM
    return ResponseMode.BATCH


#: The project's name for ``detect_mode``.
detect_response_mode = detect_mode


def negotiate_mode(
    request: HTTPConnection,
    stream: bool | None = Query(default=None, description="true: SSE; false: one JSON answer"),
    format: Literal["stream", "batch", "auto"] | None = Query(
        default=None, description="stream, batch, or auto (decided by the Accept header)"
    ),
) -> ResponseMode:
    """FastAPI dependency: ``?stream=``, then ``?format=``, then ``Accept``, then BATCH.

    >>> @app.get("/items")
    ... async def items(mode: ResponseMode = Depends(negotiate_mode)): ...
    """
    return choose_mode(stream, format, request.headers.get("accept", ""), ResponseMode.BATCH)


class ModeDetector:
    """A configurable detector, usable as a FastAPI dependency (``Depends(detector)``).

    The query parameters come first, as in ``negotiate_mode``; then a request matching any of
    ``stream_headers`` (header name -> substring of its value) streams, one matching any of
    ``batch_headers`` does not, and anything else gets ``default_mode``.
    """

    def __init__(
        self,
        default_mode: ResponseMode = ResponseMode.BATCH,
        stream_headers: Mapping[str, str] | None = None,
        batch_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.default_mode = ResponseMode(default_mode)
        self.stream_headers = _lowered(stream_headers or {"accept": EVENT_STREAM})
        self.batch_headers = _lowered(batch_headers or {})

    def detect(self, request: HTTPConnection) -> ResponseMode:
        query = request.query_params
        headers = request.headers
        mode = mode_from_query(query.get("stream"), query.get("format"))
        if mode is not None:
            return mode
        if _any_header(headers, self.stream_headers):
            return ResponseMode.STREAM
        if _any_header(headers, self.batch_headers):
            return ResponseMode.BATCH
        return self.default_mode

    def __call__(self, request: HTTPConnection) -> ResponseMode:
        return self.detect(request)


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value.lower() for name, value in headers.items()}


def _any_header(headers: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    for name, fragment in wanted.items():
        value = headers.get(name)
        if value is None:
            continue
        if name == "accept" and fragment == EVENT_STREAM:
            if accepts_event_stream(value):
                return True
        elif fragment in value.lower():
            return True
    return False
