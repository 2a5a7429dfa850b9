"""Public value types of the client (seed's ``StreamEvent``, ``HeadResult``, ...) and aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeAlias, TypeVar

import httpx

__all__ = [
    "AppendResult",
    "CloseResult",
    "HeadResult",
    "HeadersLike",
    "IdempotentAppendResult",
    "LiveMode",
    "Offset",
    "OnError",
    "ParamsLike",
    "SSEEncoding",
    "StreamEvent",
    "TimeoutLike",
]

T = TypeVar("T")

# True is the official client's name for "auto"; both mean the same.
LiveMode: TypeAlias = Literal["auto", "long-poll", "sse"] | bool
Offset: TypeAlias = str
# How the server encoded SSE data events of a binary stream (Stream-SSE-Data-Encoding).
SSEEncoding: TypeAlias = Literal["base64"]
# A value, or a callable re-evaluated before every request (e.g. a token that refreshes);
# the async twins also await a callable that returns an awaitable.
HeaderValue: TypeAlias = str | Callable[[], str] | Callable[[], Awaitable[str]]
HeadersLike: TypeAlias = Mapping[str, HeaderValue]
# A None value leaves the parameter out.
ParamsLike: TypeAlias = Mapping[str, HeaderValue | None]
TimeoutLike: TypeAlias = float | httpx.Timeout | None
# on_error(error) -> None to raise it, or {"headers": {...}, "params": {...}} to retry with them.
OnError: TypeAlias = Callable[
    [Exception], "Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None"
]


@dataclass(frozen=True, slots=True)
class StreamEvent(Generic[T]):
    """One delivered piece of a stream with the position after it; ``data`` is None for an
    event that only reports news (caught up, or the end of a closed stream)."""

    data: T | None
    next_offset: str
    up_to_date: bool
    cursor: str | None = None
    closed: bool = False


@dataclass(frozen=True, slots=True)
class HeadResult:
    """Metadata from ``HEAD``: the stream exists; its content type and tail offset."""

    exists: Literal[True]
    content_type: str | None = None
    offset: str | None = None
    etag: str | None = None
    cache_control: str | None = None
    stream_closed: bool = False
    ttl_seconds: int | None = None
    expires_at: str | None = None

    @property
    def closed(self) -> bool:
        """The stream accepts no more appends (the same as ``stream_closed``)."""
        return self.stream_closed


@dataclass(frozen=True, slots=True)
class AppendResult:
    """The stream's tail offset after the append (for a batched append, after its batch)."""

    next_offset: str
    closed: bool = False


@dataclass(frozen=True, slots=True)
class CloseResult:
    """The final offset of a closed stream."""

    final_offset: str


@dataclass(frozen=True, slots=True)
class IdempotentAppendResult:
    """An idempotent producer's batch outcome; ``duplicate`` when the server had it already."""

    offset: str
    duplicate: bool
