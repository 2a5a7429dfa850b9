"""Every error the telemetry SDK raises, one tree, so callers never catch kafka-python's or
aiokafka's exceptions.

    SentinelError            message, cause, hint, retryable
    ├── ConnectionError      the Kafka client could not be created or reach a broker (retryable)
    ├── ValidationError      an event or a field is invalid (also a ``ValueError``)
    ├── SendError            the broker did not take the event (retryable unless closed)
    ├── ConfigurationError   settings are invalid or a Kafka client rejected them
    └── TimeoutError         an operation did not finish in time (retryable)

``ConnectionError`` and ``TimeoutError`` keep the upstream SDK's names; they shadow the builtins
only where imported by name, and neither is a subclass of the builtin of the same name.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ConnectionError",
    "SendError",
    "SentinelError",
    "TimeoutError",
    "ValidationError",
]


class SentinelError(Exception):
    """Base of every SDK error: ``message``, the underlying ``cause``, a ``hint`` and whether
    the same call may succeed later (``retryable``)."""

    default_hint = ""
    retryable = False

    def __init__(
        self,
        message: str,
        cause: BaseException | None = None,
        *,
        hint: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause
        self.hint = hint if hint is not None else self.default_hint
        if retryable is not None:
            self.retryable = retryable
        if cause is not None:
            self.__cause__ = cause

    def __str__(self) -> str:
        text = self.message
        if self.cause is not None:
            text += f" (caused by: {self.cause})"
        if self.hint:
            text += f". Hint: {self.hint}"
        return text


class ConnectionError(SentinelError):
    """No broker could be reached, or the Kafka client could not be created."""

    default_hint = "check SENTINEL_BROKERS / brokers= and that the broker is running"
    retryable = True


class ValidationError(SentinelError, ValueError):
    """An event field is missing or out of range; fix the call, retrying will not help."""


class SendError(SentinelError):
    """The broker did not accept the event."""

    retryable = True


class ConfigurationError(SentinelError):
    """Invalid settings, or settings a Kafka client refused."""


class TimeoutError(SentinelError):
    """The operation did not complete within its timeout."""

    default_hint = "the broker may be slow or unreachable; raise the timeout or check it"
    retryable = True
