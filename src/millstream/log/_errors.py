"""Errors the log raises. Front doors translate each into their protocol's answer.

LogError
├── StreamNotFound            no such stream (or it expired)
│   └── TopicNotFound         no such topic (Kafka UNKNOWN_TOPIC_OR_PARTITION)
├── StreamGone                soft-deleted: forks still read it, clients get 410
├── StreamConflict            create/fork config differs from what exists (409)
│   └── TopicExists           Kafka TOPIC_ALREADY_EXISTS
├── StreamClosed              append to a closed stream (409 + Stream-Closed)
├── ContentTypeMismatch       append content type differs from the stream's (409)
├── StreamSeqConflict         Stream-Seq not strictly increasing (409)
├── StaleProducerEpoch        producer epoch below the stream's (403, zombie fencing)
├── ProducerSequenceGap       producer seq skips ahead (409; Kafka OUT_OF_ORDER_SEQUENCE_NUMBER)
│   └── UnknownProducerId     Kafka: a producer id this stream never saw, not at sequence 0
├── DuplicateSequence         Kafka: a retry older than the batches the log remembers
├── KvConflict                a key-value expectation failed; nothing was written
├── InvalidRequest            the request is malformed for the log (400)
│   ├── OffsetOutOfRange      a position below the log start or past the tail
│   ├── CorruptBatch          a Kafka record batch fails its checks (Kafka CORRUPT_MESSAGE)
│   ├── InvalidTopic          not a legal topic name (Kafka INVALID_TOPIC_EXCEPTION)
│   ├── InvalidPartitions     a partition count that cannot be (Kafka INVALID_PARTITIONS)
│   └── InvalidConfig         an unknown or invalid topic config (Kafka INVALID_CONFIG)
└── StorageError              the store could not do its job (retryable, 503)
"""

from __future__ import annotations

__all__ = [
    "ContentTypeMismatch",
    "CorruptBatch",
    "DuplicateSequence",
    "InvalidConfig",
    "InvalidPartitions",
    "InvalidRequest",
    "InvalidTopic",
    "KvConflict",
    "LogError",
    "OffsetOutOfRange",
    "ProducerSequenceGap",
    "StaleProducerEpoch",
    "StorageError",
    "StreamClosed",
    "StreamConflict",
    "StreamGone",
    "StreamNotFound",
    "StreamSeqConflict",
    "TopicExists",
    "TopicNotFound",
    "UnknownProducerId",
]


class LogError(Exception):
    """Base of every error the log raises; ``code`` is a stable machine-readable name."""

    code = "log_error"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StreamNotFound(LogError):
    code = "stream_not_found"


class StreamGone(LogError):
    code = "stream_gone"


class StreamConflict(LogError):
    code = "stream_conflict"


class StreamClosed(LogError):
    """Append refused because the stream is closed; ``tail`` is its final position."""

    code = "stream_closed"

    def __init__(self, message: str, *, tail: int) -> None:
        super().__init__(message)
        self.tail = tail


class ContentTypeMismatch(LogError):
    code = "content_type_mismatch"


class StreamSeqConflict(LogError):
    code = "stream_seq_conflict"


class StaleProducerEpoch(LogError):
    """The producer's epoch is older than the stream's; ``current_epoch`` is the stream's."""

    code = "stale_producer_epoch"

    def __init__(self, message: str, *, current_epoch: int) -> None:
        super().__init__(message)
        self.current_epoch = current_epoch


class ProducerSequenceGap(LogError):
    code = "producer_sequence_gap"

    def __init__(self, message: str, *, expected: int, received: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.received = received


class UnknownProducerId(ProducerSequenceGap):
    """Kafka idempotence: the stream has no state for this producer id and the batch does not
    start at sequence 0 (e.g. the topic was deleted and re-created under a running producer).
    Kafka answers UNKNOWN_PRODUCER_ID, on which clients reset their sequence (KIP-360)."""

    code = "unknown_producer_id"


class DuplicateSequence(LogError):
    """Kafka idempotence: the batch repeats sequence numbers the producer already used, but
    older than the last batches the log remembers (so its original offset is unknown)."""

    code = "duplicate_sequence"


class KvConflict(LogError):
    """A ``KvWrite`` expectation failed (``key`` in ``namespace``); the whole write was refused."""

    code = "kv_conflict"

    def __init__(self, message: str, *, namespace: str, key: str) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.key = key


class InvalidRequest(LogError):
    code = "invalid_request"


class OffsetOutOfRange(InvalidRequest):
    """A read or truncation names a position outside ``[log_start, tail]``."""

    code = "offset_out_of_range"

    def __init__(self, message: str, *, log_start: int, tail: int) -> None:
        super().__init__(message)
        self.log_start = log_start
        self.tail = tail


class CorruptBatch(InvalidRequest):
    """A Kafka record batch is malformed: wrong length or magic, CRC-32C mismatch, or records
    that do not decode. The Kafka door answers CORRUPT_MESSAGE."""

    code = "corrupt_batch"


class StorageError(LogError):
    code = "storage_error"
    retryable = True


class TopicNotFound(StreamNotFound):
    code = "topic_not_found"


class TopicExists(StreamConflict):
    code = "topic_exists"


class InvalidTopic(InvalidRequest):
    code = "invalid_topic"


class InvalidPartitions(InvalidRequest):
    code = "invalid_partitions"


class InvalidConfig(InvalidRequest):
    code = "invalid_config"
