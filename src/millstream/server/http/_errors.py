"""HTTP errors and the one table that maps every ``millstream.log`` error to a protocol status.

Every error answer carries a JSON body ``{"error": {"code": ..., "message": ...}}`` so clients
and humans both see why; protocol headers (``Stream-Closed``, ``Producer-Epoch``, ...) ride along
where PROTOCOL.md §5.2 requires them.
"""

from __future__ import annotations

from millstream.log import (
    ContentTypeMismatch,
    InvalidRequest,
    LogError,
    ProducerSequenceGap,
    StaleProducerEpoch,
    StorageError,
    StreamClosed,
    StreamConflict,
    StreamGone,
    StreamNotFound,
    StreamSeqConflict,
    format_offset,
)

from ._types import Headers

__all__ = ["HttpError", "bad_request", "from_log_error"]


class HttpError(Exception):
    """A request the server answers with ``status`` and a JSON error body."""

    def __init__(
        self, status: int, code: str, message: str, headers: Headers | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers: Headers = headers if headers is not None else []


def bad_request(message: str, code: str = "bad_request") -> HttpError:
    return HttpError(400, code, message)


_STATUS: dict[type[LogError], int] = {
    StreamNotFound: 404,
    StreamGone: 410,
    StreamConflict: 409,
    StreamClosed: 409,
    ContentTypeMismatch: 409,
    StreamSeqConflict: 409,
    StaleProducerEpoch: 403,
    ProducerSequenceGap: 409,
    InvalidRequest: 400,
    StorageError: 503,
}


def from_log_error(exc: LogError) -> HttpError:
    """Translate a log error into its protocol answer (PROTOCOL.md §5.1, §5.2, §5.2.1)."""
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 500)
    headers: Headers = []
    if isinstance(exc, StreamClosed):
        headers = [(b"stream-closed", b"true"), (b"stream-next-offset", _offset(exc.tail))]
    elif isinstance(exc, StaleProducerEpoch):
        headers = [(b"producer-epoch", str(exc.current_epoch).encode())]
    elif isinstance(exc, ProducerSequenceGap):
        headers = [
            (b"producer-expected-seq", str(exc.expected).encode()),
            (b"producer-received-seq", str(exc.received).encode()),
        ]
    elif isinstance(exc, StorageError):
        headers = [(b"retry-after", b"1")]
    return HttpError(status, exc.code, exc.message, headers)


def _offset(position: int) -> bytes:
    return format_offset(position).encode()
