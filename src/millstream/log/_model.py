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
    "BatchReadResult",
    "CreateRequest",
    "CreateResult",
    "ForkSpec",
    "KafkaBatch",
    "KvItem",
    "KvWrite",
    "ProduceResult",
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
class KvWrite:
    """One change to the store's small key-value table (service state, topics, groups).

    ``value=None`` deletes. ``expect_version``: ``None`` writes unconditionally, ``0`` requires
    that the key does not exist, ``n`` requires the key to be at version ``n`` (compare-and-set).
    A write with ``check_only`` changes nothing; it only makes the whole batch depend on the
    expectation (fencing by a record that is not itself rewritten, e.g. a group's generation).
    """

    namespace: str
    key: str
    value: bytes | None
    expect_version: int | None = None
    check_only: bool = False


@dataclass(frozen=True, slots=True)
class KvItem:
    """A stored value and its version: unique across the store and increasing, never reused
    (so a deleted and re-created key never matches an old expectation)."""

    value: bytes
    version: int


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One append. ``messages`` may be empty only when ``close`` is set (close-only).

    ``kv`` writes commit in the same transaction as the messages (both or neither): a service
    records its progress together with the data it produced. A failed expectation raises
    ``KvConflict`` and appends nothing.
    """

    messages: Sequence[bytes]
    content_type: str | None = None
    stream_seq: str | None = None
    producer: ProducerClaim | None = None
    close: bool = False
    kv: Sequence[KvWrite] = ()


@dataclass(frozen=True, slots=True)
class KafkaBatch:
    """One Kafka v2 RecordBatch (magic 2) as the producer sent it, and what the log needs of
    its header (parsed once by ``millstream.log.parse_batch``; records are never decoded on
    write).

    ``data`` is the whole batch from its baseOffset field on: bytes, or a view of the request
    it came in (``split_batches`` copies nothing; stores copy what they keep). The store
    assigns the batch its base offset by rewriting the first 8 bytes, which the CRC-32C does
    not cover. With
    ``log_append_time`` it also sets the timestamp-type bit and maxTimestamp and recomputes the
    CRC (as a Kafka broker does for a LogAppendTime topic). ``attributes`` is the header's
    attributes field (compression, transactional and control bits; ``_batches`` documents it).
    """

    data: bytes | memoryview
    record_count: int  # lastOffsetDelta + 1: the positions this entry spans
    first_timestamp_ms: int
    max_timestamp_ms: int
    producer_id: int = -1  # -1: not idempotent
    producer_epoch: int = -1
    base_sequence: int = -1
    log_append_time: bool = False  # the topic stamps LogAppendTime instead of CreateTime
    attributes: int = 0


@dataclass(frozen=True, slots=True)
class ProduceResult:
    """Where a batch landed; ``duplicate``: a retry already stored at ``base_offset``."""

    base_offset: int
    log_append_time_ms: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int
    duplicate: bool = False


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
    log_start: int = 0  # positions below were truncated (Kafka DeleteRecords)


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


@dataclass(frozen=True, slots=True)
class BatchReadResult:
    """Kafka v2 record batches holding positions from ``start`` on, for the Kafka front door.

    Stored Kafka batches pass through as the producer's bytes (base offset rewritten); runs of
    Durable Streams messages are encoded as batches (key null, no headers, append timestamp)
    once and cached. The first batch may begin before ``start`` (Kafka clients skip the records
    below their fetch offset), and at least one batch is returned when any exist.
    """

    batches: list[bytes]
    start: int
    next: int  # the position after the last record returned
    high_watermark: int  # the stream's tail
    log_start: int
    stream_id: int
