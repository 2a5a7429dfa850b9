"""Errors the log raises. Front doors translate each into their protocol's answer.

LogError
├── StreamNotFound            no such stream (or it expired)
├── StreamGone                soft-deleted: forks still read it, clients get 410
├── StreamConflict            create/fork config differs from what exists (409)
├── StreamClosed              append to a closed stream (409 + Stream-Closed)
├── ContentTypeMismatch       append content type differs from the stream's (409)
├── StreamSeqConflict         Stream-Seq not strictly increasing (409)
├── StaleProducerEpoch        producer epoch below the stream's (403, zombie fencing)
├── ProducerSequenceGap       producer seq skips ahead (409)
├── InvalidRequest            the request is malformed for the log (400)
└── StorageError              the store could not do its job (retryable, 503)
"""

from __future__ import annotations

__all__ = [
    "ContentTypeMismatch",
    "InvalidRequest",
    "LogError",
    "ProducerSequenceGap",
    "StaleProducerEpoch",
    "StorageError",
    "StreamClosed",
    "StreamConflict",
    "StreamGone",
    "StreamNotFound",
    "StreamSeqConflict",
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


class InvalidRequest(LogError):
    code = "invalid_request"


class StorageError(LogError):
    code = "storage_error"
    retryable = True
