"""Every error ``millstream.dualmode`` raises or answers, one tree.

    DualModeError                 code, message, hint, retryable, status (the HTTP answer)
    ├── SSEFormatError            an event name, id, retry or comment that SSE cannot carry
    ├── InvalidModeError          400: ``?stream=`` / ``?format=`` with a value we do not know
    ├── IdempotencyKeyError       400: a malformed idempotency key, or Last-Event-ID without one
    ├── LastEventIdError          400: a Last-Event-ID that is not an offset of the generation
    ├── GenerationNotFoundError   404: ``Last-Event-ID`` for a generation the log does not have
    ├── GenerationConflictError   409: the key already names a generation with other arguments
    ├── BatchTooLargeError        406: the batch answer would pass its cap; ask for the stream
    └── GenerationLogError        503: the log that durable mode writes to failed

Errors with a ``status`` become a JSON answer ``{"error": {"code", "message", "hint"}}`` before
any byte of a stream is sent; ``SSEFormatError`` is a ``ValueError`` raised to the caller.
"""

from __future__ import annotations

__all__ = [
    "BatchTooLargeError",
    "DualModeError",
    "GenerationConflictError",
    "GenerationLogError",
    "GenerationNotFoundError",
    "IdempotencyKeyError",
    "InvalidModeError",
    "LastEventIdError",
    "SSEFormatError",
]


class DualModeError(Exception):
    """Base of every dualmode error: ``code``, ``message``, ``hint``, ``retryable``, ``status``."""

    default_code = "dualmode_error"
    default_hint = ""
    status = 500
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.hint = hint if hint is not None else self.default_hint
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return f"{self.message}. Hint: {self.hint}" if self.hint else self.message

    def as_json(self) -> dict[str, dict[str, str]]:
        """The body of the HTTP answer for this error."""
        body = {"code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        return {"error": body}


class SSEFormatError(DualModeError, ValueError):
    default_code = "sse_format"
    default_hint = "event names, ids and comments must not contain CR, LF (or NUL in ids)"


class InvalidModeError(DualModeError):
    default_code = "invalid_mode"
    default_hint = "use ?stream=true|false, ?format=stream|batch|auto, or an Accept header"
    status = 400


class IdempotencyKeyError(DualModeError):
    default_code = "invalid_idempotency_key"
    default_hint = "keys are 1-200 characters of A-Z a-z 0-9 . _ ~ - :"
    status = 400


class LastEventIdError(DualModeError):
    default_code = "invalid_last_event_id"
    default_hint = "send back the id of an event this endpoint sent, unchanged"
    status = 400


class GenerationNotFoundError(DualModeError):
    default_code = "generation_not_found"
    default_hint = "the generation expired or never existed: start it again without Last-Event-ID"
    status = 404


class GenerationConflictError(DualModeError):
    default_code = "idempotency_key_reused"
    default_hint = "an idempotency key names one request: use a new key for new arguments"
    status = 409


class BatchTooLargeError(DualModeError):
    default_code = "batch_too_large"
    default_hint = "ask for the stream instead: ?stream=true or Accept: text/event-stream"
    status = 406


class GenerationLogError(DualModeError):
    default_code = "generation_log_unavailable"
    default_hint = "the store or Durable Streams server behind durable mode failed; retry later"
    status = 503
    retryable = True
