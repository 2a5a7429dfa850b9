"""Every error the Kafka SDK raises, one tree, so callers catch ours and never aiokafka's.

    StreamlineError               message, hint, retryable, kafka_code
    ├── ConnectionError           the broker cannot be reached or the connection broke (retryable)
    ├── TimeoutError              a request or a wait ran out of time (retryable)
    ├── ProducerError             a record could not be sent (too large, fenced, no replicas)
    ├── ConsumerError             fetching, committing or group membership failed
    ├── TopicError                unknown topic, topic exists, bad partition count
    ├── ConfigurationError        invalid settings or topic names; also what the broker rejects
    ├── AuthenticationError       SASL/TLS credentials refused
    ├── AuthorizationError        authenticated, but the broker's ACLs deny the operation
    ├── SerializationError        a key or value serializer/deserializer failed
    ├── RateLimitError            the broker throttles this client (retry_after_ms)
    └── CircuitBreakerOpen        calls refused after repeated failures (``circuit_breaker``)

``retryable`` says whether the same call may succeed later without changing anything; ``hint``
says what to do about it and is part of ``str(error)``. The module and class names are the
Streamline SDK's (``streamline_sdk.exceptions``), so its error-handling code runs unchanged.
``ConnectionError`` and ``TimeoutError`` shadow the builtins inside this module on purpose:
import them by these names, or as ``StreamlineError`` subclasses from ``millstream.kafka``.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "ConfigurationError",
    "ConnectionError",
    "ConsumerError",
    "ProducerError",
    "RateLimitError",
    "SerializationError",
    "StreamlineError",
    "TimeoutError",
    "TopicError",
]


class StreamlineError(Exception):
    """Base of every SDK error: ``message``, ``hint``, ``retryable`` and, when the broker sent
    one, the Kafka error code ``kafka_code``."""

    default_hint = "See the message; a call that failed with retryable=True may succeed later"
    default_retryable = False

    def __init__(
        self,
        message: str = "",
        *,
        hint: str | None = None,
        retryable: bool | None = None,
        kafka_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint
        self.retryable = self.default_retryable if retryable is None else retryable
        self.kafka_code = kafka_code

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, retryable={self.retryable})"


class ConnectionError(StreamlineError):
    """The broker cannot be reached, refused the connection, or the connection broke."""

    default_hint = "Check that the server is running and that bootstrap_servers points at it"
    default_retryable = True


class TimeoutError(StreamlineError):
    """A request or a wait for metadata, a coordinator or an acknowledgement ran out of time."""

    default_hint = "Consider increasing request_timeout_ms or check the server's load and health"
    default_retryable = True


class ProducerError(StreamlineError):
    """A record could not be sent."""

    default_hint = "Check the record and the producer settings (acks, max_request_size)"


class ConsumerError(StreamlineError):
    """Fetching, seeking, committing or taking part in a consumer group failed."""

    default_hint = "Check the consumer's group, assignment and offsets"


class TopicError(StreamlineError):
    """A topic does not exist, already exists, or cannot have the asked configuration."""

    default_hint = "Use admin client to create the topic first, or enable auto-creation"


class ConfigurationError(StreamlineError):
    """A setting or a topic name is invalid, or the broker does not support what was asked."""

    default_hint = "Fix the configuration value named in the message"


class AuthenticationError(StreamlineError):
    """The broker refused the credentials (SASL) or the TLS handshake failed."""

    default_hint = "Verify your SASL credentials and mechanism"


class AuthorizationError(StreamlineError):
    """Authenticated, but not allowed to do this (the broker's ACLs)."""

    default_hint = "Ask the broker's operator for access to this topic, group or cluster action"


class SerializationError(StreamlineError):
    """A key or value could not be serialized or deserialized."""

    default_hint = (
        "Pass bytes, str or a JSON-able value, or give the producer a value_serializer= "
        "(the consumer a value_deserializer=) for this type"
    )


class RateLimitError(StreamlineError):
    """The broker throttles this client; wait ``retry_after_ms`` before trying again."""

    default_hint = "Reduce request rate or increase broker rate limits"
    default_retryable = True

    def __init__(
        self,
        retry_after_ms: int = 0,
        message: str | None = None,
        *,
        hint: str | None = None,
        kafka_code: int | None = None,
    ) -> None:
        super().__init__(
            message or f"Rate limited. Retry after {retry_after_ms}ms",
            hint=hint,
            kafka_code=kafka_code,
        )
        self.retry_after_ms = retry_after_ms
