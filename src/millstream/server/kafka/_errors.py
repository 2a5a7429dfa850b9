"""Log errors as Kafka error codes: the one translation table of the Kafka door."""

from __future__ import annotations

from millstream.log import (
    ContentTypeMismatch,
    CorruptBatch,
    DuplicateSequence,
    InvalidConfig,
    InvalidPartitions,
    InvalidRequest,
    InvalidTopic,
    LogError,
    OffsetOutOfRange,
    ProducerSequenceGap,
    StaleProducerEpoch,
    StorageError,
    StreamClosed,
    StreamGone,
    StreamNotFound,
    TopicExists,
    UnknownProducerId,
)

from .codec import ErrorCode

__all__ = ["error_code"]

# Most specific first: the first class that matches decides.
_CODES: tuple[tuple[type[LogError], ErrorCode], ...] = (
    (StreamNotFound, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    (StreamGone, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    (TopicExists, ErrorCode.TOPIC_ALREADY_EXISTS),
    (InvalidTopic, ErrorCode.INVALID_TOPIC_EXCEPTION),
    (InvalidPartitions, ErrorCode.INVALID_PARTITIONS),
    (InvalidConfig, ErrorCode.INVALID_CONFIG),
    (CorruptBatch, ErrorCode.CORRUPT_MESSAGE),
    (OffsetOutOfRange, ErrorCode.OFFSET_OUT_OF_RANGE),
    (UnknownProducerId, ErrorCode.UNKNOWN_PRODUCER_ID),
    (ProducerSequenceGap, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER),
    (DuplicateSequence, ErrorCode.DUPLICATE_SEQUENCE_NUMBER),
    (StaleProducerEpoch, ErrorCode.INVALID_PRODUCER_EPOCH),
    # A closed stream takes no more writes over either door; a Kafka producer must not retry.
    (StreamClosed, ErrorCode.INVALID_RECORD),
    (ContentTypeMismatch, ErrorCode.INVALID_RECORD),
    (StorageError, ErrorCode.KAFKA_STORAGE_ERROR),
    (InvalidRequest, ErrorCode.INVALID_REQUEST),
)


def error_code(exc: LogError) -> ErrorCode:
    """The Kafka error code a client gets for ``exc`` (``UNKNOWN_SERVER_ERROR`` if unmapped)."""
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return ErrorCode.UNKNOWN_SERVER_ERROR
