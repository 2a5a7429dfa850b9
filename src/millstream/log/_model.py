"""Typed values of the log: stream configuration, requests to the store, and its answers.

The log stores *messages*: each has a dense int64 position (its Kafka offset), its bytes and,
for the Kafka front door, an optional key, headers and timestamp. A position names the gap
*before* a message, so a stream's ``tail`` is both its message count and the next position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = [
    "AppendOutcome",
    "AppendRequest",
    "AppendResult",
    "CreateRequest",
    "CreateResult",
    "ForkSpec",
    "ProducerClaim",
    "ProducerState",
    "ReadResult",
    "StreamConfig",
    "StreamInfo",
    "is_json_content_type",
    "normalize_content_type",
]


def normalize_content_type(value: str) -> str:
    """Lower-case media type without parameters (``"Text/Plain; charset=x"`` → ``"text/plain"``)."""
    return value.split(";", 1)[0].strip().lower()


def is_json_content_type(value: str) -> bool:
    """True for streams in JSON mode (PROTOCOL.md §9.1): one message per JSON value."""
    return normalize_content_type(value) == "application/json"


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """What a stream was created with; compared field by field for idempotent create."""

    content_type: str
    ttl_seconds: int | None = None
    expires_at: datetime | None = None  # timezone-aware


@dataclass(frozen=True, slots=True)
class ForkSpec:
    """Where a fork diverges from its source (PROTOCOL.md §4.2).

    ``offset`` is a position in the source (``None`` means the source's tail at creation);
    ``sub_offset`` refines it: flattened messages for JSON streams, bytes of the message at
    ``offset`` for every other content type.
    """

    source: str
    offset: int | None = None
    sub_offset: int = 0


@dataclass(frozen=True, slots=True)
class ProducerClaim:
    """The idempotent-producer headers of one request (PROTOCOL.md §5.2.1)."""

    producer_id: str
    epoch: int
    seq: int


@dataclass(slots=True)
class ProducerState:
    """What a stream remembers of one producer: its epoch and highest accepted seq."""

    epoch: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class CreateRequest:
    config: StreamConfig
    messages: Sequence[bytes] = ()
    closed: bool = False
    fork: ForkSpec | None = None


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One append. ``messages`` may be empty only when ``close`` is set (close-only)."""

    messages: Sequence[bytes]
    content_type: str | None = None
    stream_seq: str | None = None
    producer: ProducerClaim | None = None
    close: bool = False


AppendOutcome = Literal["appended", "duplicate", "closed"]


@dataclass(frozen=True, slots=True)
class AppendResult:
    """``appended``: new data; ``duplicate``: an idempotent retry, nothing written;
    ``closed``: close-only request (or a repeat of one)."""

    outcome: AppendOutcome
    tail: int
    closed: bool
    producer_epoch: int | None = None
    producer_seq: int | None = None  # highest accepted seq for (stream, producer, epoch)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A snapshot of one stream's metadata."""

    path: str
    stream_id: int  # unique for the store's lifetime; never reused (ETags)
    config: StreamConfig
    tail: int
    closed: bool
    fork: ForkSpec | None = None  # as requested at creation, offset resolved


@dataclass(frozen=True, slots=True)
class CreateResult:
    created: bool  # False: an identical stream already existed (idempotent 200)
    info: StreamInfo


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Messages ``[start, next)`` and the stream's state when they were read."""

    payloads: list[bytes]
    start: int
    next: int
    tail: int
    closed: bool
    stream_id: int

    @property
    def up_to_date(self) -> bool:
        return self.next >= self.tail
